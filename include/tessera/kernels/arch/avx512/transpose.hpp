// tessera/kernels/arch/avx512/transpose.hpp — transpose_rows for floats with AVX-512: 16 × 16
// blocks transposed in registers (three shuffle stages), the rest as generic::transpose_rows.
#pragma once

#include <cstddef>
#include <type_traits>

#include <immintrin.h>

#include "../generic/transpose.hpp"

namespace tessera::kernels::arch::avx512 {

// GCC 12's intrinsics start from _mm512_undefined_ps(), which -Wall reports as uninitialised.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/// A 16 × 16 block transposed in registers: rows[i][j] → out[j·out_ld + i], writing the lanes
/// i set in `keep` of each of the 16 output rows.
inline void transpose_16x16(const float* const* rows, float* out, std::size_t out_ld, __mmask16 keep) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(rows[i]);
  for (int i = 0; i < 8; ++i) {  // interleave pairs of rows by element
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // then by pairs of elements
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int i = 0; i < 2; ++i)  // then by 128-bit quarters
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    _mm512_mask_storeu_ps(out + j * out_ld, keep, _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88));
    _mm512_mask_storeu_ps(out + (8 + j) * out_ld, keep, _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd));
  }
}
#pragma GCC diagnostic pop

/// out[kk·out_ld + i] = rows[i][kk] for i < count ≤ 16, kk < k (generic::transpose_rows's contract).
template <class T>
void transpose_rows(const T* const* rows, std::size_t count, std::size_t k, T* out, std::size_t out_ld) {
  std::size_t kk = 0;
  if constexpr (std::is_same_v<T, float>) {
    static const float zeros[16] = {};
    const float* block[16];
    for (std::size_t i = 0; i < 16; ++i) block[i] = i < count ? rows[i] : zeros;
    const __mmask16 keep = __mmask16((1u << count) - 1);
    for (; kk + 16 <= k; kk += 16) {
      transpose_16x16(block, out + kk * out_ld, out_ld, keep);
      for (std::size_t i = 0; i < count; ++i) block[i] += 16;
    }
  }
  generic::transpose_rows(rows, count, k, out, out_ld, kk);
}

}  // namespace tessera::kernels::arch::avx512
