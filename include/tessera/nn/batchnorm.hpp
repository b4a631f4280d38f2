// tessera/nn/batchnorm.hpp — BatchNorm(features, eps, momentum) on (N, F) or (N, C, H, W):
// PyTorch's BatchNorm1d/2d with weight (γ = 1), bias (β = 0), running_mean (0), running_var (1).
#pragma once

#include <sstream>
#include <string>

#include "../ops/batchnorm.hpp"
#include "module.hpp"

namespace tessera::nn {

template <class T>
class BatchNorm : public Module<T> {
 public:
  Var<T> weight, bias, running_mean, running_var;

  explicit BatchNorm(std::size_t features, double eps = 1e-5, double momentum = 0.1)
      : features_(features), eps_(eps), momentum_(momentum) {
    weight = this->register_parameter("weight", Tensor<T>::ones({features}));
    bias = this->register_parameter("bias", Tensor<T>::zeros({features}));
    running_mean = this->register_buffer("running_mean", Tensor<T>::zeros({features}));
    running_var = this->register_buffer("running_var", Tensor<T>::ones({features}));
  }

  Var<T> forward(const Var<T>& x) override {
    return batch_norm(x, weight, bias, running_mean.value(), running_var.value(), this->is_training(), T(momentum_),
                      T(eps_));
  }

  std::string repr() const override {
    std::ostringstream os;
    os << "BatchNorm(" << features_ << ", eps=" << eps_ << ", momentum=" << momentum_ << ')';
    return os.str();
  }

 private:
  std::size_t features_;
  double eps_, momentum_;
};

}  // namespace tessera::nn
