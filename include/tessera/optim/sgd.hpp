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

 protected:
  std::vector<std::pair<const char*, Tensor<T>*>> state_of(std::size_t i) override {
    if (momentum_ == 0.0) return {};
    return {{"momentum_buffer", &momentum_buffer_[i]}};
  }

  void update(std::size_t i, Tensor<T>& param, const Tensor<T>& grad) override {
    const T lr = T(this->lr_), mu = T(momentum_), damp = T(dampening_), wd = T(weight_decay_);
    const bool first = this->step_counts_[i] == 1;
    T* p = param.data();
    const T* gr = grad.data();
    T* b = momentum_ != 0.0 ? momentum_buffer_[i].data() : nullptr;
    for (std::size_t k = 0; k < param.size(); ++k) {
      T g = gr[k] + wd * p[k];
      if (b) {
        b[k] = first ? g : mu * b[k] + (T(1) - damp) * g;
        g = nesterov_ ? g + mu * b[k] : b[k];
      }
      p[k] -= lr * g;
    }
  }

 private:
  double momentum_, dampening_, weight_decay_;
  bool nesterov_;
  std::vector<Tensor<T>> momentum_buffer_;
};

}  // namespace tessera::optim
