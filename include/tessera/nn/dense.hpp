// tessera/nn/dense.hpp — Dense(in, out, bias): y = x·Wᵀ + b, PyTorch's nn.Linear
// (weight (out, in), bias (out)).
#pragma once

#include <string>

#include "../ops/matmul.hpp"
#include "init.hpp"
#include "module.hpp"

namespace tessera::nn {

template <class T>
class Dense : public Module<T> {
 public:
  Var<T> weight, bias;

  Dense(std::size_t in_features, std::size_t out_features, bool with_bias = true)
      : in_(in_features), out_(out_features) {
    weight = this->register_parameter("weight", Tensor<T>({out_features, in_features}));
    if (with_bias) bias = this->register_parameter("bias", Tensor<T>({out_features}));
    init::default_layer_init_(weight, &bias);
  }

  Var<T> forward(const Var<T>& x) override {
    TESSERA_CHECK(x.shape().size() == 2 && x.shape()[1] == in_,
                  repr() << ": expected input (N, " << in_ << "), got " << x.shape());
    this->run_forward_pre_hooks();
    return linear(x, weight, bias);
  }

  std::string repr() const override {
    return "Dense(" + std::to_string(in_) + ", " + std::to_string(out_) + (bias.defined() ? ")" : ", bias=false)");
  }

 private:
  std::size_t in_, out_;
};

}  // namespace tessera::nn
