// tessera/kernels/gemm.hpp — the packed matrix product the convolutions run on.
//
//   C (m × n, row-major, rows ldc apart) = A (m × k) · B (k × n)   [+ C when accumulating]
//
// after A and B have been copied ("packed") into the order one register tile reads them
// (Goto & van de Geijn, "Anatomy of high-performance matrix multiplication", 2008; the BLIS
// micro-kernel). A tile of C is `rows` × `cols` (12 × 32 floats with AVX-512): 2·rows
// vector accumulators that stay in registers while the product runs down k, each step one
// load of B's `cols` values (two vectors) and `rows` broadcasts of A's values.
//
//   packed A: panels of `rows` rows (the last one `row_step`-rounded, zero-padded), each
//             k-major: A(i0 + i, kk) at packed_a[i0·k + kk·h + i], h the panel's height
//   packed B: panels of `cols` columns (the last one zero-padded), each k-major:
//             B(kk, j0 + j) at packed_b[j0·k + kk·cols + j]
//
// Why tessera packs for itself rather than calling Eigen's product: a convolution multiplies
// the same weights by every image of the batch, so its packed weights serve them all, and
// im2col can write its columns straight in packed order; Eigen repacks both operands on
// every call. Measured on the convolutions' shapes (one AVX-512 core): 185-205 GFLOP/s here
// against Eigen's 110-165.
//
// The kernel is plain C++ on GCC/Clang vector extensions (arch/vector.hpp: one vector = the
// widest the compiler targets), so the same code serves float and double on any x86-64 or ARM
// build; only the packing's transposes and copies have versions with intrinsics (arch/).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "../core/parallel.hpp"
#include "arch/arch.hpp"

namespace tessera::kernels::gemm {

using arch::copy_run;
using arch::kVectorBytes;
using arch::kVectorRegisters;

/// The register tile of C for scalar type T, and the depth of one pass over it.
template <class T>
struct Tile {
  static constexpr std::size_t lanes = kVectorBytes / sizeof(T);
  static constexpr std::size_t cols = 2 * lanes;                          // two vectors per row of C
  static constexpr std::size_t rows = kVectorRegisters == 32 ? 12 : 6;    // 2·rows accumulators, 3+ registers spare
  static constexpr std::size_t row_step = rows / 3;                       // kernels exist for rows, 2/3 and 1/3 of it
  static constexpr std::size_t depth_block = 256;  // k per pass: B's panel (256 × 32 floats, 32 KB) stays in L1
};

inline constexpr std::size_t round_up(std::size_t n, std::size_t step) { return (n + step - 1) / step * step; }

/// Height of the A panel starting at row i0 of m: `rows`, or the rest rounded up to row_step.
template <class T>
std::size_t panel_height(std::size_t m, std::size_t i0) {
  return std::min(Tile<T>::rows, round_up(m - i0, Tile<T>::row_step));
}

/// Elements of packed A (m × k) and packed B (k × n).
template <class T>
std::size_t packed_lhs_size(std::size_t m, std::size_t k) {
  return round_up(m, Tile<T>::row_step) * k;
}
template <class T>
std::size_t packed_rhs_size(std::size_t k, std::size_t n) {
  return k * round_up(n, Tile<T>::cols);
}

/// Packs A (m × k) with A(i, kk) = a[i·row_stride + kk·col_stride]: a row-major matrix has
/// (ld, 1), its transpose (1, ld).
template <class T>
void pack_lhs(const T* a, std::size_t m, std::size_t k, std::size_t row_stride, std::size_t col_stride, T* packed) {
  for (std::size_t i0 = 0; i0 < m; i0 += Tile<T>::rows) {
    const std::size_t h = panel_height<T>(m, i0), valid = std::min(h, m - i0);
    T* out = packed + i0 * k;
    if (col_stride == 1) {  // rows run along k: the panel is their transpose
      const T* rows[Tile<T>::rows];
      for (std::size_t i = 0; i < valid; ++i) rows[i] = a + (i0 + i) * row_stride;
      arch::transpose_rows(rows, valid, k, out, h);
      for (std::size_t kk = 0; kk < k; ++kk) std::fill(out + kk * h + valid, out + (kk + 1) * h, T(0));
      continue;
    }
    for (std::size_t kk = 0; kk < k; ++kk, out += h) {
      for (std::size_t i = 0; i < valid; ++i) out[i] = a[(i0 + i) * row_stride + kk * col_stride];
      for (std::size_t i = valid; i < h; ++i) out[i] = T(0);
    }
  }
}

/// B(kk, j .. j + n) = values[0, n): a run of B's row kk, split where it crosses panels.
template <class T>
inline __attribute__((always_inline)) void pack_rhs_run(const T* values, std::size_t n, std::size_t kk, std::size_t j, std::size_t k, T* packed) {
  constexpr std::size_t cols = Tile<T>::cols;
  while (n > 0) {
    const std::size_t lane = j % cols, run = std::min(n, cols - lane);
    copy_run(values, run, packed + (j - lane) * k + kk * cols + lane);
    values += run, j += run, n -= run;
  }
}

/// Zeroes the lanes of B's last panel past its n columns, which the kernel multiplies but
/// never stores: then they cannot hold a NaN or a slow denormal.
template <class T>
void zero_rhs_tail(std::size_t k, std::size_t n, T* packed) {
  constexpr std::size_t cols = Tile<T>::cols;
  const std::size_t used = n % cols;
  if (used == 0) return;
  T* panel = packed + (n - used) * k;
  for (std::size_t kk = 0; kk < k; ++kk) std::fill(panel + kk * cols + used, panel + (kk + 1) * cols, T(0));
}

/// Packs columns j0 .. j0 + count − 1 of B (k × n), given as rows of Bᵀ: column j0 + i is
/// columns[i·ld .. i·ld + k). j0 is a multiple of lanes and count ≤ lanes.
template <class T>
void pack_rhs_columns(const T* columns, std::size_t ld, std::size_t j0, std::size_t count, std::size_t k, T* packed) {
  constexpr std::size_t cols = Tile<T>::cols, lanes = Tile<T>::lanes;
  const T* rows[lanes];
  for (std::size_t i = 0; i < count; ++i) rows[i] = columns + i * ld;
  arch::transpose_rows(rows, count, k, packed + (j0 - j0 % cols) * k + j0 % cols, cols);
}

namespace detail {
/// One register tile: C[0, rows_valid) × [0, cols_valid) (+)= Σ_kk a[kk·Rows + i] · b[kk·cols + j]
/// (the outer product of A's column and B's row, k times).
template <class T, std::size_t Rows>
void multiply_tile(std::size_t depth, const T* a, const T* b, T* c, std::size_t ldc, std::size_t rows_valid,
                   std::size_t cols_valid, bool accumulate) {
  constexpr std::size_t lanes = Tile<T>::lanes;
  using V = arch::Vector<T>;
  V left[Rows] = {}, right[Rows] = {};  // the two vectors of each row of the tile
  for (std::size_t kk = 0; kk < depth; ++kk, a += Rows, b += 2 * lanes) {
    const V b0 = arch::load<V>(b), b1 = arch::load<V>(b + lanes);
#pragma GCC unroll 12
    for (std::size_t i = 0; i < Rows; ++i) {
      left[i] += a[i] * b0;  // contracted to fused multiply-adds
      right[i] += a[i] * b1;
    }
  }
  if (rows_valid == Rows && cols_valid == 2 * lanes) {  // a whole tile: straight from the registers
#pragma GCC unroll 12
    for (std::size_t i = 0; i < Rows; ++i) {
      T* row = c + i * ldc;
      if (accumulate) {
        left[i] += arch::load<V>(row);
        right[i] += arch::load<V>(row + lanes);
      }
      arch::store(row, left[i]);
      arch::store(row + lanes, right[i]);
    }
    return;
  }
  // An edge tile, through memory. (Indexing the accumulators only by unrolled constants keeps
  // them in registers: indexed by a variable, they would live on the stack, zeroed each tile.)
  T sums[Rows][2 * lanes];
#pragma GCC unroll 12
  for (std::size_t i = 0; i < Rows; ++i) {
    arch::store(sums[i], left[i]);
    arch::store(sums[i] + lanes, right[i]);
  }
  for (std::size_t i = 0; i < rows_valid; ++i) {
    T* row = c + i * ldc;
    for (std::size_t j = 0; j < cols_valid; ++j) row[j] = accumulate ? row[j] + sums[i][j] : sums[i][j];
  }
}
}  // namespace detail

/// C (m × n, rows ldc apart) = packed A · packed B, or += when `accumulate`. Threaded over B's
/// panels when called outside a parallel region (each element of C is summed by one thread
/// in a fixed order, so the result does not depend on the thread count).
template <class T>
void multiply_packed(std::size_t m, std::size_t n, std::size_t k, const T* packed_a, const T* packed_b, T* c,
                     std::size_t ldc, bool accumulate) {
  using Tl = Tile<T>;
  if (k == 0) {
    if (!accumulate)
      for (std::size_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return;
  }
  const std::size_t panels = (n + Tl::cols - 1) / Tl::cols;
  parallel_for_ranges(0, panels, 1, [&](std::size_t first, std::size_t last) {
    for (std::size_t k0 = 0; k0 < k; k0 += Tl::depth_block) {
      const std::size_t depth = std::min(Tl::depth_block, k - k0);
      const bool add = accumulate || k0 > 0;
      for (std::size_t panel = first; panel < last; ++panel) {
        const std::size_t j0 = panel * Tl::cols, cols_valid = std::min(Tl::cols, n - j0);
        const T* b = packed_b + j0 * k + k0 * Tl::cols;
        for (std::size_t i0 = 0; i0 < m; i0 += Tl::rows) {
          const std::size_t h = panel_height<T>(m, i0), rows_valid = std::min(h, m - i0);
          const T* a = packed_a + i0 * k + k0 * h;
          T* out = c + i0 * ldc + j0;
          if (h == Tl::rows)
            detail::multiply_tile<T, Tl::rows>(depth, a, b, out, ldc, rows_valid, cols_valid, add);
          else if (h == 2 * Tl::row_step)
            detail::multiply_tile<T, 2 * Tl::row_step>(depth, a, b, out, ldc, rows_valid, cols_valid, add);
          else
            detail::multiply_tile<T, Tl::row_step>(depth, a, b, out, ldc, rows_valid, cols_valid, add);
        }
      }
    }
  });
}

}  // namespace tessera::kernels::gemm
