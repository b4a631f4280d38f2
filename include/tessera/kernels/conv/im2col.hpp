// tessera/kernels/conv/im2col.hpp — im2col and col2im through the stride phases (phases.hpp):
// with L = Ho·Wo output positions, image n becomes a matrix of (C·k·k) rows × L columns, row
// r = (c, ki, kj) holding x[c, oh·s − p + ki, ow·s − p + kj] at oh·Wo + ow (zero in the padding);
// col2im is its adjoint, each column entry added back into the pixel it was read from.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "../arch/arch.hpp"
#include "geometry.hpp"
#include "phases.hpp"

namespace tessera::kernels {

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

/// One image (C, H, W) → its columns, (C·k·k) rows of L, from cols + r·ld (ld = L by default).
template <class T>
void im2col(const T* image, const ConvGeometry& g, T* cols, std::size_t ld = 0) {
  std::vector<T> planes(g.planes_size());
  split_phases(image, g, planes.data());
  const std::vector<ColumnRun> runs = column_runs(g, 1);
  for_each_tap(g, [&](std::size_t r, std::size_t offset) {
    for (const ColumnRun& run : runs)
      arch::copy_run(planes.data() + offset + run.from, run.length, cols + r * (ld ? ld : g.positions()) + run.to);
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
/// it was read from, in a fixed order (the taps r ascending, from zero). Rows ld apart, as
/// im2col. The sums are made in phase planes: `planes` (planes_size() values, overwritten), or a
/// buffer of its own if null.
template <class T>
void col2im(const T* cols, const ConvGeometry& g, T* image, std::size_t ld = 0, T* planes = nullptr) {
  std::vector<T> own(planes ? 0 : g.planes_size());
  if (!planes) planes = own.data();
  std::fill(planes, planes + g.planes_size(), T(0));
  for_each_tap(g, [&](std::size_t r, std::size_t offset) {
    detail::add_columns_row(cols + r * (ld ? ld : g.positions()), g, offset, planes);
  });
  merge_phases(planes, g, image);
}

}  // namespace tessera::kernels
