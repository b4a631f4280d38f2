// tessera/kernels/conv/backward.hpp — a convolution's gradients on raw tensors. With every Y_n
// an (O × L) slice of NCHW and cols_n = im2col(X_n):
//     input gradient:    dX_n = col2im(Wᵀ · dY_n)
//     weight gradient:   dW = Σ_n dY_n · cols_nᵀ
// A transposed convolution is the adjoint of a convolution (Dumoulin & Visin, "A guide to
// convolution arithmetic", 2016): its forward is conv2d's input gradient, its input gradient is
// conv2d's forward, and its weight gradient is conv2d's with the roles of x and dy swapped; so
// the same kernels serve both (the transposed convolution's backward runs two of them on each
// group of dy at once). Where the convolution's op ends in a rectifier, dY is first taken back
// through it (dz), group by group while it is in cache.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "../../core/flops.hpp"
#include "../../core/parallel.hpp"
#include "../../core/tensor.hpp"
#include "../arch/arch.hpp"
#include "../epilogue.hpp"
#include "../gemm.hpp"
#include "forward.hpp"
#include "geometry.hpp"
#include "im2col.hpp"
#include "plan.hpp"
#include "scratch.hpp"

namespace tessera::kernels {

/// The rectified output y of a convolution whose op ends in a rectifier (conv2d's fused ReLU /
/// LeakyReLU): the gradient passes back through it on its way to the kernels. None if y is null.
template <class T>
struct RectifiedOutput {
  const T* y = nullptr;
  Rectifier rectifier;
};

/// The gradients a convolution's backward makes, each only if asked (else undefined).
template <class T>
struct ConvGrads {
  Tensor<T> dx, dw, db;
};

namespace detail {
/// The output gradient of images [n, n + count), (O, L) each, as the backward kernels read it:
/// dy itself, or — when the convolution's op ends in a rectifier — the gradient at the
/// rectifier's input, dz = dy·(y > 0 ? 1 : slope), made for the group in `scratch` while it is
/// in cache (the batch's dz is never written).
template <class T>
const T* group_gradient(const Tensor<T>& dy, const RectifiedOutput<T>& through, std::size_t n, std::size_t count,
                        ConvScratch<T>& scratch) {
  const std::size_t image = dy.size() / dy.shape()[0], first = n * image, size = count * image;
  if (!through.y) return dy.data() + first;
  T* dz = buffer(scratch.output_gradient, size);
  gradients_through_rectifier(dy.data() + first, through.y + first, size, T(through.rectifier.slope), dz);
  return dz;
}

/// The whole batch's gradient at a rectifier's input, dz = dy·(y > 0 ? 1 : slope), for a
/// kernel that reads it all at once.
template <class T>
Tensor<T> gradient_through_rectifier(const Tensor<T>& dy, const RectifiedOutput<T>& through) {
  Tensor<T> dz = Tensor<T>::empty(dy.shape());
  parallel_for_ranges(0, dy.size(), 1 << 14, [&](std::size_t first, std::size_t last) {
    gradients_through_rectifier(dy.data() + first, through.y + first, last - first, T(through.rectifier.slope), dz.data() + first);
  });
  return dz;
}

/// A convolution's weights (O, C, k, k) flipped and transposed, W'[c, o, a, b] =
/// W[o, c, k−1−a, k−1−b]: the weights of its input gradient as a convolution.
template <class T>
Tensor<T> flipped_transposed(const Tensor<T>& weight) {
  const std::size_t out_ch = weight.shape()[0], in_ch = weight.shape()[1], k = weight.shape()[2], taps = k * k;
  Tensor<T> flipped = Tensor<T>::empty({in_ch, out_ch, k, k});
  for (std::size_t o = 0; o < out_ch; ++o)
    for (std::size_t c = 0; c < in_ch; ++c)
      for (std::size_t t = 0; t < taps; ++t)
        flipped.data()[(c * out_ch + o) * taps + t] = weight.data()[(o * in_ch + c) * taps + taps - 1 - t];
  return flipped;
}

/// image[c, ·] += bias[c] over one (C, L) image: done per image while it is in cache.
template <class T>
void add_bias(T* image, const T* bias, std::size_t channels, std::size_t L) {
  for (std::size_t c = 0; c < channels; ++c) {
    const T shift = bias[c];  // a local: the stores cannot alias it
#pragma omp simd
    for (std::size_t l = 0; l < L; ++l) image[c * L + l] += shift;
  }
}

/// `count` NCHW images (C, L) → one (C × count·L) matrix with image j in columns
/// [j·L, (j + 1)·L): a group's operand side by side.
template <class T>
void images_to_matrix(const T* images, std::size_t count, std::size_t channels, std::size_t L, T* matrix) {
  for (std::size_t j = 0; j < count; ++j)
    for (std::size_t c = 0; c < channels; ++c)
      std::copy_n(images + (j * channels + c) * L, L, matrix + (c * count + j) * L);
}

/// Σ of one row of L values, in the order every bias gradient uses.
template <class T>
T row_sum(const T* row, std::size_t L) {
  T sum = T(0);
#pragma omp simd reduction(+ : sum)
  for (std::size_t l = 0; l < L; ++l) sum += row[l];
  return sum;
}
/// Σ of each of `count` rows of L values, into sums[0 .. count).
template <class T>
void row_sums(const T* rows, std::size_t count, std::size_t L, T* sums) {
  for (std::size_t i = 0; i < count; ++i) sums[i] = row_sum(rows + i * L, L);
}

/// Each channel's total over the batch from per-image sums (N × C): added in image order, so
/// the result is the same at any thread count.
template <class T>
Tensor<T> total_over_batch(const Tensor<T>& per_image) {
  const std::size_t batch = per_image.shape()[0], channels = per_image.shape()[1];
  Tensor<T> out = Tensor<T>::zeros({channels});
  for (std::size_t n = 0; n < batch; ++n)
    for (std::size_t c = 0; c < channels; ++c) out[c] += per_image.data()[n * channels + c];
  return out;
}

/// Adds one group's weight gradient dY · im2col(X)ᵀ (O × C·k·k) to `partial`: dy_rows are the
/// group's output gradients (count images of O × L), `images` X and `planes` its phase planes
/// (null: im2col reads the image rows, planes_for_im2col).
template <class T>
void add_weight_gradient_group(const T* dy_rows, const T* images, const T* planes, std::size_t count, const ConvGeometry& g,
                               std::size_t out_ch, ConvScratch<T>& scratch, T* partial) {
  const std::size_t rows = g.col_rows(), L = g.positions(), width = count * L;
  constexpr std::size_t block = gemm::Tile<T>::lanes;  // columns of im2col(X)ᵀ packed per transpose
  // A = dY (O × width): its rows run along the positions, so packing transposes them
  if (count > 1) {  // the group's images side by side first
    T* gathered = buffer(scratch.staged_rows, out_ch * width);
    images_to_matrix(dy_rows, count, out_ch, L, gathered);
    dy_rows = gathered;
  }
  T* dy = buffer(scratch.packed_lhs, gemm::packed_lhs_size<T>(out_ch, width));
  gemm::pack_lhs(dy_rows, out_ch, width, width, 1, dy);
  // B = im2col(X)ᵀ (width × C·k·k): its columns are im2col's rows, made `block` at a time and
  // `chunk` columns of dW per product, so that B stays in L2 (each dW entry's sum is the same)
  const std::size_t chunk = std::max(gemm::Tile<T>::cols, (std::size_t(512) << 10) / (width * sizeof(T)) / gemm::Tile<T>::cols * gemm::Tile<T>::cols);
  T* cols_t = buffer(scratch.packed_rhs, gemm::packed_rhs_size<T>(width, std::min(rows, chunk)));
  T* staged = buffer(scratch.staged_rows, block * width);
  const std::vector<ColumnRun> runs = column_runs(g, count);
  for (std::size_t first = 0; first < rows; first += chunk) {
    const std::size_t last = std::min(rows, first + chunk);
    if (planes) {
      for_each_tap(g, [&](std::size_t r, std::size_t offset) {  // im2col's rows, `block` at a time, then transposed
        if (r < first || r >= last) return;
        T* row = staged + (r % block) * width;
        for (const ColumnRun& run : runs) arch::copy_run(planes + offset + run.from, run.length, row + run.to);
        if (r % block == block - 1 || r == last - 1) gemm::pack_rhs_columns(staged, width, r - r % block - first, r % block + 1, width, cols_t);
      });
    } else {
      for (std::size_t c = first / block; c < last / block; ++c) {  // a channel's 16 rows: one block
        arch::stage_channel_stride2(images, count, g, c, staged, width);
        gemm::pack_rhs_columns(staged, width, c * block - first, block, width, cols_t);
      }
    }
    gemm::zero_rhs_tail(width, last - first, cols_t);
    gemm::multiply_packed(out_ch, last - first, width, dy, cols_t, partial + first, rows, true);
  }
}

/// The weight gradient's partial sums, one per run of images (part, one thread's), added in
/// run order at the end: so the result depends on the thread count only.
template <class T>
class WeightGradientSums {
 public:
  WeightGradientSums(std::size_t batch, Shape shape) : partial_(batch_parts(batch)), shape_(std::move(shape)) {}
  T* of(std::size_t part) {
    if (!partial_[part].defined()) partial_[part] = Tensor<T>::zeros(shape_);
    return partial_[part].data();
  }
  Tensor<T> total() {
    if (!partial_[0].defined()) return Tensor<T>::zeros(shape_);  // an empty batch
    for (std::size_t part = 1; part < partial_.size(); ++part) partial_[0].array() += partial_[part].array();
    return std::move(partial_[0]);
  }

 private:
  std::vector<Tensor<T>> partial_;
  Shape shape_;
};
}  // namespace detail

/// Convolution input gradient: dX (N, C, H, W), dX_n = col2im(Wᵀ · dY_n) (+ bias[c]: the
/// transposed convolution's forward); dY taken back through a rectifier first if `through`.
template <class T>
Tensor<T> conv2d_backward_input(const Tensor<T>& grad_out, const Tensor<T>& weight, const ConvGeometry& g,
                                const T* bias = nullptr, const RectifiedOutput<T>& through = {}) {
  const std::size_t batch = grad_out.shape()[0], out_ch = grad_out.shape()[1], rows = g.col_rows(), L = g.positions();
  const ConvPlan plan = plan_input_gradient<T>(g, out_ch);
  if (plan.lowering == Lowering::winograd) {  // the convolution of dY with the flipped, transposed weights
    const ConvGeometry back = input_gradient_as_convolution(g, out_ch);
    const Tensor<T> flipped = detail::flipped_transposed(weight);
    const Epilogue<T> plus_bias{bias};
    if (!through.y) return conv2d_forward(grad_out, flipped, back, plus_bias);
    return conv2d_forward(detail::gradient_through_rectifier(grad_out, through), flipped, back, plus_bias);
  }
  Tensor<T> dx = Tensor<T>::empty({batch, g.channels, g.height, g.width});
  tessera::detail::count_matmul_flops(rows, batch * L, out_ch);
  const Tensor<T> packed_wt = packed_lhs(weight.data(), rows, out_ch, 1, rows);  // Wᵀ
  for_each_image_group<T>(batch, plan.images_per_group, [&](auto& scratch, std::size_t, std::size_t n, std::size_t count) {
    const std::size_t width = count * L;
    const T* gradient = detail::group_gradient(grad_out, through, n, count, scratch);
    T* dy = buffer(scratch.packed_rhs, gemm::packed_rhs_size<T>(out_ch, width));
    for (std::size_t o = 0; o < out_ch; ++o)
      for (std::size_t j = 0; j < count; ++j) gemm::pack_rhs_run(gradient + (j * out_ch + o) * L, L, o, j * L, out_ch, dy);
    gemm::zero_rhs_tail(out_ch, width, dy);
    T* dcols = buffer(scratch.product, rows * width);
    gemm::multiply_packed(rows, width, out_ch, packed_wt.data(), dy, dcols, width, false);
    T* planes = plan.columns == Columns::via_phases ? buffer(scratch.phase_planes, g.planes_size()) : nullptr;
    for (std::size_t j = 0; j < count; ++j) {
      T* image = dx.data() + (n + j) * g.image_size();
      if (planes)
        col2im(dcols + j * L, g, image, width, planes);
      else
        arch::col2im_stride2(dcols + j * L, g, image, width);
      if (bias) detail::add_bias(image, bias, g.channels, g.height * g.width);
    }
  });
  return dx;
}

/// Convolution parameter gradients: dW (O, C, k, k) = Σ_n dY_n · im2col(X_n)ᵀ, the same at any
/// thread count (WeightGradientSums), and the bias's Σ_n,l dY[n, o, l] from the same rows while
/// they are in cache; each only if asked (dw, db). dY is taken back through a rectifier first
/// if `through`.
template <class T>
ConvGrads<T> conv2d_backward_params(const Tensor<T>& grad_out, const Tensor<T>& x, const ConvGeometry& g,
                                    const RectifiedOutput<T>& through, bool dw, bool db) {
  const std::size_t batch = grad_out.shape()[0], out_ch = grad_out.shape()[1], rows = g.col_rows(), L = g.positions();
  if (dw) tessera::detail::count_matmul_flops(out_ch, rows, batch * L);
  const ConvPlan plan = plan_im2col<T>(g);
  detail::WeightGradientSums<T> sums(batch, {out_ch, g.channels, g.kernel, g.kernel});
  Tensor<T> image_sums = db ? Tensor<T>::empty({batch, out_ch}) : Tensor<T>();
  for_each_image_group<T>(batch, plan.images_per_group, [&](auto& scratch, std::size_t part, std::size_t n, std::size_t count) {
    const T* dy_rows = detail::group_gradient(grad_out, through, n, count, scratch);
    if (db) detail::row_sums(dy_rows, count * out_ch, L, image_sums.data() + n * out_ch);
    if (!dw) return;  // (a frozen weight with a trainable bias: no product)
    const T* images = x.data() + n * g.image_size();
    detail::add_weight_gradient_group(dy_rows, images, planes_for_im2col(images, count, g, plan, scratch), count, g, out_ch,
                                      scratch, sums.of(part));
  });
  ConvGrads<T> out;
  if (dw) out.dw = sums.total();
  if (db) out.db = detail::total_over_batch(image_sums);
  return out;
}

/// The gradients of a transposed convolution (x (N, Cin, H, W) → y, weight (Cin, Cout, k, k))
/// from dy, in one pass over the batch: dx = conv2d_forward(dy), dW = conv2d_backward_params(x,
/// dy) and the bias's Σ dy, each group's dy split into its phase planes once for both
/// products. Each is made only if asked (dx, dw, db).
template <class T>
ConvGrads<T> conv2d_transpose_backward(const Tensor<T>& gy, const Tensor<T>& x, const Tensor<T>& weight,
                                       const ConvGeometry& g, bool dx, bool dw, bool db) {
  const std::size_t batch = x.shape()[0], in_ch = weight.shape()[0], rows = g.col_rows(), L = g.positions();
  const ConvPlan plan = plan_im2col<T>(g);
  ConvGrads<T> out;
  std::optional<Im2colForward<T>> forward;  // dx's product, if asked
  Tensor<T> image_sums;
  if (dx) {
    out.dx = Tensor<T>::empty(x.shape());
    tessera::detail::count_matmul_flops(in_ch, batch * L, rows);
    forward.emplace(g, weight.data(), in_ch, Epilogue<T>{});
  }
  if (dw) tessera::detail::count_matmul_flops(in_ch, rows, batch * L);
  if (db) image_sums = Tensor<T>::empty({batch, g.channels});
  detail::WeightGradientSums<T> sums(batch, weight.shape());
  for_each_image_group<T>(batch, plan.images_per_group, [&](auto& scratch, std::size_t part, std::size_t n, std::size_t count) {
    const T* dy = gy.data() + n * g.image_size();
    if (db) detail::row_sums(dy, count * g.channels, g.height * g.width, image_sums.data() + n * g.channels);
    if (!dx && !dw) return;
    const T* planes = planes_for_im2col(dy, count, g, plan, scratch);
    if (dx) forward->group(dy, planes, count, scratch, out.dx.data() + n * in_ch * L);
    if (dw) detail::add_weight_gradient_group(x.data() + n * in_ch * L, dy, planes, count, g, in_ch, scratch, sums.of(part));
  });
  if (dw) out.dw = sums.total();
  if (db) out.db = detail::total_over_batch(image_sums);
  return out;
}

}  // namespace tessera::kernels
