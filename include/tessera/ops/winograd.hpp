// tessera/ops/winograd.hpp — the 3×3, stride-1 convolution by Winograd's minimal filtering
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
// phases (conv.hpp's split_phases): padded row 2·ty + ρ is row ty + ρ/2 of the planes of row
// phase ρ mod 2, and a tile's four columns 2·tx .. 2·tx + 3 are even[tx], odd[tx],
// even[tx + 1], odd[tx + 1] — contiguous in tx, so every transform below is a loop over the
// tiles of a row that vectorises.
#pragma once

#include <cstddef>
#include <cstring>

#include "../core/tensor.hpp"
#include "gemm.hpp"

namespace tessera::winograd {

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

template <class T>
struct HalfVectorOf {  // half the widest vector: a row of 8 tiles in floats with AVX-512
  typedef T type __attribute__((vector_size(gemm::kVectorBytes / 2)));
};

/// body(t, V{}) for t over [0, n): whole vectors of tiles at a time (V = gemm's Vector<T>),
/// then a half vector, then the rest one at a time (V = T). The transforms below are written
/// once for all three.
template <class T, class Body>
void for_each_lane_block(std::size_t n, Body&& body) {
  using Full = gemm::detail::Vector<T>;
  using Half = typename HalfVectorOf<T>::type;
  constexpr std::size_t lanes = sizeof(Full) / sizeof(T), half = lanes / 2;
  std::size_t t = 0;
  for (; t + lanes <= n; t += lanes) body(t, Full{});
  if constexpr (half > 1)
    if (t + half <= n) body(t, Half{}), t += half;
  for (; t < n; ++t) body(t, T{});
}
template <class V, class T>
V load_as(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T, class V>
void store_as(T* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
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
      const V d0 = load_as<V>(row), d1 = load_as<V>(row + odd), d2 = load_as<V>(row + 1), d3 = load_as<V>(row + odd + 1);
      w[r][0] = d0 - d2, w[r][1] = d1 + d2, w[r][2] = d2 - d1, w[r][3] = d1 - d3;
    }
    for (std::size_t j = 0; j < kTile; ++j) {  // Bᵀ·(d·B)
      store_as(v + j * stride + tx, w[0][j] - w[2][j]);
      store_as(v + (4 + j) * stride + tx, w[1][j] + w[2][j]);
      store_as(v + (8 + j) * stride + tx, w[2][j] - w[1][j]);
      store_as(v + (12 + j) * stride + tx, w[1][j] - w[3][j]);
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
      const V m0 = load_as<V>(row), m1 = load_as<V>(row + stride), m2 = load_as<V>(row + 2 * stride),
              m3 = load_as<V>(row + 3 * stride);
      s0[i] = m0 + m1 + m2, s1[i] = m1 - m2 - m3;
    }
    const V y00 = s0[0] + s0[1] + s0[2], y01 = s1[0] + s1[1] + s1[2];  // Aᵀ·(M·A)
    const V y10 = s0[1] - s0[2] - s0[3], y11 = s1[1] - s1[2] - s1[3];
    if constexpr (Pool) {
      V best = y00;
      best = y01 > best ? y01 : best;
      best = y10 > best ? y10 : best;
      best = y11 > best ? y11 : best;
      store_as(y + t, best + shift);
    } else {
      store_as(y + t, y00 + shift), store_as(y + tiles + t, y01 + shift);
      store_as(y + 2 * tiles + t, y10 + shift), store_as(y + 3 * tiles + t, y11 + shift);
    }
  });
}

}  // namespace tessera::winograd
