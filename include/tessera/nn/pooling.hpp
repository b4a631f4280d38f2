// tessera/nn/pooling.hpp — MaxPool2D(kernel, stride), AvgPool2D(kernel, stride) (stride
// defaults to kernel, as PyTorch), GlobalAvgPool2D: (N, C, H, W) → (N, C).
#pragma once

#include <string>

#include "../ops/pool.hpp"
#include "../ops/reduce.hpp"
#include "fuse.hpp"
#include "module.hpp"

namespace tessera::nn {

/// A layer pooling k×k windows with a given stride (default: the kernel size, as PyTorch).
template <class T>
class WindowPool2D : public Module<T> {
 public:
  using Op = Var<T> (*)(const Var<T>&, std::size_t, std::size_t);
  WindowPool2D(const char* name, Op op, std::size_t kernel, std::size_t stride)
      : name_(name), op_(op), kernel_(kernel), stride_(stride ? stride : kernel) {}
  Var<T> forward(const Var<T>& x) final { return op_(x, kernel_, stride_); }
  std::size_t kernel() const { return kernel_; }
  std::size_t stride() const { return stride_; }
  std::string repr() const override {
    return std::string(name_) + "(" + std::to_string(kernel_) + ", stride=" + std::to_string(stride_) + ")";
  }

 private:
  const char* name_;
  Op op_;
  std::size_t kernel_, stride_;
};

/// To Sequential's fusion pass (fuse.hpp) a max-pool whose windows, where they tile the plane,
/// the layer before may take into its op.
template <class T>
struct MaxPool2D : WindowPool2D<T>, MaxPoolLayer {
  explicit MaxPool2D(std::size_t kernel, std::size_t stride = 0) : WindowPool2D<T>("MaxPool2D", max_pool2d<T>, kernel, stride) {}
  std::size_t tiling_window() const final { return this->stride() == this->kernel() ? this->kernel() : 0; }
};
template <class T>
struct AvgPool2D : WindowPool2D<T> {
  explicit AvgPool2D(std::size_t kernel, std::size_t stride = 0) : WindowPool2D<T>("AvgPool2D", avg_pool2d<T>, kernel, stride) {}
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
