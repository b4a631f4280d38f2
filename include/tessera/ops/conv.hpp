// tessera/ops/conv.hpp — 2-D convolution and transposed convolution, lowered to matrix
// products by im2col / col2im, one image at a time.
//
// Layouts (PyTorch's): input (N, C, H, W); conv weight (O, C, k, k); transposed-conv weight
// (Cin, Cout, k, k). With L = Ho·Wo output positions, im2col turns image n into a matrix
// cols_n of (C·k·k) rows × L columns, so that, with every Y_n an (O × L) slice of NCHW:
//     conv2d:            Y_n = W · cols_n
//     its input grad:    dX_n = col2im(Wᵀ · dY_n)
//     its weight grad:   dW = Σ_n dY_n · cols_nᵀ
// A transposed convolution is the adjoint of a convolution (Dumoulin & Visin, "A guide to
// convolution arithmetic", 2016): its forward is conv2d's input gradient, its input gradient
// is conv2d's forward, and its weight gradient is conv2d's with the roles of x and dy swapped.
// So the three kernels below serve both layers.
//
// Why one image at a time: one image's columns (≤ ~1 MB for the DCGAN and texture models)
// stay in the core's cache between im2col and the product, the product writes NCHW
// directly, and nothing batch-sized is kept for the backward (the weight gradient redoes
// im2col from x). Each thread takes a contiguous run of images and multiplies serially;
// images with few output positions are multiplied a small group at a time (see
// images_per_product), their columns side by side.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

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
  std::size_t image_size() const { return channels * height * width; }
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

namespace detail {
/// The output indices o in [0, out) whose input index o·s − p + tap lies in [0, in), as
/// [first, last): the loops below run branch-free between them and zero-fill outside.
inline std::pair<std::size_t, std::size_t> inside_range(std::size_t out, std::size_t in, std::size_t stride,
                                                        std::size_t padding, std::size_t tap) {
  const std::size_t first = tap >= padding ? 0 : (padding - tap + stride - 1) / stride;
  const std::size_t last = in + padding > tap ? std::min(out, (in + padding - tap - 1) / stride + 1) : 0;
  return {std::min(first, last), last};
}

template <class T>
typename Tensor<T>::MatrixMap matrix_view(T* data, std::size_t rows, std::size_t cols) {
  return typename Tensor<T>::MatrixMap(data, Eigen::Index(rows), Eigen::Index(cols));
}
template <class T>
typename Tensor<T>::ConstMatrixMap matrix_view(const T* data, std::size_t rows, std::size_t cols) {
  return typename Tensor<T>::ConstMatrixMap(data, Eigen::Index(rows), Eigen::Index(cols));
}

/// How many contiguous runs of images a batch is split into: one per thread when every
/// thread gets an image (each then multiplies serially), else one run whose products Eigen
/// threads itself — one level of threading either way.
inline std::size_t batch_parts(std::size_t batch) {
  const std::size_t threads = std::size_t(available_threads());
  return batch >= threads ? threads : 1;
}

/// body(part, first, last) for each of `parts` contiguous runs [first, last) of the batch,
/// in parallel.
template <class Body>
void for_each_batch_part(std::size_t batch, std::size_t parts, Body&& body) {
  parallel_for(0, parts, 1, [&](std::size_t part) { body(part, batch * part / parts, batch * (part + 1) / parts); });
}

/// inside_range for every kernel row ki (rows) and column kj (cols), computed once per image
/// rather than once per column-matrix row: they cost two divisions each.
struct TapRanges {
  std::vector<std::pair<std::size_t, std::size_t>> rows, cols;
  explicit TapRanges(const ConvGeometry& g) {
    for (std::size_t tap = 0; tap < g.kernel; ++tap) {
      rows.push_back(inside_range(g.out_height, g.height, g.stride, g.padding, tap));
      cols.push_back(inside_range(g.out_width, g.width, g.stride, g.padding, tap));
    }
  }
};
}  // namespace detail

/// One image (C, H, W) → its columns: row r = (c, ki, kj), column oh·Wo + ow holds
/// x[c, oh·s − p + ki, ow·s − p + kj] (zero outside the image). Row r starts at cols + r·ld
/// (ld = L for one image alone; wider when several images' columns sit side by side).
template <class T>
void im2col(const T* image, const ConvGeometry& g, T* cols, std::size_t ld = 0) {
  const std::size_t k = g.kernel, s = g.stride, p = g.padding, wo = g.out_width, L = g.positions();
  const detail::TapRanges inside(g);
  T* dst = cols;
  for (std::size_t c = 0; c < g.channels; ++c)
    for (std::size_t ki = 0; ki < k; ++ki)
      for (std::size_t kj = 0; kj < k; ++kj, dst += ld ? ld : L) {
        const auto [oh_first, oh_last] = inside.rows[ki];
        const auto [ow_first, ow_last] = inside.cols[kj];
        // one fill of the whole row when any of it is padding (per output row, fills of one
        // or two values become memset calls that cost more than the copy)
        if (oh_first > 0 || oh_last < g.out_height || ow_first > 0 || ow_last < wo) std::fill(dst, dst + L, T(0));
        for (std::size_t oh = oh_first; oh < oh_last; ++oh) {
          // from x[c, oh·s − p + ki, ow_first·s − p + kj] on, in range: oh ≥ oh_first, ow ≥ ow_first
          const T* in = image + (c * g.height + oh * s + ki - p) * g.width + ow_first * s + kj - p;
          T* out = dst + oh * wo + ow_first;
          if (s == 1)  // contiguous: a vector copy
            std::copy(in, in + (ow_last - ow_first), out);
          else
            for (std::size_t i = 0; i < ow_last - ow_first; ++i) out[i] = in[i * s];
        }
      }
}

/// The adjoint of im2col: image (C, H, W) = the sum of every column entry into the position
/// it was read from, in a fixed order. Rows ld apart, as im2col.
template <class T>
void col2im(const T* cols, const ConvGeometry& g, T* image, std::size_t ld = 0) {
  const std::size_t k = g.kernel, s = g.stride, p = g.padding, wo = g.out_width;
  const detail::TapRanges inside(g);
  std::fill(image, image + g.image_size(), T(0));
  const T* src = cols;
  for (std::size_t c = 0; c < g.channels; ++c)
    for (std::size_t ki = 0; ki < k; ++ki)
      for (std::size_t kj = 0; kj < k; ++kj, src += ld ? ld : g.positions()) {
        const auto [oh_first, oh_last] = inside.rows[ki];
        const auto [ow_first, ow_last] = inside.cols[kj];
        for (std::size_t oh = oh_first; oh < oh_last; ++oh) {
          T* out = image + (c * g.height + oh * s + ki - p) * g.width + ow_first * s + kj - p;
          const T* in = src + oh * wo + ow_first;
          if (s == 1)
            for (std::size_t i = 0; i < ow_last - ow_first; ++i) out[i] += in[i];
          else
            for (std::size_t i = 0; i < ow_last - ow_first; ++i) out[i * s] += in[i];
        }
      }
}

namespace detail {
/// Images per product: small images (under 256 output positions) are multiplied several at
/// a time, so that each product is wide enough for the GEMM's register tiles (Eigen's SGEMM
/// on one core: 110 → 124 GFLOP/s from 49 to 294 columns, 52 → 113 from 16 to 256).
inline std::size_t images_per_product(std::size_t positions) {
  return std::max<std::size_t>(1, 256 / std::max<std::size_t>(positions, 1));
}

/// image[c, ·] += bias[c] over one (C, L) image: done per image while it is in cache.
template <class T>
void add_bias(T* image, const T* bias, std::size_t channels, std::size_t L) {
  for (std::size_t c = 0; c < channels; ++c)
    for (std::size_t l = 0; l < L; ++l) image[c * L + l] += bias[c];
}

/// `count` images (count, C, L) → one (C × count·L) matrix with image j in columns
/// [j·L, (j + 1)·L): the layout a product over several images reads.
template <class T>
void images_to_matrix(const T* images, std::size_t count, std::size_t channels, std::size_t L, T* matrix) {
  for (std::size_t j = 0; j < count; ++j)
    for (std::size_t c = 0; c < channels; ++c)
      std::copy_n(images + (j * channels + c) * L, L, matrix + (c * count + j) * L);
}
/// The (C × count·L) matrix of `count` images: the images themselves when there is one
/// (its NCHW slice is that matrix), else gathered into `scratch` by images_to_matrix.
template <class T>
const T* images_as_matrix(const T* images, std::size_t count, std::size_t channels, std::size_t L, Tensor<T>& scratch) {
  if (count == 1) return images;
  images_to_matrix(images, count, channels, L, scratch.data());
  return scratch.data();
}
/// The inverse: one (C × count·L) product back into `count` NCHW images.
template <class T>
void matrix_to_images(const T* matrix, std::size_t count, std::size_t channels, std::size_t L, T* images) {
  for (std::size_t j = 0; j < count; ++j)
    for (std::size_t c = 0; c < channels; ++c)
      std::copy_n(matrix + (c * count + j) * L, L, images + (j * channels + c) * L);
}
}  // namespace detail

// The three kernels below walk each thread's run of images `group` at a time; one image's
// (C × L) matrix is its NCHW slice, so a group of one reads and writes in place.

/// Convolution forward: y (N, O, Ho, Wo), Y_n = W[O × C·k·k] · im2col(X_n) (+ bias[o]).
template <class T>
Tensor<T> conv2d_forward(const Tensor<T>& x, const Tensor<T>& weight, const ConvGeometry& g, const T* bias = nullptr) {
  const std::size_t batch = x.shape()[0], out_ch = weight.shape()[0], rows = g.col_rows(), L = g.positions();
  Tensor<T> y = Tensor<T>::empty({batch, out_ch, g.out_height, g.out_width});
  detail::count_matmul_flops(out_ch, batch * L, rows);
  const auto w = weight.matrix(out_ch, rows);
  const std::size_t parts = detail::batch_parts(batch);
  detail::for_each_batch_part(batch, parts, [&](std::size_t, std::size_t first, std::size_t last) {
    const std::size_t group = std::min(detail::images_per_product(L), last - first);
    Tensor<T> cols = Tensor<T>::empty({rows, group * L});
    Tensor<T> product = group > 1 ? Tensor<T>::empty({out_ch, group * L}) : Tensor<T>();
    for (std::size_t n = first; n < last; n += group) {
      const std::size_t count = std::min(group, last - n), width = count * L;
      for (std::size_t j = 0; j < count; ++j) im2col(x.data() + (n + j) * g.image_size(), g, cols.data() + j * L, width);
      T* out = count > 1 ? product.data() : y.data() + n * out_ch * L;
      detail::matrix_view(out, out_ch, width).noalias() = w * detail::matrix_view(cols.data(), rows, width);
      if (count > 1) detail::matrix_to_images(out, count, out_ch, L, y.data() + n * out_ch * L);
      for (std::size_t j = 0; bias && j < count; ++j) detail::add_bias(y.data() + (n + j) * out_ch * L, bias, out_ch, L);
    }
  });
  return y;
}

/// Convolution input gradient: dX (N, C, H, W), dX_n = col2im(Wᵀ · dY_n) (+ bias[c]: the
/// transposed convolution's forward).
template <class T>
Tensor<T> conv2d_backward_input(const Tensor<T>& grad_out, const Tensor<T>& weight, const ConvGeometry& g,
                                const T* bias = nullptr) {
  const std::size_t batch = grad_out.shape()[0], out_ch = grad_out.shape()[1], rows = g.col_rows(), L = g.positions();
  Tensor<T> dx = Tensor<T>::empty({batch, g.channels, g.height, g.width});
  detail::count_matmul_flops(rows, batch * L, out_ch);
  const auto w = weight.matrix(out_ch, rows);
  const std::size_t parts = detail::batch_parts(batch);
  detail::for_each_batch_part(batch, parts, [&](std::size_t, std::size_t first, std::size_t last) {
    const std::size_t group = std::min(detail::images_per_product(L), last - first);
    Tensor<T> dcols = Tensor<T>::empty({rows, group * L});
    Tensor<T> gathered = group > 1 ? Tensor<T>::empty({out_ch, group * L}) : Tensor<T>();
    for (std::size_t n = first; n < last; n += group) {
      const std::size_t count = std::min(group, last - n), width = count * L;
      const T* dy = detail::images_as_matrix(grad_out.data() + n * out_ch * L, count, out_ch, L, gathered);
      detail::matrix_view(dcols.data(), rows, width).noalias() = w.transpose() * detail::matrix_view(dy, out_ch, width);
      for (std::size_t j = 0; j < count; ++j) {
        T* image = dx.data() + (n + j) * g.image_size();
        col2im(dcols.data() + j * L, g, image, width);
        if (bias) detail::add_bias(image, bias, g.channels, g.height * g.width);
      }
    }
  });
  return dx;
}

/// Convolution weight gradient: dW (O, C, k, k) = Σ_n dY_n · im2col(X_n)ᵀ. Each run of images
/// sums into its own partial; the partials are added in run order, so the result depends on
/// the thread count only.
template <class T>
Tensor<T> conv2d_backward_weight(const Tensor<T>& grad_out, const Tensor<T>& x, const ConvGeometry& g) {
  const std::size_t batch = grad_out.shape()[0], out_ch = grad_out.shape()[1], rows = g.col_rows(), L = g.positions();
  detail::count_matmul_flops(out_ch, rows, batch * L);
  const std::size_t parts = detail::batch_parts(batch);
  std::vector<Tensor<T>> partial(parts);
  detail::for_each_batch_part(batch, parts, [&](std::size_t part, std::size_t first, std::size_t last) {
    partial[part] = Tensor<T>::zeros({out_ch, g.channels, g.kernel, g.kernel});
    auto dw = partial[part].matrix(out_ch, rows);
    const std::size_t group = std::min(detail::images_per_product(L), last - first);
    Tensor<T> cols = Tensor<T>::empty({rows, group * L});
    Tensor<T> gathered = group > 1 ? Tensor<T>::empty({out_ch, group * L}) : Tensor<T>();
    for (std::size_t n = first; n < last; n += group) {
      const std::size_t count = std::min(group, last - n), width = count * L;
      const T* dy = detail::images_as_matrix(grad_out.data() + n * out_ch * L, count, out_ch, L, gathered);
      for (std::size_t j = 0; j < count; ++j) im2col(x.data() + (n + j) * g.image_size(), g, cols.data() + j * L, width);
      dw.noalias() += detail::matrix_view(dy, out_ch, width) * detail::matrix_view(cols.data(), rows, width).transpose();
    }
  });
  for (std::size_t part = 1; part < parts; ++part) partial[0].array() += partial[part].array();
  return std::move(partial[0]);
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
  Tensor<T> y = conv2d_forward(x.value(), weight.value(), g, bias.defined() ? bias.value().data() : nullptr);
  return make_op_result("conv2d", std::move(y), {&x, &weight, &bias},
                        [x, weight, bias, g](const Tensor<T>& gy, const Tensor<T>&) {
                          if (needs_grad(x)) accumulate_grad(x, conv2d_backward_input(gy, weight.value(), g));
                          if (needs_grad(weight)) accumulate_grad(weight, conv2d_backward_weight(gy, x.value(), g));
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
  Tensor<T> y = conv2d_backward_input(x.value(), weight.value(), g, bias.defined() ? bias.value().data() : nullptr);
  return make_op_result("conv2d_transpose", std::move(y), {&x, &weight, &bias},
                        [x, weight, bias, g](const Tensor<T>& gy, const Tensor<T>&) {
                          if (needs_grad(x)) accumulate_grad(x, conv2d_forward(gy, weight.value(), g));
                          if (needs_grad(weight)) accumulate_grad(weight, conv2d_backward_weight(x.value(), gy, g));
                          if (needs_grad(bias)) accumulate_grad(bias, channel_sum(gy));
                        });
}

}  // namespace tessera
