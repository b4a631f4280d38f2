// tessera/nn/pooling.hpp — MaxPool2D(kernel, stride), AvgPool2D(kernel, stride) (stride
// defaults to kernel, as PyTorch), GlobalAvgPool2D: (N, C, H, W) → (N, C).
#pragma once

#include <string>

#include "../ops/pool.hpp"
#include "../ops/reduce.hpp"
#include "module.hpp"

namespace tessera::nn {

template <class T>
class MaxPool2D : public Module<T> {
 public:
  explicit MaxPool2D(std::size_t kernel, std::size_t stride = 0) : kernel_(kernel), stride_(stride ? stride : kernel) {}
  Var<T> forward(const Var<T>& x) override { return max_pool2d(x, kernel_, stride_); }
  std::string repr() const override {
    return "MaxPool2D(" + std::to_string(kernel_) + ", stride=" + std::to_string(stride_) + ")";
  }

 private:
  std::size_t kernel_, stride_;
};

template <class T>
class AvgPool2D : public Module<T> {
 public:
  explicit AvgPool2D(std::size_t kernel, std::size_t stride = 0) : kernel_(kernel), stride_(stride ? stride : kernel) {}
  Var<T> forward(const Var<T>& x) override { return avg_pool2d(x, kernel_, stride_); }
  std::string repr() const override {
    return "AvgPool2D(" + std::to_string(kernel_) + ", stride=" + std::to_string(stride_) + ")";
  }

 private:
  std::size_t kernel_, stride_;
};

template <class T>
class GlobalAvgPool2D : public Module<T> {
 public:
  Var<T> forward(const Var<T>& x) override {
    TESSERA_CHECK(x.shape().size() == 4, "GlobalAvgPool2D: input must be (N, C, H, W), got " << x.shape());
    return mean(x, {2, 3});
  }
  std::string repr() const override { return "GlobalAvgPool2D()"; }
};

}  // namespace tessera::nn
