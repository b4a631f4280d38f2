// tessera/nn/conv2d.hpp — Conv2D(in, out, kernel, stride, padding, bias): PyTorch's nn.Conv2d
// with a square kernel (weight (out, in, k, k), bias (out)), plus Keras' padding "same".
#pragma once

#include <sstream>
#include <string>

#include "../ops/conv.hpp"
#include "init.hpp"
#include "module.hpp"
#include "padding.hpp"

namespace tessera::nn {

template <class T>
class Conv2D : public Module<T> {
 public:
  Var<T> weight, bias;

  Conv2D(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, std::size_t stride = 1,
         Padding padding = 0, bool with_bias = true)
      : in_(in_channels), out_(out_channels), kernel_(kernel), stride_(stride),
        padding_(padding.resolve("Conv2D", kernel, stride)), same_(padding.same) {
    weight = this->register_parameter("weight", Tensor<T>({out_channels, in_channels, kernel, kernel}));
    if (with_bias) bias = this->register_parameter("bias", Tensor<T>({out_channels}));
    init::default_layer_init_(weight, &bias);
  }

  Var<T> forward(const Var<T>& x) override { return convolve(x, Rectifier{}); }

  /// forward(x) followed by max(·, slope··) in one op (Sequential fuses Conv2D + ReLU or
  /// LeakyReLU this way): the output is rectified while each image is in cache.
  Var<T> forward_rectified(const Var<T>& x, double slope) { return convolve(x, Rectifier{true, slope}); }

  std::string repr() const override {
    std::ostringstream os;
    os << "Conv2D(" << in_ << ", " << out_ << ", kernel=" << kernel_ << ", stride=" << stride_
       << ", padding=" << padding_ << (bias.defined() ? ")" : ", bias=false)");
    return os.str();
  }

 private:
  Var<T> convolve(const Var<T>& x, Rectifier rectifier) {
    // 'same' means output = input / stride, which symmetric padding only gives for divisible sizes
    if (same_ && x.shape().size() == 4)
      TESSERA_CHECK(x.shape()[2] % stride_ == 0 && x.shape()[3] % stride_ == 0,
                    repr() << ": padding \"same\" needs input height and width divisible by the stride, got " << x.shape());
    return conv2d(x, weight, bias, stride_, padding_, rectifier);
  }

  std::size_t in_, out_, kernel_, stride_, padding_;
  bool same_;
};

}  // namespace tessera::nn
