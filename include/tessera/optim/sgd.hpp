// tessera/optim/sgd.hpp — stochastic gradient descent with momentum, dampening, weight decay
// and Nesterov momentum, with PyTorch's update rule (torch.optim.SGD):
//     g ← grad + wd·p;   b ← g (first step) or μ·b + (1 − dampening)·g;
//     g ← g + μ·b (Nesterov) or b;   p ← p − lr·g
#pragma once

#include "optimizer.hpp"

namespace tessera::optim {

template <class T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Var<T>> params, double lr, double momentum = 0.0, double dampening = 0.0, double weight_decay = 0.0,
      bool nesterov = false)
      : Optimizer<T>(std::move(params), lr), momentum_(momentum), dampening_(dampening), weight_decay_(weight_decay),
        nesterov_(nesterov) {
    TESSERA_CHECK(!nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov momentum needs momentum > 0 and no dampening");
    if (momentum_ != 0.0) momentum_buffer_ = this->zeros_like_params();
  }

  std::vector<std::pair<std::string, Tensor<T>*>> named_state() override {
    std::vector<std::pair<std::string, Tensor<T>*>> out;
    this->add_state(out, "momentum_buffer", momentum_buffer_);
    return out;
  }

 protected:
  void update(std::size_t i, Tensor<T>& param, const Tensor<T>& grad) override {
    auto p = param.array();
    auto g = (grad.array() + T(weight_decay_) * p).eval();
    if (momentum_ != 0.0) {
      auto b = momentum_buffer_[i].array();
      if (this->step_counts_[i] == 1)
        b = g;
      else
        b = T(momentum_) * b + T(1 - dampening_) * g;
      if (nesterov_)
        g += T(momentum_) * b;
      else
        g = b;
    }
    p -= T(this->lr_) * g;
  }

 private:
  double momentum_, dampening_, weight_decay_;
  bool nesterov_;
  std::vector<Tensor<T>> momentum_buffer_;
};

}  // namespace tessera::optim
