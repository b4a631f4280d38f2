// tessera/kernels/conv/phases.hpp — an image split into its stride phases, and back.
//
// im2col reads each padded pixel (i, j) = (oh·s + ki, ow·s + kj) of the image. Split first into
// its stride phases, the image makes every row of the columns a run of contiguous copies:
// padded pixel (i, j) of channel c lives in plane (c, i mod s, j mod s) at (i / s, j / s), so
// tap (ki, kj) of output row oh is plane (c, ki mod s, kj mod s), row oh + ki / s, columns
// kj / s .. kj / s + Wo − 1. The padding is the planes' zero border: no bounds in the loops.
// (For stride 1 the one plane per channel is the zero-padded image.)
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "../arch/arch.hpp"
#include "geometry.hpp"

namespace tessera::kernels {

using arch::generic::ImageRow;  // the image side of a move: read when splitting, written when merging
using arch::generic::PlaneRow;  // the planes' side

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
}  // namespace detail

/// Moves an image's rows to their places in the planes, or back: for stride 1 a shifted copy,
/// for stride 2 a split of each row into its even and odd columns (arch::Stride2Rows), else a
/// strided copy per column phase. What depends on the geometry alone is worked out once.
template <class T>
class PhaseRows {
 public:
  explicit PhaseRows(const ConvGeometry& g) : g_(g), phases_(detail::column_phases(g)), stride2_(g.width) {}

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
      detail::for_each_phase_row(g_, c, planes, [&](std::size_t row, PlaneRow<Split, T> plane_row) {
        if constexpr (Split)
          arch::copy_run(image + row * width, width, plane_row + p);
        else
          arch::copy_run(plane_row + p, width, image + row * width);
      });
      return;
    }
    if (s == 2) {  // even columns to one phase, odd to the other
      const std::size_t cols = g_.plane_cols(), plane = g_.plane_rows() * cols;
      const std::size_t even = (p % 2) * plane + p / 2, odd = ((p + 1) % 2) * plane + (p + 1) / 2;
      const arch::Stride2Rows<T> rows = stride2_;  // a local: what it holds stays in registers
      image += c * g_.height * width;
      for (std::size_t ih = 0; ih < g_.height; ++ih, image += width) {
        const std::size_t i = ih + p;  // padded row i is row i / 2 of the planes (c, i mod 2, ·)
        const auto plane_row = planes + (4 * c + 2 * (i % 2)) * plane + (i / 2) * cols;
        rows.template move<Split>(image, plane_row + even, plane_row + odd);
      }
      return;
    }
    detail::for_each_phase_row(g_, c, planes, [&](std::size_t row, PlaneRow<Split, T> plane_row) {
      for (const detail::ColumnPhase& phase : phases_) {
        if constexpr (Split)
          detail::copy_strided<true>(image + row * width + phase.first, plane_row + phase.offset, phase.count, s);
        else
          detail::copy_strided<false>(plane_row + phase.offset, image + row * width + phase.first, phase.count, s);
      }
    });
  }

  ConvGeometry g_;
  std::vector<detail::ColumnPhase> phases_;
  arch::Stride2Rows<T> stride2_;
};

/// Image (C, H, W) → its zero-padded stride phases (planes_size() values). With
/// `padding_zeroed` (planes that held a split of the same geometry, or zeros) only the pixels
/// are written.
template <class T>
void split_phases(const T* image, const ConvGeometry& g, T* planes, bool padding_zeroed = false) {
  PhaseRows<T>(g).template move_image<true>(image, planes, padding_zeroed);
}

/// The adjoint of split_phases: each image pixel from its place in the planes (the padding,
/// which no pixel reads, is dropped).
template <class T>
void merge_phases(const T* planes, const ConvGeometry& g, T* image) {
  PhaseRows<T>(g).template move_image<false>(image, planes);
}

}  // namespace tessera::kernels
