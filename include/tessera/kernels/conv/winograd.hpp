// tessera/kernels/conv/winograd.hpp — the 3×3, stride-1 convolution by Winograd's minimal filtering
// F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
//
// Each 2×2 output tile comes from the 4×4 input tile d around it as
//     Y = Aᵀ [ Σ_c (G g_oc Gᵀ) ⊙ (Bᵀ d_c B) ] A
// with
//     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],   G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//     Aᵀ = [1 1 1 0; 0 1 −1 −1]
// so a tile costs 16 multiply-adds per channel pair where im2col's product spends 36. The sum
// over channels at each of the 16 positions ξ of the transformed tile is a matrix product:
//     M_ξ (O × tiles) = U_ξ (O × C) · V_ξ (C × tiles),   U = G g Gᵀ,   V = Bᵀ d B
// run on the packed GEMM (gemm.hpp). The transforms are exact in real arithmetic; in floats
// they only change the rounding (their coefficients are ±1 and ½).
//
// The input tiles of a tile row are read from the zero-padded image split into its stride-2
// phases (phases.hpp's split_phases): padded row 2·ty + ρ is row ty + ρ/2 of the planes of row
// phase ρ mod 2, and a tile's four columns 2·tx .. 2·tx + 3 are even[tx], odd[tx],
// even[tx + 1], odd[tx + 1] — contiguous in tx, so every transform below is a loop over the
// tiles of a row that vectorises.
#pragma once

#include <algorithm>
#include <cstddef>

#include "../../core/tensor.hpp"
#include "../arch/vector.hpp"
#include "../epilogue.hpp"
#include "../gemm.hpp"
#include "geometry.hpp"
#include "phases.hpp"
#include "scratch.hpp"

namespace tessera::kernels::winograd {

inline constexpr std::size_t kTile = 4, kPositions = 16;  // input tile 4×4: 16 products

/// U_ξ = (G g Gᵀ)_ξ for every weight g (O, C, 3, 3), each U_ξ (O × C) packed as the GEMM's A:
/// 16 packed matrices of gemm::packed_lhs_size(O, C) values, one after another.
template <class T>
Tensor<T> packed_transformed_weights(const Tensor<T>& weight) {
  const std::size_t out_ch = weight.shape()[0], in_ch = weight.shape()[1], count = out_ch * in_ch;
  Tensor<T> u = Tensor<T>::empty({kPositions, count});  // u[ξ][o·C + c]
  for (std::size_t oc = 0; oc < count; ++oc) {
    const T* g = weight.data() + oc * 9;
    double gg[4][3];  // G·g, row by row
    for (std::size_t j = 0; j < 3; ++j) {
      const double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
      gg[0][j] = g0, gg[1][j] = 0.5 * (g0 + g1 + g2), gg[2][j] = 0.5 * (g0 - g1 + g2), gg[3][j] = g2;
    }
    for (std::size_t i = 0; i < 4; ++i) {  // (G·g)·Gᵀ
      const double r0 = gg[i][0], r1 = gg[i][1], r2 = gg[i][2];
      const double row[4] = {r0, 0.5 * (r0 + r1 + r2), 0.5 * (r0 - r1 + r2), r2};
      for (std::size_t j = 0; j < 4; ++j) u.data()[(i * 4 + j) * count + oc] = T(row[j]);
    }
  }
  const std::size_t packed = gemm::packed_lhs_size<T>(out_ch, in_ch);
  Tensor<T> out = Tensor<T>::empty({kPositions * packed});
  for (std::size_t xi = 0; xi < kPositions; ++xi)
    gemm::pack_lhs(u.data() + xi * count, out_ch, in_ch, in_ch, 1, out.data() + xi * packed);
  return out;
}

/// body(t, V{}) for t over [0, n): whole vectors of tiles at a time (V = arch::Vector<T>),
/// then a half vector, then the rest one at a time (V = T). The transforms below are written
/// once for all three.
template <class T, class Body>
void for_each_lane_block(std::size_t n, Body&& body) {
  using Full = arch::Vector<T>;
  using Half = arch::HalfVector<T>;
  constexpr std::size_t lanes = sizeof(Full) / sizeof(T), half = lanes / 2;
  std::size_t t = 0;
  for (; t + lanes <= n; t += lanes) body(t, Full{});
  if constexpr (half > 1)
    if (t + half <= n) body(t, Half{}), t += half;
  for (; t < n; ++t) body(t, T{});
}
/// V = Bᵀ d B of `tiles` neighbouring tiles of one tile row of one channel: V_ξ(tx) goes to
/// v[ξ·stride + tx] for ξ = 4·i + j. even[ρ] points at padded row 2·ty + ρ's even columns
/// (from the first tile's), even[ρ] + odd at its odd ones. Every value is a sum of up to four
/// pixels (the two transforms' ±1 coefficients multiplied out).
template <class T>
void transform_input_row(const T* const even[kTile], std::size_t odd, std::size_t tiles, T* v, std::size_t stride) {
  for_each_lane_block<T>(tiles, [&](std::size_t tx, auto width) {
    using V = decltype(width);
    V w[kTile][kTile];  // d·B of row ρ, d = (even[tx], odd[tx], even[tx + 1], odd[tx + 1])
    for (std::size_t r = 0; r < kTile; ++r) {
      const T* row = even[r] + tx;
      const V d0 = arch::load<V>(row), d1 = arch::load<V>(row + odd), d2 = arch::load<V>(row + 1), d3 = arch::load<V>(row + odd + 1);
      w[r][0] = d0 - d2, w[r][1] = d1 + d2, w[r][2] = d2 - d1, w[r][3] = d1 - d3;
    }
    for (std::size_t j = 0; j < kTile; ++j) {  // Bᵀ·(d·B)
      arch::store(v + j * stride + tx, w[0][j] - w[2][j]);
      arch::store(v + (4 + j) * stride + tx, w[1][j] + w[2][j]);
      arch::store(v + (8 + j) * stride + tx, w[2][j] - w[1][j]);
      arch::store(v + (12 + j) * stride + tx, w[1][j] - w[3][j]);
    }
  });
}

/// Y = Aᵀ M A + shift of `tiles` tiles of one output channel, M_ξ(t) at m[ξ·stride + t]:
/// each tile's Y_ab to y_ab[t] (y00, y01, y10, y11 `tiles` apart from y), or with Pool each
/// tile's maximum to y[t] instead, the 2×2 max-pool (the taps in row-major order, ">" as
/// max_pool2d): taken before the shift, so the same numbers as after it.
template <bool Pool, class T>
void transform_output(const T* m, std::size_t stride, std::size_t tiles, T shift, T* y) {
  for_each_lane_block<T>(tiles, [&](std::size_t t, auto width) {
    using V = decltype(width);
    V s0[kTile], s1[kTile];  // M·A, row by row
    for (std::size_t i = 0; i < kTile; ++i) {
      const T* row = m + 4 * i * stride + t;
      const V m0 = arch::load<V>(row), m1 = arch::load<V>(row + stride), m2 = arch::load<V>(row + 2 * stride),
              m3 = arch::load<V>(row + 3 * stride);
      s0[i] = m0 + m1 + m2, s1[i] = m1 - m2 - m3;
    }
    const V y00 = s0[0] + s0[1] + s0[2], y01 = s1[0] + s1[1] + s1[2];  // Aᵀ·(M·A)
    const V y10 = s0[1] - s0[2] - s0[3], y11 = s1[1] - s1[2] - s1[3];
    if constexpr (Pool) {
      V best = y00;
      best = y01 > best ? y01 : best;
      best = y10 > best ? y10 : best;
      best = y11 > best ? y11 : best;
      arch::store(y + t, best + shift);
    } else {
      arch::store(y + t, y00 + shift), arch::store(y + tiles + t, y01 + shift);
      arch::store(y + 2 * tiles + t, y10 + shift), arch::store(y + 3 * tiles + t, y11 + shift);
    }
  });
}

/// conv2d's forward by F(2×2, 3×3), one call: the weights transformed and packed once, then
/// group by group of images, each split into the stride-2 phases of its padding by 1
/// (input_phases()). Each tile row's V goes straight into the packed B of its 16 products, and
/// each output tile is made from the 16 products' M with the epilogue (its 2×2 max-pool: a tile
/// is a window) while the group is in cache.
template <class T>
class Forward {
 public:
  Forward(const ConvGeometry& g, const Tensor<T>& weight, const Epilogue<T>& epilogue)
      : g_(g),
        phases_(conv_geometry("conv2d", g.channels, g.height, g.width, 2, 2, 1)),
        output_phases_(conv_geometry("conv2d", 1, g.out_height, g.out_width, 2, 2, 0)),
        packed_u_(packed_transformed_weights(weight)),
        out_ch_(weight.shape()[0]),
        epilogue_(epilogue) {}

  /// The geometry an input image is split by before group() reads it.
  const ConvGeometry& input_phases() const { return phases_; }

  /// The outputs y of `count` images (O planes each, pooled if the epilogue pools) from their
  /// split planes.
  void group(const T* planes, std::size_t count, ConvScratch<T>& scratch, T* y) const {
    const std::size_t in_ch = g_.channels, th = g_.out_height / 2, tw = g_.out_width / 2, per_image = th * tw;
    // V_ξ and M_ξ are a cache line (64 bytes) more than their size apart: at a multiple of
    // 4 KB, the 16 streams of a transform would all fall into the same L1 set
    constexpr std::size_t line = 64 / sizeof(T);
    const std::size_t tiles = count * per_image, packed_v = gemm::packed_rhs_size<T>(in_ch, tiles) + line;
    const std::size_t m_stride = out_ch_ * tiles + line;
    const std::size_t plane = phases_.plane_rows() * phases_.plane_cols(), cols = phases_.plane_cols();
    T* v = buffer(scratch.packed_rhs, kPositions * packed_v);
    constexpr std::size_t panel = gemm::Tile<T>::cols;
    for (std::size_t j = 0; j < count; ++j)
      for (std::size_t c = 0; c < in_ch; ++c) {
        const T* even_rows = planes + j * phases_.planes_size() + 4 * c * plane;  // row phase 0; + 2·plane: phase 1
        for (std::size_t ty = 0; ty < th; ++ty)
          // straight into B's packed panels: row c, columns t .. t + n of each V_ξ
          for (std::size_t tx = 0, t = (j * th + ty) * tw; tx < tw;) {
            const std::size_t lane = t % panel, n = std::min(tw - tx, panel - lane);
            const T* rows[4] = {even_rows + ty * cols + tx, even_rows + 2 * plane + ty * cols + tx,
                                even_rows + (ty + 1) * cols + tx, even_rows + 2 * plane + (ty + 1) * cols + tx};
            transform_input_row(rows, plane, n, v + (t - lane) * in_ch + c * panel + lane, packed_v);
            tx += n, t += n;
          }
      }
    const std::size_t packed_a = gemm::packed_lhs_size<T>(out_ch_, in_ch);
    T* m = buffer(scratch.product, kPositions * m_stride);
    for (std::size_t xi = 0; xi < kPositions; ++xi) {
      gemm::zero_rhs_tail(in_ch, tiles, v + xi * packed_v);
      gemm::multiply_packed(out_ch_, tiles, in_ch, packed_u_.data() + xi * packed_a, v + xi * packed_v,
                            m + xi * m_stride, tiles, false);
    }
    // each image's tiles at once; unpooled, Y_ab goes to a plane of its own and then into rows
    // 2·ty + a, columns 2·tx + b (the inverse of a stride-2 split)
    const bool pool = epilogue_.pool == 2;
    T* quarters = pool ? nullptr : buffer(scratch.winograd_quarters, 4 * per_image);
    for (std::size_t j = 0; j < count; ++j)
      for (std::size_t o = 0; o < out_ch_; ++o) {
        const T* m_image = m + o * tiles + j * per_image;
        T* out = pool ? y + (j * out_ch_ + o) * per_image : quarters;
        if (pool)
          transform_output<true>(m_image, m_stride, per_image, epilogue_.shift(o), out);
        else
          transform_output<false>(m_image, m_stride, per_image, epilogue_.shift(o), out);
        epilogue_.rectify(out, pool ? per_image : 4 * per_image);
        if (!pool) output_phases_.template move_image<false>(y + (j * out_ch_ + o) * g_.positions(), quarters);
      }
  }

 private:
  ConvGeometry g_, phases_;
  PhaseRows<T> output_phases_;  // the stride-2 phases of one output plane: its four quarters
  Tensor<T> packed_u_;
  std::size_t out_ch_;
  Epilogue<T> epilogue_;
};

}  // namespace tessera::kernels::winograd
