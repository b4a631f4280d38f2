// tessera/ops/conv.hpp — 2-D convolution and transposed convolution, lowered to matrix
// products by im2col / col2im, one image at a time, on the packed GEMM of gemm.hpp.
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
// So the same kernels serve both layers (the transposed convolution's backward runs two of
// them on each group of dy at once).
//
// Why one image at a time: one image's columns stay in the core's cache between im2col and
// the product, the product writes NCHW directly, and nothing batch-sized is kept for the
// backward (the weight gradient redoes im2col from x). Each thread takes a contiguous run of
// images; images with few output positions are multiplied a small group at a time (see
// images_per_product), their columns side by side. The weights are packed for the GEMM once
// per call, and im2col writes its columns straight in the GEMM's packed order. im2col reads
// the image through its stride phases (split_phases), where every row of the columns is a
// run of contiguous copies with no bounds to test. A 3×3 convolution of stride 1 and padding 1
// over even sizes, with enough channels, runs its forward and its input gradient (so also
// such a transposed convolution's forward) by Winograd's F(2×2, 3×3) instead (winograd.hpp):
// 16 products of depth C over 2×2 tiles, 2.25× fewer multiply-adds than im2col's. (Its
// transforms add and subtract neighbouring pixels, so an infinite input spreads NaN over
// its tiles where the direct sum gives ±inf.)
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "../autograd/var.hpp"
#include "../core/flops.hpp"
#include "../core/parallel.hpp"
#include "conv_geometry.hpp"
#include "gemm.hpp"
#include "rectifier.hpp"
#include "stride2.hpp"
#include "winograd.hpp"

namespace tessera {

/// The rectified output y of a convolution whose op ends in a rectifier (conv2d's fused ReLU /
/// LeakyReLU): the gradient passes back through it on its way to the kernels. None if y is null.
template <class T>
struct RectifiedOutput {
  const T* y = nullptr;
  Rectifier rectifier;
};

namespace detail {
/// How many contiguous runs of images a batch is split into: one per thread when every
/// thread gets an image (each then multiplies serially), else one run whose products the
/// GEMM threads itself — one level of threading either way.
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

}  // namespace detail

// im2col reads each padded pixel (i, j) = (oh·s + ki, ow·s + kj) of the image. Split first
// into its stride phases, the image makes every row of the columns a run of contiguous copies:
// padded pixel (i, j) of channel c lives in plane (c, i mod s, j mod s) at (i / s, j / s), so
// tap (ki, kj) of output row oh is plane (c, ki mod s, kj mod s), row oh + ki / s, columns
// kj / s .. kj / s + Wo − 1. The padding is the planes' zero border: no bounds in the loops.
// (For stride 1 the one plane per channel is the zero-padded image.)

namespace detail {
/// The image columns iw with (iw + p) mod s = b for one column phase b: `count` of them from
/// `first`, at plane (·, ·, b)'s columns from (first + p) / s; `offset` adds phase b's plane.
struct ColumnPhase {
  std::size_t first, count, offset;
};
inline std::vector<ColumnPhase> column_phases(const ConvGeometry& g) {
  const std::size_t s = g.stride, p = g.padding;
  std::vector<ColumnPhase> phases;
  for (std::size_t b = 0; b < s; ++b) {
    const std::size_t first = (b + s - p % s) % s;
    if (first < g.width)
      phases.push_back({first, (g.width - first + s - 1) / s, b * g.plane_rows() * g.plane_cols() + (first + p) / s});
  }
  return phases;
}

/// visit(image row, plane row) for every image row of channel c: image row ih is padded row
/// i = ih + p, which is row i / s of planes (c, i mod s, b) — plane row points into phase
/// b = 0's, and phase b's is b·plane_rows·plane_cols further.
template <class Planes, class Visit>
void for_each_phase_row(const ConvGeometry& g, std::size_t c, Planes planes, Visit visit) {
  const std::size_t s = g.stride, p = g.padding, cols = g.plane_cols(), plane = g.plane_rows() * cols;
  for (std::size_t ih = 0, a = p % s, row = p / s; ih < g.height; ++ih) {
    visit(c * g.height + ih, planes + (c * s + a) * s * plane + row * cols);
    if (++a == s) a = 0, ++row;  // the next padded row
  }
}

/// Copies every s-th element from `from` to consecutive `to` (or the reverse when `Gather` is
/// false), `count` times.
template <bool Gather, class T>
void copy_strided(const T* from, T* to, std::size_t count, std::size_t s) {
  for (std::size_t i = 0; i < count; ++i) Gather ? to[i] = from[i * s] : to[i * s] = from[i];
}

/// The rows of a k×k max-pool's windows, split by column phase: tap (ki, kj) of output ow is
/// taps[ki·k + kj][ow] = in[(oh·k + ki)·W + ow·k + kj]. Stride 2 in floats splits whole rows
/// in registers (Stride2Rows).
template <class T>
void window_taps(const T* plane, std::size_t width, std::size_t oh, std::size_t k, std::size_t wo, T* taps) {
#if defined(__AVX512F__)
  const Stride2Rows stride2(2 * wo);
#endif
  for (std::size_t ki = 0; ki < k; ++ki) {
    const T* row = plane + (oh * k + ki) * width;
    T* phases = taps + ki * k * wo;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>)
      if (k == 2) {
        stride2.move<true>(row, phases, phases + wo);
        continue;
      }
#endif
    for (std::size_t kj = 0; kj < k; ++kj) copy_strided<true>(row + kj, phases + kj * wo, wo, k);
  }
}

/// Moves an image's rows to their places in the planes, or back: for stride 1 a shifted copy,
/// for stride 2 in floats with AVX-512 register shuffles, else a strided copy per column
/// phase. What depends on the geometry alone is worked out once.
template <class T>
class PhaseRows {
 public:
  explicit PhaseRows(const ConvGeometry& g)
      : g_(g), phases_(column_phases(g))
#if defined(__AVX512F__)
        , stride2_(g.width)
#endif
  {}

  /// Every row of one image (Split: image → planes; else back). Splitting, each channel's
  /// planes are zeroed just before its rows land, while they are in L1 (the padding is what
  /// stays zero) — unless `padding_zeroed`: the rows never touch the padding.
  template <bool Split>
  void move_image(ImageRow<Split, T> image, PlaneRow<Split, T> planes, bool padding_zeroed = false) const {
    const std::size_t channel_planes = g_.stride * g_.stride * g_.plane_rows() * g_.plane_cols();
    for (std::size_t c = 0; c < g_.channels; ++c) {
      if constexpr (Split)
        if (!padding_zeroed) std::fill_n(planes + c * channel_planes, channel_planes, T(0));
      move_channel<Split>(c, image, planes);
    }
  }

 private:
  /// The rows of channel c, the stride's way.
  template <bool Split>
  void move_channel(std::size_t c, ImageRow<Split, T> image, PlaneRow<Split, T> planes) const {
    const std::size_t s = g_.stride, p = g_.padding, width = g_.width;
    if (s == 1) {  // each padded row: a shifted copy
      for_each_phase_row(g_, c, planes, [&](std::size_t row, PlaneRow<Split, T> plane_row) {
        if constexpr (Split)
          gemm::copy_run(image + row * width, width, plane_row + p);
        else
          gemm::copy_run(plane_row + p, width, image + row * width);
      });
      return;
    }
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>)
      if (s == 2) {  // even columns to one phase, odd to the other
        const std::size_t cols = g_.plane_cols(), plane = g_.plane_rows() * cols;
        const std::size_t even = (p % 2) * plane + p / 2, odd = ((p + 1) % 2) * plane + (p + 1) / 2;
        const Stride2Rows rows = stride2_;  // a local: its masks stay in registers
        image += c * g_.height * width;
        for (std::size_t ih = 0; ih < g_.height; ++ih, image += width) {
          const std::size_t i = ih + p;  // padded row i is row i / 2 of the planes (c, i mod 2, ·)
          const auto plane_row = planes + (4 * c + 2 * (i % 2)) * plane + (i / 2) * cols;
          rows.move<Split>(image, plane_row + even, plane_row + odd);
        }
        return;
      }
#endif
    for_each_phase_row(g_, c, planes, [&](std::size_t row, PlaneRow<Split, T> plane_row) {
      for (const ColumnPhase& phase : phases_) {
        if constexpr (Split)
          copy_strided<true>(image + row * width + phase.first, plane_row + phase.offset, phase.count, s);
        else
          copy_strided<false>(plane_row + phase.offset, image + row * width + phase.first, phase.count, s);
      }
    });
  }

  ConvGeometry g_;
  std::vector<ColumnPhase> phases_;
#if defined(__AVX512F__)
  Stride2Rows stride2_;
#endif
};

}  // namespace detail

/// Image (C, H, W) → its zero-padded stride phases (planes_size() values). With
/// `padding_zeroed` (planes that held a split of the same geometry, or zeros) only the pixels
/// are written.
template <class T>
void split_phases(const T* image, const ConvGeometry& g, T* planes, bool padding_zeroed = false) {
  detail::PhaseRows<T>(g).template move_image<true>(image, planes, padding_zeroed);
}

/// The adjoint of split_phases: each image pixel from its place in the planes (the padding,
/// which no pixel reads, is dropped).
template <class T>
void merge_phases(const T* planes, const ConvGeometry& g, T* image) {
  detail::PhaseRows<T>(g).template move_image<false>(image, planes);
}

/// visit(r, offset) for each row r = (c, ki, kj) of the columns, in order: tap (ki, kj) of
/// channel c reads plane (c, ki mod s, kj mod s) from row ki / s, column kj / s — `offset`
/// into the image's planes — and output row oh's Wo values from offset + oh·plane_cols().
template <class Visit>
void for_each_tap(const ConvGeometry& g, Visit visit) {
  const std::size_t k = g.kernel, s = g.stride, plane = g.plane_rows() * g.plane_cols();
  std::vector<std::size_t> row_offset(k), col_offset(k);  // the divisions, once per call
  for (std::size_t tap = 0; tap < k; ++tap) {
    row_offset[tap] = (tap % s) * s * plane + (tap / s) * g.plane_cols();
    col_offset[tap] = (tap % s) * plane + tap / s;
  }
  std::size_t r = 0;
  for (std::size_t c = 0; c < g.channels; ++c)
    for (std::size_t ki = 0; ki < k; ++ki)
      for (std::size_t kj = 0; kj < k; ++kj) visit(r++, c * s * s * plane + row_offset[ki] + col_offset[kj]);
}

/// A piece of a row of the columns: `length` values read from the planes at tap offset +
/// `from`, written at `to` (from the row's start).
struct ColumnRun {
  std::size_t from, to, length;
};

/// The runs that make each row of `count` images' columns side by side: image j's output row
/// oh is read at j·planes_size + oh·plane_cols and is columns j·L + oh·Wo. With `panel` > 0 the
/// row goes to the packed GEMM's B of depth k (gemm::pack_rhs_run's layout): runs are cut at
/// its panels and `to` is the packed offset (row r adds r·panel). Computed once per group, they
/// leave each tap a plain loop of copies.
inline std::vector<ColumnRun> column_runs(const ConvGeometry& g, std::size_t count, std::size_t panel = 0,
                                          std::size_t k = 0) {
  std::vector<ColumnRun> runs;
  for (std::size_t j = 0; j < count; ++j)
    for (std::size_t oh = 0; oh < g.out_height; ++oh) {
      std::size_t from = j * g.planes_size() + oh * g.plane_cols(), column = (j * g.out_height + oh) * g.out_width;
      for (std::size_t left = g.out_width; left > 0;) {
        const std::size_t lane = panel ? column % panel : 0, length = panel ? std::min(left, panel - lane) : left;
        runs.push_back({from, panel ? (column - lane) * k + lane : column, length});
        from += length, column += length, left -= length;
      }
    }
  return runs;
}

/// One image (C, H, W) → its columns, (C·k·k) rows of L: row r = (c, ki, kj) holds
/// x[c, oh·s − p + ki, ow·s − p + kj] at oh·Wo + ow (zero in the padding), from cols + r·ld
/// (ld = L by default).
template <class T>
void im2col(const T* image, const ConvGeometry& g, T* cols, std::size_t ld = 0) {
  std::vector<T> planes(g.planes_size());
  split_phases(image, g, planes.data());
  const std::vector<ColumnRun> runs = column_runs(g, 1);
  for_each_tap(g, [&](std::size_t r, std::size_t offset) {
    for (const ColumnRun& run : runs)
      gemm::copy_run(planes.data() + offset + run.from, run.length, cols + r * (ld ? ld : g.positions()) + run.to);
  });
}

namespace detail {
/// The adjoint of im2col's runs: adds row r of one image's columns (at `in`) into its planes.
template <class T>
void add_columns_row(const T* in, const ConvGeometry& g, std::size_t offset, T* planes) {
  const std::size_t wo = g.out_width;
  T* out = planes + offset;
  for (std::size_t oh = 0; oh < g.out_height; ++oh, out += g.plane_cols(), in += wo)
#pragma omp simd  // (vectorised at -O2 too)
    for (std::size_t ow = 0; ow < wo; ++ow) out[ow] += in[ow];
}
}  // namespace detail

/// The adjoint of im2col: image (C, H, W) = the sum of every column entry into the position
/// it was read from, in a fixed order. Rows ld apart, as im2col. The sums are made in phase
/// planes: `planes` (planes_size() values, overwritten), or a buffer of its own if null.
template <class T>
void col2im(const T* cols, const ConvGeometry& g, T* image, std::size_t ld = 0, T* planes = nullptr) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (detail::stride2_applies<T>(g)) return detail::col2im_stride2(cols, g, image, ld ? ld : g.positions());
#endif
  std::vector<T> own(planes ? 0 : g.planes_size());
  if (!planes) planes = own.data();
  std::fill(planes, planes + g.planes_size(), T(0));
  for_each_tap(g, [&](std::size_t r, std::size_t offset) {
    detail::add_columns_row(cols + r * (ld ? ld : g.positions()), g, offset, planes);
  });
  merge_phases(planes, g, image);
}

namespace detail {
/// Images per product: one, unless that leaves more than an eighth of the GEMM's last panel
/// (32 columns for float with AVX-512) empty, then the fewest side by side that do not (7×7
/// outputs: 49 of 64 columns used alone, 147 of 160 three at a time). Fewer images keep the
/// packed columns small enough for the core's cache.
template <class T>
std::size_t images_per_product(std::size_t positions) {
  constexpr std::size_t panel = gemm::Tile<T>::cols;
  std::size_t count = 1;
  while (count < 16 && 8 * count * positions < 7 * gemm::round_up(count * positions, panel)) ++count;
  return count;
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
/// A thread's buffers for its groups of images, allocated by the first group and reused.
template <class T>
struct GroupScratch {
  Tensor<T> planes, packed, staged, product, gradient;
};
template <class T>
T* buffer(Tensor<T>& t, std::size_t size) {
  if (t.size() < size) t = Tensor<T>::empty({size});
  return t.data();
}
/// A group of `count` images split into their phase planes, one after another, in the thread's
/// scratch. The buffer is zeroed when new; within one call every split has the same geometry
/// and writes the pixels only, so the padding stays zero for every later group.
template <class T>
const T* split_group(const T* images, std::size_t count, const ConvGeometry& g, GroupScratch<T>& scratch) {
  const std::size_t size = count * g.planes_size();
  if (scratch.planes.size() < size) scratch.planes = Tensor<T>::zeros({size});
  T* planes = scratch.planes.data();
  for (std::size_t j = 0; j < count; ++j)
    split_phases(images + j * g.image_size(), g, planes + j * g.planes_size(), /*padding_zeroed=*/true);
  return planes;
}

/// body(scratch, part, n, count) for each group of `count` images from image n: each thread
/// takes a contiguous run of the batch (part), `group_size` at a time.
template <class T, class Body>
void for_each_image_group(std::size_t batch, std::size_t group_size, Body&& body) {
  const std::size_t parts = batch_parts(batch);
  for_each_batch_part(batch, parts, [&](std::size_t part, std::size_t first, std::size_t last) {
    const std::size_t group = std::min(group_size, last - first);
    GroupScratch<T> scratch;
    for (std::size_t n = first; n < last; n += group) body(scratch, part, n, std::min(group, last - n));
  });
}

/// The output gradient of images [n, n + count), (O, L) each, as the backward kernels read it:
/// dy itself, or — when the convolution's op ends in a rectifier — the gradient at the
/// rectifier's input, dz = dy·(y > 0 ? 1 : slope), made for the group in `scratch` while it is
/// in cache (the batch's dz is never written).
template <class T>
const T* group_gradient(const Tensor<T>& dy, const RectifiedOutput<T>& through, std::size_t n, std::size_t count,
                        Tensor<T>& scratch) {
  const std::size_t image = dy.size() / dy.shape()[0], first = n * image, size = count * image;
  if (!through.y) return dy.data() + first;
  T* dz = buffer(scratch, size);
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

/// Σ of one row of L values, in the order every bias gradient uses.
template <class T>
T row_sum(const T* row, std::size_t L) {
  T sum = T(0);
#pragma omp simd reduction(+ : sum)
  for (std::size_t l = 0; l < L; ++l) sum += row[l];
  return sum;
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

/// A (m × k) packed once for every image: A(i, kk) = a[i·row_stride + kk·col_stride].
template <class T>
Tensor<T> packed_lhs(const T* a, std::size_t m, std::size_t k, std::size_t row_stride, std::size_t col_stride) {
  Tensor<T> packed = Tensor<T>::empty({gemm::packed_lhs_size<T>(m, k)});
  gemm::pack_lhs(a, m, k, row_stride, col_stride, packed.data());
  return packed;
}
}  // namespace detail

// The kernels below multiply with the packed GEMM (gemm.hpp): the weights are packed once
// per call, and each group's other operand is packed as it is made.

namespace detail {
/// Row oh of a k×k max-pool of stride k over one (H × W) plane, each window's maximum plus
/// `shift`, rectified if asked: the same numbers as pooling after the shift and rectifier,
/// which are monotonic (and rounding keeps order), in a k²-th of the additions. `taps` holds
/// k²·wo values.
template <class T>
void pooled_row(const T* plane, std::size_t width, std::size_t oh, std::size_t k, std::size_t wo, T shift,
                Rectifier rectifier, T* taps, T* out) {
  window_taps(plane, width, oh, k, wo, taps);
  std::copy_n(taps, wo, out);
  for (std::size_t tap = 1; tap < k * k; ++tap)
#pragma omp simd  // (these loops vectorised at -O2 too)
    for (std::size_t ow = 0; ow < wo; ++ow) out[ow] = taps[tap * wo + ow] > out[ow] ? taps[tap * wo + ow] : out[ow];
#pragma omp simd
  for (std::size_t ow = 0; ow < wo; ++ow) out[ow] += shift;
  if (rectifier.enabled) rectify_in_place(out, wo, T(rectifier.slope));
}

/// im2col of `count` images into packed order straight from their rows, where
/// stride2_im2col_applies (no phase planes).
template <class T>
void im2col_direct(const T* images, std::size_t count, const ConvGeometry& g, T* packed) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) im2col_stride2_packed(images, count, g, packed);
#else
  (void)images, (void)count, (void)g, (void)packed;
#endif
}

/// Channel c's 16 rows of im2col of `count` images side by side (rows `width` apart in
/// `staged`), straight from the image rows, where stride2_im2col_applies.
template <class T>
void stage_channel_direct(const T* images, std::size_t count, const ConvGeometry& g, std::size_t c, T* staged, std::size_t width) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    for (std::size_t j = 0; j < count; ++j)
      for_each_stride2_column_piece(images + j * g.image_size(), g, c, c + 1, [&](std::size_t r, std::size_t q, __m512 v, std::size_t lanes) {
        _mm512_mask_storeu_ps(staged + (r % 16) * width + j * g.positions() + q, __mmask16((1u << lanes) - 1), v);
      });
#else
  (void)images, (void)count, (void)g, (void)c, (void)staged, (void)width;
#endif
}

/// Phase planes for `count` images in the thread's scratch (split_group), or none (null) where
/// im2col reads the image rows directly (stride2_im2col_applies).
template <class T>
const T* planes_for_im2col(const T* images, std::size_t count, const ConvGeometry& g, GroupScratch<T>& scratch) {
  return stride2_im2col_applies<T>(g) ? nullptr : split_group(images, count, g, scratch);
}

/// The forward product of one group of `count` images whose phase planes are made: their
/// outputs y (count NCHW images of O × L, at `y`) = W · im2col (+ bias), rectified if asked,
/// and max-pooled over k×k windows of stride k if max_pool = k > 0 (then y holds O planes of
/// (Ho / k) × (Wo / k) per image: inference's Conv2D + BatchNorm + ReLU + MaxPool2D).
template <class T>
void forward_group(const T* images, const T* planes, std::size_t count, const ConvGeometry& g, const Tensor<T>& packed_w,
                   std::size_t out_ch, const T* bias, Rectifier rectifier, GroupScratch<T>& scratch, T* y,
                   std::size_t max_pool = 0) {
  const std::size_t rows = g.col_rows(), L = g.positions(), width = count * L;
  T* cols = buffer(scratch.packed, gemm::packed_rhs_size<T>(rows, width));
  if (planes) {
    const std::vector<ColumnRun> runs = column_runs(g, count, gemm::Tile<T>::cols, rows);
    for_each_tap(g, [&](std::size_t r, std::size_t offset) {  // im2col straight into packed order
      T* packed_row = cols + r * gemm::Tile<T>::cols;
      for (const ColumnRun& run : runs) gemm::copy_run(planes + offset + run.from, run.length, packed_row + run.to);
    });
  } else {
    im2col_direct(images, count, g, cols);
  }
  gemm::zero_rhs_tail(rows, width, cols);
  // A shallow product stores each tile of C right after a few steps: into y's fresh memory
  // that would wait on every line (measured: half the speed for k = 48), so it goes to a
  // buffer in cache and on to y with the bias and rectifier. (So do a group's products, and
  // pooled ones.)
  const bool via_buffer = count > 1 || rows <= gemm::Tile<T>::depth_block || max_pool > 0;
  T* product = via_buffer ? buffer(scratch.product, out_ch * width) : y;
  gemm::multiply_packed(out_ch, width, rows, packed_w.data(), cols, product, width, false);
  const T slope = T(rectifier.slope);
  const std::size_t pooled_h = max_pool ? g.out_height / max_pool : 0, pooled_w = max_pool ? g.out_width / max_pool : 0;
  T* taps = max_pool ? buffer(scratch.staged, max_pool * max_pool * pooled_w) : nullptr;
  for (std::size_t j = 0; j < count; ++j)
    for (std::size_t o = 0; o < out_ch; ++o) {  // row o of image j, while it is in cache
      const T* from = product + (o * count + j) * L;
      if (max_pool) {
        T* to = y + (j * out_ch + o) * pooled_h * pooled_w;
        for (std::size_t oh = 0; oh < pooled_h; ++oh)
          pooled_row(from, g.out_width, oh, max_pool, pooled_w, bias ? bias[o] : T(0), rectifier, taps, to + oh * pooled_w);
        continue;
      }
      T* to = y + (j * out_ch + o) * L;
      if (bias) {
        const T shift = bias[o];
#pragma omp simd
        for (std::size_t l = 0; l < L; ++l) to[l] = from[l] + shift;
      }
      else if (via_buffer)
        std::copy_n(from, L, to);
      if (rectifier.enabled) rectify_in_place(to, L, slope);
    }
}

/// Whether conv2d_forward runs by Winograd's F(2×2, 3×3) (winograd.hpp): a 3×3 kernel of
/// stride 1 and padding 1 over even heights and widths, pooled 2×2 or not at all, with
/// enough channels each way that its 16 products are worth their transforms.
inline bool winograd_applies(const ConvGeometry& g, std::size_t out_ch, std::size_t max_pool) {
  return g.kernel == 3 && g.stride == 1 && g.padding == 1 && g.height % 2 == 0 && g.width % 2 == 0 &&
         max_pool <= 2 && g.channels >= 16 && out_ch >= 16;
}

/// Images per group for Winograd: enough tiles side by side to fill the GEMM's panels.
inline std::size_t winograd_images_per_group(const ConvGeometry& g) {
  const std::size_t tiles = g.positions() / 4;
  return std::min<std::size_t>(16, (128 + tiles - 1) / tiles);
}

/// forward_group by F(2×2, 3×3) (winograd.hpp): `planes` are the group's images split into
/// the stride-2 phases of their padding by 1 (`phases`), packed_u the transformed weights,
/// output_phases the stride-2 phases of one output plane (its four quarters, merged).
/// Each tile row's V goes straight into the packed B of its 16 products, and each output tile
/// is made from the 16 products' M with the bias and rectifier (and the 2×2 max-pool if
/// `pool`: a tile is a window) while the group is in cache.
template <class T>
void winograd_forward_group(const T* planes, std::size_t count, const ConvGeometry& g, const ConvGeometry& phases,
                            const PhaseRows<T>& output_phases, const Tensor<T>& packed_u, std::size_t out_ch,
                            const T* bias, Rectifier rectifier, bool pool, GroupScratch<T>& scratch, T* y) {
  using winograd::kPositions;
  const std::size_t in_ch = g.channels, th = g.out_height / 2, tw = g.out_width / 2, per_image = th * tw;
  // V_ξ and M_ξ are a cache line (64 bytes) more than their size apart: at a multiple of
  // 4 KB, the 16 streams of a transform would all fall into the same L1 set
  constexpr std::size_t line = 64 / sizeof(T);
  const std::size_t tiles = count * per_image, packed_v = gemm::packed_rhs_size<T>(in_ch, tiles) + line;
  const std::size_t m_stride = out_ch * tiles + line;
  const std::size_t plane = phases.plane_rows() * phases.plane_cols(), cols = phases.plane_cols();
  T* v = buffer(scratch.packed, kPositions * packed_v);
  constexpr std::size_t panel = gemm::Tile<T>::cols;
  for (std::size_t j = 0; j < count; ++j)
    for (std::size_t c = 0; c < in_ch; ++c) {
      const T* even_rows = planes + j * phases.planes_size() + 4 * c * plane;  // row phase 0; + 2·plane: phase 1
      for (std::size_t ty = 0; ty < th; ++ty)
        // straight into B's packed panels: row c, columns t .. t + n of each V_ξ
        for (std::size_t tx = 0, t = (j * th + ty) * tw; tx < tw;) {
          const std::size_t lane = t % panel, n = std::min(tw - tx, panel - lane);
          const T* rows[4] = {even_rows + ty * cols + tx, even_rows + 2 * plane + ty * cols + tx,
                              even_rows + (ty + 1) * cols + tx, even_rows + 2 * plane + (ty + 1) * cols + tx};
          winograd::transform_input_row(rows, plane, n, v + (t - lane) * in_ch + c * panel + lane, packed_v);
          tx += n, t += n;
        }
    }
  const std::size_t packed_a = gemm::packed_lhs_size<T>(out_ch, in_ch);
  T* m = buffer(scratch.product, kPositions * m_stride);
  for (std::size_t xi = 0; xi < kPositions; ++xi) {
    gemm::zero_rhs_tail(in_ch, tiles, v + xi * packed_v);
    gemm::multiply_packed(out_ch, tiles, in_ch, packed_u.data() + xi * packed_a, v + xi * packed_v,
                          m + xi * m_stride, tiles, false);
  }
  // each image's tiles at once; unpooled, Y_ab goes to a plane of its own and then into rows
  // 2·ty + a, columns 2·tx + b (the inverse of a stride-2 split)
  T* quarters = pool ? nullptr : buffer(scratch.gradient, 4 * per_image);
  const T slope = T(rectifier.slope);
  for (std::size_t j = 0; j < count; ++j)
    for (std::size_t o = 0; o < out_ch; ++o) {
      const T* m_image = m + o * tiles + j * per_image;
      const T shift = bias ? bias[o] : T(0);
      T* out = pool ? y + (j * out_ch + o) * per_image : quarters;
      const std::size_t size = pool ? per_image : 4 * per_image;
      if (pool)
        winograd::transform_output<true>(m_image, m_stride, per_image, shift, out);
      else
        winograd::transform_output<false>(m_image, m_stride, per_image, shift, out);
      if (rectifier.enabled) rectify_in_place(out, size, slope);
      if (!pool) output_phases.template move_image<false>(y + (j * out_ch + o) * g.positions(), quarters);
    }
}

/// Adds one group's weight gradient dY · im2col(X)ᵀ (O × C·k·k) to `partial`: dy_rows are the
/// group's output gradients (count images of O × L), `images` X and `planes` its phase planes
/// (null: im2col reads the image rows, planes_for_im2col).
template <class T>
void add_weight_gradient_group(const T* dy_rows, const T* images, const T* planes, std::size_t count, const ConvGeometry& g,
                               std::size_t out_ch, GroupScratch<T>& scratch, T* partial) {
  const std::size_t rows = g.col_rows(), L = g.positions(), width = count * L;
  constexpr std::size_t block = gemm::Tile<T>::lanes;  // columns of im2col(X)ᵀ packed per transpose
  // A = dY (O × width): its rows run along the positions, so packing transposes them
  if (count > 1) {  // the group's images side by side first
    T* gathered = buffer(scratch.staged, out_ch * width);
    images_to_matrix(dy_rows, count, out_ch, L, gathered);
    dy_rows = gathered;
  }
  T* dy = buffer(scratch.product, gemm::packed_lhs_size<T>(out_ch, width));
  gemm::pack_lhs(dy_rows, out_ch, width, width, 1, dy);
  // B = im2col(X)ᵀ (width × C·k·k): its columns are im2col's rows, made `block` at a time and
  // `chunk` columns of dW per product, so that B stays in L2 (each dW entry's sum is the same)
  const std::size_t chunk = std::max(gemm::Tile<T>::cols, (std::size_t(512) << 10) / (width * sizeof(T)) / gemm::Tile<T>::cols * gemm::Tile<T>::cols);
  T* cols_t = buffer(scratch.packed, gemm::packed_rhs_size<T>(width, std::min(rows, chunk)));
  T* staged = buffer(scratch.staged, block * width);
  const std::vector<ColumnRun> runs = column_runs(g, count);
  for (std::size_t first = 0; first < rows; first += chunk) {
    const std::size_t last = std::min(rows, first + chunk);
    if (planes) {
      for_each_tap(g, [&](std::size_t r, std::size_t offset) {  // im2col's rows, `block` at a time, then transposed
        if (r < first || r >= last) return;
        T* row = staged + (r % block) * width;
        for (const ColumnRun& run : runs) gemm::copy_run(planes + offset + run.from, run.length, row + run.to);
        if (r % block == block - 1 || r == last - 1) gemm::pack_rhs_columns(staged, width, r - r % block - first, r % block + 1, width, cols_t);
      });
    } else {
      for (std::size_t c = first / block; c < last / block; ++c) {  // a channel's 16 rows: one block
        stage_channel_direct(images, count, g, c, staged, width);
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

/// Σ of each of `count` rows of L values, into sums[0 .. count).
template <class T>
void row_sums(const T* rows, std::size_t count, std::size_t L, T* sums) {
  for (std::size_t i = 0; i < count; ++i) sums[i] = row_sum(rows + i * L, L);
}
}  // namespace detail

/// Convolution forward: y (N, O, Ho, Wo), Y_n = W[O × C·k·k] · im2col(X_n) (+ bias[o]), then
/// rectified if asked, image by image while each is in cache; with max_pool = k > 0 each
/// image's output is then max-pooled over k×k windows of stride k: y (N, O, Ho / k, Wo / k).
template <class T>
Tensor<T> conv2d_forward(const Tensor<T>& x, const Tensor<T>& weight, const ConvGeometry& g, const T* bias = nullptr,
                         Rectifier rectifier = {}, std::size_t max_pool = 0) {
  TESSERA_CHECK(max_pool <= std::min(g.out_height, g.out_width),
                "conv2d: max-pool window " << max_pool << " larger than the output " << g.out_height << "x" << g.out_width);
  const std::size_t batch = x.shape()[0], out_ch = weight.shape()[0], rows = g.col_rows(), L = g.positions();
  const std::size_t k = max_pool ? max_pool : 1, out_h = g.out_height / k, out_w = g.out_width / k;
  Tensor<T> y = Tensor<T>::empty({batch, out_ch, out_h, out_w});
  if (detail::winograd_applies(g, out_ch, max_pool)) {
    const ConvGeometry phases = conv_geometry("conv2d", g.channels, g.height, g.width, 2, 2, 1);  // stride-2 phases, padding 1
    detail::count_matmul_flops(out_ch, batch * L / 4 * winograd::kPositions, g.channels);
    const detail::PhaseRows<T> output_phases(conv_geometry("conv2d", 1, g.out_height, g.out_width, 2, 2, 0));
    const Tensor<T> packed_u = winograd::packed_transformed_weights(weight);
    detail::for_each_image_group<T>(batch, detail::winograd_images_per_group(g), [&](auto& scratch, std::size_t, std::size_t n, std::size_t count) {
      const T* planes = detail::split_group(x.data() + n * g.image_size(), count, phases, scratch);
      detail::winograd_forward_group(planes, count, g, phases, output_phases, packed_u, out_ch, bias, rectifier,
                                     max_pool == 2, scratch, y.data() + n * out_ch * out_h * out_w);
    });
    return y;
  }
  detail::count_matmul_flops(out_ch, batch * L, rows);
  const Tensor<T> packed_w = detail::packed_lhs(weight.data(), out_ch, rows, rows, 1);
  detail::for_each_image_group<T>(batch, detail::images_per_product<T>(L), [&](auto& scratch, std::size_t, std::size_t n, std::size_t count) {
    const T* images = x.data() + n * g.image_size();
    detail::forward_group(images, detail::planes_for_im2col(images, count, g, scratch), count, g, packed_w, out_ch, bias, rectifier,
                          scratch, y.data() + n * out_ch * out_h * out_w,
                          max_pool);
  });
  return y;
}

/// Convolution input gradient: dX (N, C, H, W), dX_n = col2im(Wᵀ · dY_n) (+ bias[c]: the
/// transposed convolution's forward); dY taken back through a rectifier first if `through`.
/// (3×3, stride 1, padding 1: the convolution of dY with the flipped, transposed weights.)
template <class T>
Tensor<T> conv2d_backward_input(const Tensor<T>& grad_out, const Tensor<T>& weight, const ConvGeometry& g,
                                const T* bias = nullptr, const RectifiedOutput<T>& through = {}) {
  const std::size_t batch = grad_out.shape()[0], out_ch = grad_out.shape()[1], rows = g.col_rows(), L = g.positions();
  if (g.kernel == 3 && g.stride == 1 && g.padding == 1) {
    // a 3×3 convolution of stride 1 and padding 1 has as input gradient the same convolution
    // of dY with the flipped, transposed weights, W'[c, o, a, b] = W[o, c, 2 − a, 2 − b]
    const ConvGeometry back = conv_geometry("conv2d", out_ch, g.out_height, g.out_width, 3, 1, 1);
    if (detail::winograd_applies(back, g.channels, 0)) {  // so by Winograd where it pays
      const Tensor<T> flipped = detail::flipped_transposed(weight);
      if (!through.y) return conv2d_forward(grad_out, flipped, back, bias);
      return conv2d_forward(detail::gradient_through_rectifier(grad_out, through), flipped, back, bias);
    }
  }
  Tensor<T> dx = Tensor<T>::empty({batch, g.channels, g.height, g.width});
  detail::count_matmul_flops(rows, batch * L, out_ch);
  const Tensor<T> packed_wt = detail::packed_lhs(weight.data(), rows, out_ch, 1, rows);  // Wᵀ
  detail::for_each_image_group<T>(batch, detail::images_per_product<T>(L), [&](auto& scratch, std::size_t, std::size_t n, std::size_t count) {
    const std::size_t width = count * L;
    const T* gradient = detail::group_gradient(grad_out, through, n, count, scratch.gradient);
    T* dy = detail::buffer(scratch.packed, gemm::packed_rhs_size<T>(out_ch, width));
    for (std::size_t o = 0; o < out_ch; ++o)
      for (std::size_t j = 0; j < count; ++j) gemm::pack_rhs_run(gradient + (j * out_ch + o) * L, L, o, j * L, out_ch, dy);
    gemm::zero_rhs_tail(out_ch, width, dy);
    T* dcols = detail::buffer(scratch.product, rows * width);
    gemm::multiply_packed(rows, width, out_ch, packed_wt.data(), dy, dcols, width, false);
    T* planes = detail::buffer(scratch.planes, g.planes_size());
    for (std::size_t j = 0; j < count; ++j) {
      T* image = dx.data() + (n + j) * g.image_size();
      col2im(dcols + j * L, g, image, width, planes);
      if (bias) detail::add_bias(image, bias, g.channels, g.height * g.width);
    }
  });
  return dx;
}

/// The gradients a convolution's backward makes, each only if asked (else undefined).
template <class T>
struct ConvGrads {
  Tensor<T> dx, dw, db;
};

/// Convolution parameter gradients: dW (O, C, k, k) = Σ_n dY_n · im2col(X_n)ᵀ, the same at any
/// thread count (WeightGradientSums), and the bias's Σ_n,l dY[n, o, l] from the same rows while
/// they are in cache; each only if asked (dw, db). dY is taken back through a rectifier first
/// if `through`.
template <class T>
ConvGrads<T> conv2d_backward_params(const Tensor<T>& grad_out, const Tensor<T>& x, const ConvGeometry& g,
                                    const RectifiedOutput<T>& through, bool dw, bool db) {
  const std::size_t batch = grad_out.shape()[0], out_ch = grad_out.shape()[1], rows = g.col_rows(), L = g.positions();
  if (dw) detail::count_matmul_flops(out_ch, rows, batch * L);
  detail::WeightGradientSums<T> sums(batch, {out_ch, g.channels, g.kernel, g.kernel});
  Tensor<T> image_sums = db ? Tensor<T>::empty({batch, out_ch}) : Tensor<T>();
  detail::for_each_image_group<T>(batch, detail::images_per_product<T>(L), [&](auto& scratch, std::size_t part, std::size_t n, std::size_t count) {
    const T* dy_rows = detail::group_gradient(grad_out, through, n, count, scratch.gradient);
    if (db) detail::row_sums(dy_rows, count * out_ch, L, image_sums.data() + n * out_ch);
    if (!dw) return;  // (a frozen weight with a trainable bias: no product)
    const T* images = x.data() + n * g.image_size();
    detail::add_weight_gradient_group(dy_rows, images, detail::planes_for_im2col(images, count, g, scratch), count, g, out_ch,
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
  ConvGrads<T> out;
  Tensor<T> packed_w, image_sums;
  if (dx) {
    out.dx = Tensor<T>::empty(x.shape());
    detail::count_matmul_flops(in_ch, batch * L, rows);
    packed_w = detail::packed_lhs(weight.data(), in_ch, rows, rows, 1);
  }
  if (dw) detail::count_matmul_flops(in_ch, rows, batch * L);
  if (db) image_sums = Tensor<T>::empty({batch, g.channels});
  detail::WeightGradientSums<T> sums(batch, weight.shape());
  detail::for_each_image_group<T>(batch, detail::images_per_product<T>(L), [&](auto& scratch, std::size_t part, std::size_t n, std::size_t count) {
    const T* dy = gy.data() + n * g.image_size();
    if (db) detail::row_sums(dy, count * g.channels, g.height * g.width, image_sums.data() + n * g.channels);
    if (!dx && !dw) return;
    const T* planes = detail::planes_for_im2col(dy, count, g, scratch);
    if (dx) detail::forward_group(dy, planes, count, g, packed_w, in_ch, static_cast<const T*>(nullptr), Rectifier{}, scratch, out.dx.data() + n * in_ch * L);
    if (dw) detail::add_weight_gradient_group(x.data() + n * in_ch * L, dy, planes, count, g, in_ch, scratch, sums.of(part));
  });
  if (dw) out.dw = sums.total();
  if (db) out.db = detail::total_over_batch(image_sums);
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

/// conv2d's arguments checked, and its geometry (conv2d and Conv2D's folded inference).
template <class T>
ConvGeometry conv2d_geometry(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, std::size_t stride,
                             std::size_t padding, Rectifier rectifier) {
  check_conv_args("conv2d", x, weight, bias, 1, 0);
  check_rectifier("conv2d", rectifier);
  const Shape& sx = x.shape();
  return conv_geometry("conv2d", sx[1], sx[2], sx[3], weight.shape()[2], stride, padding);
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
  Tensor<T> y = conv2d_forward(x.value(), weight.value(), g, bias.defined() ? bias.value().data() : nullptr, rectifier);
  return make_op_result("conv2d", std::move(y), {&x, &weight, &bias},
                        [x, weight, bias, g, rectifier](const Tensor<T>& gy, const Tensor<T>& y) {
                          // the kernels take gy back through the rectifier themselves, image by image
                          const RectifiedOutput<T> through{rectifier.enabled ? y.data() : nullptr, rectifier};
                          if (needs_grad(x)) accumulate_grad(x, conv2d_backward_input(gy, weight.value(), g, static_cast<const T*>(nullptr), through));
                          if (needs_grad(weight) || needs_grad(bias)) {
                            ConvGrads<T> grads = conv2d_backward_params(gy, x.value(), g, through, needs_grad(weight), needs_grad(bias));
                            accumulate_grad(weight, std::move(grads.dw));
                            accumulate_grad(bias, std::move(grads.db));
                          }
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
                          ConvGrads<T> grads =
                              conv2d_transpose_backward(gy, x.value(), weight.value(), g, needs_grad(x), needs_grad(weight), needs_grad(bias));
                          accumulate_grad(x, std::move(grads.dx));
                          accumulate_grad(weight, std::move(grads.dw));
                          accumulate_grad(bias, std::move(grads.db));
                        });
}

}  // namespace tessera
