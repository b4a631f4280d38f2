// tessera/ops/conv.hpp — 2-D convolution and transposed convolution, lowered to one Eigen
// matrix product over the whole batch by im2col / col2im.
//
// Layouts (PyTorch's): input (N, C, H, W); conv weight (O, C, k, k); transposed-conv weight
// (Cin, Cout, k, k). With L = Ho·Wo output positions, im2col turns the batch into a matrix
// `cols` of (C·k·k) rows × (N·L) columns, so that
//     conv2d:            Y' = W · cols                       (O × N·L, then permuted to NCHW)
//     its input grad:    dX = col2im(Wᵀ · dY')
//     its weight grad:   dW = dY' · colsᵀ
// A transposed convolution is the adjoint of a convolution (Dumoulin & Visin, "A guide to
// convolution arithmetic", 2016): its forward is conv2d's input gradient, its input gradient
// is conv2d's forward, and its weight gradient is conv2d's with the roles of x and dy swapped.
// So the three kernels below serve both layers.
#pragma once

#include <cstddef>

#include "../autograd/var.hpp"
#include "../core/flops.hpp"
#include "../core/parallel.hpp"

namespace tessera {

/// The sizes of one convolution: the image side (conv input, convT output) and the column
/// side (conv output, convT input). Square kernels, equal stride and padding on both axes.
struct ConvGeometry {
  std::size_t channels = 0, height = 0, width = 0;  // image side
  std::size_t kernel = 1, stride = 1, padding = 0;
  std::size_t out_height = 0, out_width = 0;        // column side

  std::size_t col_rows() const { return channels * kernel * kernel; }
  std::size_t positions() const { return out_height * out_width; }
};

/// Geometry of a convolution over a (C, H, W) image: Ho = (H + 2p − k) / s + 1.
inline ConvGeometry conv_geometry(const char* op, std::size_t channels, std::size_t height, std::size_t width,
                                  std::size_t kernel, std::size_t stride, std::size_t padding) {
  TESSERA_CHECK(kernel > 0 && stride > 0, op << ": kernel " << kernel << " and stride " << stride << " must be positive");
  TESSERA_CHECK(height + 2 * padding >= kernel && width + 2 * padding >= kernel,
                op << ": kernel " << kernel << " larger than the padded input " << height << "x" << width
                   << " (padding " << padding << ")");
  ConvGeometry g;
  g.channels = channels;
  g.height = height;
  g.width = width;
  g.kernel = kernel;
  g.stride = stride;
  g.padding = padding;
  g.out_height = (height + 2 * padding - kernel) / stride + 1;
  g.out_width = (width + 2 * padding - kernel) / stride + 1;
  return g;
}

/// images (N, C, H, W) → cols, row r = (c, ki, kj), column n·L + oh·Wo + ow holds
/// x[n, c, oh·s − p + ki, ow·s − p + kj] (zero outside the image).
template <class T>
Tensor<T> im2col(const Tensor<T>& images, const ConvGeometry& g) {
  const std::size_t batch = images.shape()[0], k = g.kernel, L = g.positions(), plane = g.height * g.width;
  Tensor<T> cols = Tensor<T>::empty({g.col_rows(), batch * L});
  const T* x = images.data();
  T* out = cols.data();
  parallel_for(0, g.col_rows(), 1, [&](std::size_t r) {
    const std::size_t c = r / (k * k), ki = (r / k) % k, kj = r % k;
    for (std::size_t n = 0; n < batch; ++n) {
      const T* src = x + (n * g.channels + c) * plane;
      T* dst = out + r * batch * L + n * L;
      for (std::size_t oh = 0; oh < g.out_height; ++oh, dst += g.out_width) {
        const std::ptrdiff_t ih = std::ptrdiff_t(oh * g.stride + ki) - std::ptrdiff_t(g.padding);
        if (ih < 0 || ih >= std::ptrdiff_t(g.height)) {
          for (std::size_t ow = 0; ow < g.out_width; ++ow) dst[ow] = T(0);
          continue;
        }
        const T* row = src + std::size_t(ih) * g.width;
        for (std::size_t ow = 0; ow < g.out_width; ++ow) {
          const std::ptrdiff_t iw = std::ptrdiff_t(ow * g.stride + kj) - std::ptrdiff_t(g.padding);
          dst[ow] = (iw >= 0 && iw < std::ptrdiff_t(g.width)) ? row[iw] : T(0);
        }
      }
    }
  });
  return cols;
}

/// The adjoint of im2col: sums every column entry back into the image position it was read
/// from. Each (n, c) plane is owned by one thread and summed in a fixed order.
template <class T>
Tensor<T> col2im(const Tensor<T>& cols, std::size_t batch, const ConvGeometry& g) {
  const std::size_t k = g.kernel, L = g.positions(), plane = g.height * g.width;
  Tensor<T> images = Tensor<T>::empty({batch, g.channels, g.height, g.width});
  const T* in = cols.data();
  T* x = images.data();
  parallel_for(0, batch * g.channels, 1, [&](std::size_t nc) {
    const std::size_t n = nc / g.channels, c = nc % g.channels;
    T* dst = x + nc * plane;
    for (std::size_t i = 0; i < plane; ++i) dst[i] = T(0);
    for (std::size_t ki = 0; ki < k; ++ki)
      for (std::size_t kj = 0; kj < k; ++kj) {
        const T* src = in + ((c * k + ki) * k + kj) * batch * L + n * L;
        for (std::size_t oh = 0; oh < g.out_height; ++oh, src += g.out_width) {
          const std::ptrdiff_t ih = std::ptrdiff_t(oh * g.stride + ki) - std::ptrdiff_t(g.padding);
          if (ih < 0 || ih >= std::ptrdiff_t(g.height)) continue;
          T* row = dst + std::size_t(ih) * g.width;
          for (std::size_t ow = 0; ow < g.out_width; ++ow) {
            const std::ptrdiff_t iw = std::ptrdiff_t(ow * g.stride + kj) - std::ptrdiff_t(g.padding);
            if (iw >= 0 && iw < std::ptrdiff_t(g.width)) row[iw] += src[ow];
          }
        }
      }
  });
  return images;
}

/// (A, B, L) → (B, A, L): between NCHW (N, C, L) and channel-major (C, N, L) layouts.
template <class T>
Tensor<T> swap_leading_axes(const Tensor<T>& src, std::size_t a, std::size_t b, std::size_t len, const Shape& out_shape) {
  Tensor<T> dst = Tensor<T>::empty(out_shape);
  const T* s = src.data();
  T* d = dst.data();
  parallel_for(0, a * b, 16, [&](std::size_t ia_ib) {
    const std::size_t i = ia_ib / b, j = ia_ib % b;
    const T* from = s + (i * b + j) * len;
    T* to = d + (j * a + i) * len;
    for (std::size_t l = 0; l < len; ++l) to[l] = from[l];
  });
  return dst;
}

/// Convolution forward from im2col'd input: y (N, O, Ho, Wo) = W[O × C·k·k] · cols.
template <class T>
Tensor<T> conv2d_from_columns(const Tensor<T>& cols, const Tensor<T>& weight, std::size_t batch, const ConvGeometry& g) {
  const std::size_t out_ch = weight.shape()[0], L = g.positions();
  Tensor<T> channel_major = Tensor<T>::empty({out_ch, batch * L});
  detail::count_matmul_flops(out_ch, batch * L, g.col_rows());
  channel_major.matrix(out_ch, batch * L).noalias() =
      weight.matrix(out_ch, g.col_rows()) * cols.matrix(g.col_rows(), batch * L);
  return swap_leading_axes(channel_major, out_ch, batch, L, Shape{batch, out_ch, g.out_height, g.out_width});
}

/// Convolution input gradient: dX (N, C, H, W) = col2im(Wᵀ · dY').
template <class T>
Tensor<T> conv2d_backward_input(const Tensor<T>& grad_out, const Tensor<T>& weight, const ConvGeometry& g) {
  const std::size_t batch = grad_out.shape()[0], out_ch = grad_out.shape()[1], L = g.positions();
  const Tensor<T> gy = swap_leading_axes(grad_out, batch, out_ch, L, Shape{out_ch, batch * L});
  Tensor<T> dcols = Tensor<T>::empty({g.col_rows(), batch * L});
  detail::count_matmul_flops(g.col_rows(), batch * L, out_ch);
  dcols.matrix(g.col_rows(), batch * L).noalias() =
      weight.matrix(out_ch, g.col_rows()).transpose() * gy.matrix(out_ch, batch * L);
  return col2im(dcols, batch, g);
}

/// Convolution weight gradient: dW (O, C, k, k) = dY' · colsᵀ.
template <class T>
Tensor<T> conv2d_backward_weight(const Tensor<T>& grad_out, const Tensor<T>& cols, const ConvGeometry& g) {
  const std::size_t batch = grad_out.shape()[0], out_ch = grad_out.shape()[1], L = g.positions();
  const Tensor<T> gy = swap_leading_axes(grad_out, batch, out_ch, L, Shape{out_ch, batch * L});
  Tensor<T> dw = Tensor<T>::empty({out_ch, g.channels, g.kernel, g.kernel});
  detail::count_matmul_flops(out_ch, g.col_rows(), batch * L);
  dw.matrix(out_ch, g.col_rows()).noalias() =
      gy.matrix(out_ch, batch * L) * cols.matrix(g.col_rows(), batch * L).transpose();
  return dw;
}

/// y[n, c, ...] += bias[c].
template <class T>
void add_channel_bias(Tensor<T>& y, const Tensor<T>& bias) {
  const std::size_t batch = y.shape()[0], channels = y.shape()[1], plane = y.size() / (batch * channels);
  T* p = y.data();
  parallel_for(0, batch * channels, 16, [&](std::size_t nc) {
    const T b = bias[nc % channels];
    for (std::size_t i = 0; i < plane; ++i) p[nc * plane + i] += b;
  });
}

/// Σ over batch and positions per channel: the bias gradient.
template <class T>
Tensor<T> channel_sum(const Tensor<T>& g) {
  const std::size_t batch = g.shape()[0], channels = g.shape()[1], plane = g.size() / (batch * channels);
  Tensor<T> out = Tensor<T>::zeros({channels});
  for (std::size_t n = 0; n < batch; ++n)
    for (std::size_t c = 0; c < channels; ++c)
      out[c] += g.matrix(batch * channels, plane).row(n * channels + c).sum();
  return out;
}

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
}  // namespace detail

/// 2-D convolution (cross-correlation, as PyTorch): x (N, C, H, W), weight (O, C, k, k),
/// bias (O) or undefined → (N, O, (H + 2p − k)/s + 1, (W + 2p − k)/s + 1).
template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, std::size_t stride = 1,
              std::size_t padding = 0) {
  detail::check_conv_args("conv2d", x, weight, bias, 1, 0);
  const Shape& sx = x.shape();
  const ConvGeometry g = conv_geometry("conv2d", sx[1], sx[2], sx[3], weight.shape()[2], stride, padding);
  Tensor<T> cols = im2col(x.value(), g);
  Tensor<T> y = conv2d_from_columns(cols, weight.value(), sx[0], g);
  if (bias.defined()) add_channel_bias(y, bias.value());
  if (!needs_grad(weight)) cols = Tensor<T>();  // only the weight gradient reads them
  return make_op_result("conv2d", std::move(y), {&x, &weight, &bias},
                        [x, weight, bias, g, cols = std::move(cols)](const Tensor<T>& gy, const Tensor<T>&) {
                          if (needs_grad(x)) accumulate_grad(x, conv2d_backward_input(gy, weight.value(), g));
                          if (needs_grad(weight)) accumulate_grad(weight, conv2d_backward_weight(gy, cols, g));
                          if (needs_grad(bias)) accumulate_grad(bias, channel_sum(gy));
                        });
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
  Tensor<T> y = conv2d_backward_input(x.value(), weight.value(), g);
  if (bias.defined()) add_channel_bias(y, bias.value());
  return make_op_result("conv2d_transpose", std::move(y), {&x, &weight, &bias},
                        [x, weight, bias, g](const Tensor<T>& gy, const Tensor<T>&) {
                          const Tensor<T> cols = im2col(gy, g);
                          if (needs_grad(x)) accumulate_grad(x, conv2d_from_columns(cols, weight.value(), gy.shape()[0], g));
                          if (needs_grad(weight)) accumulate_grad(weight, conv2d_backward_weight(x.value(), cols, g));
                          if (needs_grad(bias)) accumulate_grad(bias, channel_sum(gy));
                        });
}

}  // namespace tessera
