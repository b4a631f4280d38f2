// tessera/nn/conv2d.hpp — Conv2D(in, out, kernel, stride, padding, bias): PyTorch's nn.Conv2d
// with a square kernel (weight (out, in, k, k), bias (out)), plus Keras' padding "same". To
// Sequential's fusion pass (fuse.hpp) it is a layer that takes a rectifier into its op and, at
// inference, folds the BatchNorm after it into its weights. Its forward is final: every path
// (plain, fused, folded) is this class's, so a subclass fuses exactly as it computes.
#pragma once

#include <algorithm>
#include <sstream>
#include <string>

#include "../ops/conv.hpp"
#include "fuse.hpp"
#include "init.hpp"
#include "module.hpp"
#include "padding.hpp"

namespace tessera::nn {

template <class T>
class Conv2D : public Module<T>, public EpilogueLayer<T>, public FoldingLayer<T> {
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

  Var<T> forward(const Var<T>& x) final { return forward_fused(x, Rectifier{}, 0); }

  /// forward(x) followed by max(·, slope··) in one op (Sequential fuses Conv2D + ReLU or
  /// LeakyReLU this way): the output is rectified while each image is in cache. No pool: the
  /// op's backward has none.
  std::size_t largest_fused_pool() const final { return 0; }
  Var<T> forward_fused(const Var<T>& x, Rectifier rectifier, std::size_t pool) final {
    TESSERA_CHECK(pool == 0, repr() << ": no max-pool in the convolution's op (only when folded)");
    check_same_padding(x);
    this->run_forward_pre_hooks();
    return conv2d(x, weight, bias, stride_, padding_, rectifier);
  }

  /// Inference (no graph) of this convolution followed by the per-channel affine map
  /// z = scale·y + shift (an eval-mode BatchNorm's), a rectifier and a k×k max-pool of stride
  /// k if max_pool = k > 0, as one op: the map is folded into the weights, W'[o] = scale[o]·W[o]
  /// and b' = scale·b + shift, and each image's output is rectified and pooled in cache
  /// (Sequential runs Conv2D + BatchNorm [+ ReLU / LeakyReLU [+ MaxPool2D(k)]] so in eval mode
  /// without a graph).
  std::size_t output_channels() const final { return out_; }
  Var<T> forward_folded(const Var<T>& x, const Tensor<T>& scale, const Tensor<T>& shift, Rectifier rectifier = {},
                        std::size_t max_pool = 0) final {
    TESSERA_CHECK(!grad_enabled(), repr() << ": forward_folded makes no graph; run it under NoGradGuard");
    TESSERA_CHECK(scale.shape() == Shape{out_} && shift.shape() == Shape{out_},
                  repr() << ": folded scale " << scale.shape() << " and shift " << shift.shape() << " for " << out_ << " channels");
    check_same_padding(x);
    this->run_forward_pre_hooks();
    const ConvGeometry g = detail::conv2d_geometry(x, weight, bias, stride_, padding_, rectifier);
    TESSERA_CHECK(max_pool <= std::min(g.out_height, g.out_width),
                  "MaxPool2D(" << max_pool << ") after " << repr() << ": window larger than its input " << g.out_height
                               << "x" << g.out_width << " (from input " << x.shape() << ")");
    Tensor<T> folded_w = Tensor<T>::empty(weight.shape()), folded_b = Tensor<T>::empty({out_});
    const std::size_t taps = in_ * kernel_ * kernel_;
    for (std::size_t o = 0; o < out_; ++o) {
      for (std::size_t i = 0; i < taps; ++i) folded_w.data()[o * taps + i] = scale[o] * weight.value().data()[o * taps + i];
      folded_b[o] = scale[o] * (bias.defined() ? bias.value()[o] : T(0)) + shift[o];
    }
    return Var<T>(conv2d_inference(x.value(), folded_w, folded_b, g, rectifier, max_pool));
  }

  std::string repr() const override {
    std::ostringstream os;
    os << "Conv2D(" << in_ << ", " << out_ << ", kernel=" << kernel_ << ", stride=" << stride_
       << ", padding=" << padding_ << (bias.defined() ? ")" : ", bias=false)");
    return os.str();
  }

 private:
  // 'same' means output = input / stride, which symmetric padding only gives for divisible sizes
  void check_same_padding(const Var<T>& x) const {
    if (same_ && x.shape().size() == 4)
      TESSERA_CHECK(x.shape()[2] % stride_ == 0 && x.shape()[3] % stride_ == 0,
                    repr() << ": padding \"same\" needs input height and width divisible by the stride, got " << x.shape());
  }

  std::size_t in_, out_, kernel_, stride_, padding_;
  bool same_;
};

}  // namespace tessera::nn
