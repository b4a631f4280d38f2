// tessera/nn/conv2d_transpose.hpp — Conv2DTranspose(in, out, kernel, stride, padding,
// output_padding, bias): PyTorch's nn.ConvTranspose2d (weight (in, out, k, k), bias (out));
// output size (H − 1)·stride − 2·padding + kernel + output_padding. Padding "same" gives
// Keras' H·stride.
#pragma once

#include <sstream>
#include <string>

#include "../ops/conv.hpp"
#include "init.hpp"
#include "module.hpp"
#include "padding.hpp"

namespace tessera::nn {

template <class T>
class Conv2DTranspose : public Module<T> {
 public:
  Var<T> weight, bias;

  Conv2DTranspose(std::size_t in_channels, std::size_t out_channels, std::size_t kernel, std::size_t stride = 1,
                  Padding padding = 0, std::size_t output_padding = 0, bool with_bias = true)
      : in_(in_channels), out_(out_channels), kernel_(kernel), stride_(stride),
        padding_(padding.resolve("Conv2DTranspose", kernel, stride)), output_padding_(output_padding) {
    TESSERA_CHECK(output_padding < stride, "Conv2DTranspose: output_padding " << output_padding
                                                                              << " must be smaller than stride " << stride);
    weight = this->register_parameter("weight", Tensor<T>({in_channels, out_channels, kernel, kernel}));
    if (with_bias) bias = this->register_parameter("bias", Tensor<T>({out_channels}));
    init::default_layer_init_(weight, &bias);
  }

  Var<T> forward(const Var<T>& x) override {
    this->run_forward_pre_hooks();
    return conv2d_transpose(x, weight, bias, stride_, padding_, output_padding_);
  }

  std::string repr() const override {
    std::ostringstream os;
    os << "Conv2DTranspose(" << in_ << ", " << out_ << ", kernel=" << kernel_ << ", stride=" << stride_
       << ", padding=" << padding_ << ", output_padding=" << output_padding_ << (bias.defined() ? ")" : ", bias=false)");
    return os.str();
  }

 private:
  std::size_t in_, out_, kernel_, stride_, padding_, output_padding_;
};

}  // namespace tessera::nn
