// tessera/ops/conv.hpp — 2-D convolution and transposed convolution as differentiable ops: the
// argument checks, the forward call and the backward closure. The numerics are
// kernels/conv/ (forward.hpp, backward.hpp), whose planner picks how the products are made.
//
// Layouts (PyTorch's): input (N, C, H, W); conv weight (O, C, k, k); transposed-conv weight
// (Cin, Cout, k, k). A transposed convolution is the adjoint of a convolution: its forward is
// conv2d's input gradient and its gradients are conv2d's forward and weight gradient.
#pragma once

#include <cstddef>
#include <utility>

#include "../autograd/var.hpp"
#include "../kernels/conv/backward.hpp"
#include "../kernels/conv/forward.hpp"
#include "../kernels/conv/geometry.hpp"
#include "../kernels/epilogue.hpp"

namespace tessera {

namespace detail {
template <class T>
void check_conv_args(const char* op, const Var<T>& x, const Var<T>& weight, const Var<T>& bias,
                     std::size_t in_axis, std::size_t out_axis) {
  const Shape& sx = x.shape();
  const Shape& sw = weight.shape();
  TESSERA_CHECK(sx.size() == 4, op << ": input must be (N, C, H, W), got " << sx);
  TESSERA_CHECK(sw.size() == 4 && sw[2] == sw[3], op << ": weight must be 4-D with a square kernel, got " << sw);
  TESSERA_CHECK(sx[1] == sw[in_axis], op << ": input " << sx << " has " << sx[1] << " channels, weight " << sw
                                         << " expects " << sw[in_axis]);
  if (bias.defined())
    TESSERA_CHECK(bias.shape() == Shape{sw[out_axis]}, op << ": bias " << bias.shape() << " for weight " << sw);
}

/// conv2d's arguments checked, and its geometry (conv2d and Conv2D's folded inference).
template <class T>
ConvGeometry conv2d_geometry(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, std::size_t stride,
                             std::size_t padding, Rectifier rectifier) {
  check_conv_args("conv2d", x, weight, bias, 1, 0);
  kernels::check_rectifier("conv2d", rectifier);
  const Shape& sx = x.shape();
  return conv_geometry("conv2d", sx[1], sx[2], sx[3], weight.shape()[2], stride, padding);
}

template <class T>
const T* data_or_null(const Var<T>& v) {
  return v.defined() ? v.value().data() : nullptr;
}
}  // namespace detail

/// 2-D convolution (cross-correlation, as PyTorch): x (N, C, H, W), weight (O, C, k, k),
/// bias (O) or undefined → (N, O, (H + 2p − k)/s + 1, (W + 2p − k)/s + 1); optionally followed,
/// in the same op, by a rectifier (Sequential fuses Conv2D + ReLU / LeakyReLU so): one pass
/// over the output fewer.
template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, std::size_t stride = 1,
              std::size_t padding = 0, Rectifier rectifier = {}) {
  const ConvGeometry g = detail::conv2d_geometry(x, weight, bias, stride, padding, rectifier);
  Tensor<T> y = kernels::conv2d_forward(x.value(), weight.value(), g, kernels::Epilogue<T>{detail::data_or_null(bias), rectifier});
  return make_op_result("conv2d", std::move(y), {&x, &weight, &bias},
                        [x, weight, bias, g, rectifier](const Tensor<T>& gy, const Tensor<T>& y) {
                          // the kernels take gy back through the rectifier themselves, image by image
                          const kernels::RectifiedOutput<T> through{rectifier.enabled ? y.data() : nullptr, rectifier};
                          if (needs_grad(x))
                            accumulate_grad(x, kernels::conv2d_backward_input(gy, weight.value(), g, static_cast<const T*>(nullptr), through));
                          if (needs_grad(weight) || needs_grad(bias)) {
                            kernels::ConvGrads<T> grads =
                                kernels::conv2d_backward_params(gy, x.value(), g, through, needs_grad(weight), needs_grad(bias));
                            accumulate_grad(weight, std::move(grads.dw));
                            accumulate_grad(bias, std::move(grads.db));
                          }
                        });
}

/// conv2d at inference, without a graph: x ⋆ weight + bias, then the rectifier and a pool × pool
/// max-pool of stride pool (0: none), each image's output in one pass while it is in cache
/// (Sequential's folded Conv2D + BatchNorm [+ rectifier [+ MaxPool2D(k)]]). bias: (O) or undefined.
template <class T>
Tensor<T> conv2d_inference(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, const ConvGeometry& g,
                           Rectifier rectifier, std::size_t pool) {
  TESSERA_CHECK(!grad_enabled(), "conv2d_inference makes no graph; run it under NoGradGuard");
  return kernels::conv2d_forward(x, weight, g, kernels::Epilogue<T>{bias.defined() ? bias.data() : nullptr, rectifier, pool});
}

/// Output size of a transposed convolution: (H − 1)·s − 2p + k + output_padding.
inline std::size_t conv_transpose_output_size(std::size_t in, std::size_t kernel, std::size_t stride,
                                              std::size_t padding, std::size_t output_padding) {
  const std::ptrdiff_t size = std::ptrdiff_t((in - 1) * stride + kernel + output_padding) - std::ptrdiff_t(2 * padding);
  TESSERA_CHECK(in > 0 && size > 0, "conv2d_transpose: input size " << in << " with kernel " << kernel << ", stride "
                                                                    << stride << ", padding " << padding
                                                                    << " gives no output");
  return std::size_t(size);
}

/// Transposed convolution: x (N, Cin, H, W), weight (Cin, Cout, k, k), bias (Cout) or
/// undefined → (N, Cout, (H − 1)s − 2p + k + op, ...).
template <class T>
Var<T> conv2d_transpose(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, std::size_t stride = 1,
                        std::size_t padding = 0, std::size_t output_padding = 0) {
  detail::check_conv_args("conv2d_transpose", x, weight, bias, 0, 1);
  TESSERA_CHECK(output_padding < stride, "conv2d_transpose: output_padding " << output_padding
                                                                             << " must be smaller than stride " << stride);
  const Shape& sx = x.shape();
  const Shape& sw = weight.shape();
  const std::size_t k = sw[2];
  const std::size_t out_h = conv_transpose_output_size(sx[2], k, stride, padding, output_padding);
  const std::size_t out_w = conv_transpose_output_size(sx[3], k, stride, padding, output_padding);
  const ConvGeometry g = conv_geometry("conv2d_transpose", sw[1], out_h, out_w, k, stride, padding);
  Tensor<T> y = kernels::conv2d_backward_input(x.value(), weight.value(), g, detail::data_or_null(bias));
  return make_op_result("conv2d_transpose", std::move(y), {&x, &weight, &bias},
                        [x, weight, bias, g](const Tensor<T>& gy, const Tensor<T>&) {
                          kernels::ConvGrads<T> grads = kernels::conv2d_transpose_backward(
                              gy, x.value(), weight.value(), g, needs_grad(x), needs_grad(weight), needs_grad(bias));
                          accumulate_grad(x, std::move(grads.dx));
                          accumulate_grad(weight, std::move(grads.dw));
                          accumulate_grad(bias, std::move(grads.db));
                        });
}

}  // namespace tessera
