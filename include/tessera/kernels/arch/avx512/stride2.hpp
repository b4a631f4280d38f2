// tessera/kernels/arch/avx512/stride2.hpp — stride 2 in AVX-512 registers, for floats: the
// split of an image row into its even and odd columns and back (32 at a time), and the DCGAN
// convolution's im2col and col2im (kernel 4, stride 2, padding 1, even sizes) straight between
// image rows and columns. The same numbers as the portable twins in ../generic/stride2.hpp,
// whose top explains the geometry; other types go to those.
//
// col2im: an image row is the interleave of two sums of four column rows (shifted by one or
// not), made 16 pixels at a time in registers and stored once — a third of the loads and a
// sixth of the stores of adding every tap into zeroed phase planes and merging them. im2col:
// each padded image row is split into its even and odd columns in registers, and these,
// shifted by one lane or not, are the four taps kj of each kernel row ki that reads it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include <immintrin.h>

#include "../../conv/geometry.hpp"
#include "../generic/stride2.hpp"

namespace tessera::kernels::arch::avx512 {

/// Outputs per piece of a row that the direct im2col stores at once (the planner's unit).
template <class T>
inline constexpr std::size_t kStride2Piece = std::is_same_v<T, float> ? 16 : 0;

/// out[2m] = even[m], out[2m + 1] = odd[m] for 32 floats, the first 16 stored where `first`
/// is set and the next 16 where `second` is.
inline void store_interleaved(float* out, __m512 even, __m512 odd, __mmask16 first, __mmask16 second) {
  const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  _mm512_mask_storeu_ps(out, first, _mm512_permutex2var_ps(even, low, odd));
  if (second) _mm512_mask_storeu_ps(out + 16, second, _mm512_permutex2var_ps(even, high, odd));
}

/// Stride 2's split of rows `width` floats long, 32 at a time in registers: in[2m] → even[m],
/// in[2m + 1] → odd[m] (Deinterleave) or back (the adjoint). The masks of a row's last, partial
/// 32 are made once per width, not once per row.
class Stride2RowsFloat {
 public:
  explicit Stride2RowsFloat(std::size_t width) : whole_(width / 32 * 32) {
    const std::size_t rest = width - whole_;
    first_ = __mmask16((1u << std::min<std::size_t>(16, rest)) - 1);
    second_ = rest > 16 ? __mmask16((1u << (rest - 16)) - 1) : 0;
    to_even_ = __mmask16((1u << ((rest + 1) / 2)) - 1), to_odd_ = __mmask16((1u << (rest / 2)) - 1);
  }

  template <bool Deinterleave>
  void move(generic::ImageRow<Deinterleave, float> in, generic::PlaneRow<Deinterleave, float> even, generic::PlaneRow<Deinterleave, float> odd) const {
    std::size_t i = 0;
    for (; i < whole_; i += 32) move_32<Deinterleave>(in + i, even + i / 2, odd + i / 2, 0xffff, 0xffff, 0xffff, 0xffff);
    if (first_) move_32<Deinterleave>(in + i, even + i / 2, odd + i / 2, first_, second_, to_even_, to_odd_);
  }

 private:
  template <bool Deinterleave>
  static void move_32(generic::ImageRow<Deinterleave, float> in, generic::PlaneRow<Deinterleave, float> even, generic::PlaneRow<Deinterleave, float> odd,
                      __mmask16 first, __mmask16 second, __mmask16 to_even, __mmask16 to_odd) {
    if constexpr (Deinterleave) {
      const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
      const __m512i odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
      const __m512 a = _mm512_maskz_loadu_ps(first, in), b = _mm512_maskz_loadu_ps(second, in + 16);
      _mm512_mask_storeu_ps(even, to_even, _mm512_permutex2var_ps(a, evens, b));
      _mm512_mask_storeu_ps(odd, to_odd, _mm512_permutex2var_ps(a, odds, b));
    } else {
      store_interleaved(in, _mm512_maskz_loadu_ps(to_even, even), _mm512_maskz_loadu_ps(to_odd, odd), first, second);
    }
  }

  std::size_t whole_;
  __mmask16 first_, second_, to_even_, to_odd_;
};

/// store(r, q, v, lanes) for every piece of one image's im2col, of the DCGAN geometry: row r = (c, ki, kj) of channels [c0, c1), columns q .. q + 16 (the
/// output positions oh·Wo + t0 ..) in v, of which `lanes` are outputs. Each padded image row
/// is split into its even and odd columns in registers, 16 outputs at a time, and these —
/// shifted by one lane or not — are the four taps kj of each kernel row ki that reads it (the
/// top of this file).
template <class Store>
void for_each_stride2_column_piece(const float* image, const ConvGeometry& g, std::size_t c0, std::size_t c1, Store store) {
  const std::size_t wo = g.out_width, ho = g.out_height, width = g.width;
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (std::size_t c = c0; c < c1; ++c)
    for (std::size_t i = 0; i < g.height + 2; ++i) {  // padded row i: image row i − 1
      const float* row = i == 0 || i == g.height + 1 ? nullptr : image + (c * g.height + i - 1) * width;
      for (std::size_t t0 = 0; t0 < wo; t0 += 16) {  // outputs t0 .. t0 + n: image columns 2·t0 − 1 .. 2·(t0 + n)
        const std::size_t n = std::min<std::size_t>(16, wo - t0);
        __m512 even = _mm512_setzero_ps(), odd = even, before = even, after = even;  // padding: zeros
        if (row) {
          const __m512 a = _mm512_maskz_loadu_ps(__mmask16((1u << std::min<std::size_t>(16, 2 * n)) - 1), row + 2 * t0);
          const __m512 b = _mm512_maskz_loadu_ps(__mmask16(n > 8 ? (1u << (2 * n - 16)) - 1 : 0), row + 2 * t0 + 16);
          even = _mm512_permutex2var_ps(a, evens, b);  // columns 2·t: lanes past n are zero
          odd = _mm512_permutex2var_ps(a, odds, b);    // columns 2·t + 1
          before = _mm512_set1_ps(t0 > 0 ? row[2 * t0 - 1] : 0.f);       // column 2·t0 − 1
          after = _mm512_set1_ps(t0 + n < wo ? row[2 * (t0 + n)] : 0.f);  // column 2·(t0 + n)
        }
        const __m512 taps[4] = {
            _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(odd), _mm512_castps_si512(before), 15)),  // kj = 0: column 2·t − 1
            even,                                                                                                  // kj = 1: 2·t
            odd,                                                                                                   // kj = 2: 2·t + 1
            _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(after), _mm512_castps_si512(even), 1))};  // kj = 3: 2·t + 2
        for (std::size_t ki = i % 2; ki < 4 && ki <= i; ki += 2) {  // the output rows oh = (i − ki) / 2 that read it
          const std::size_t oh = (i - ki) / 2;
          if (oh >= ho) continue;
          for (std::size_t kj = 0; kj < 4; ++kj) store((c * 4 + ki) * 4 + kj, oh * wo + t0, taps[kj], n);
        }
      }
    }
}

/// generic::im2col_stride2_packed (its contract); floats where no 16 outputs of a row cross a
/// panel of 32 (Wo a multiple or a divisor of 16: the planner's condition, kernels/conv/plan.hpp).
template <class T>
void im2col_stride2_packed(const T* images, std::size_t count, const ConvGeometry& g, T* packed, std::size_t panel) {
  if constexpr (!std::is_same_v<T, float>) {
    generic::im2col_stride2_packed(images, count, g, packed, panel);
  } else {
    (void)panel;  // 32: the GEMM's panel of floats with AVX-512
    const std::size_t k = g.col_rows(), L = g.positions();
    for (std::size_t j = 0; j < count; ++j)
      for_each_stride2_column_piece(images + j * g.image_size(), g, 0, g.channels,
                                    [&](std::size_t r, std::size_t q, __m512 v, std::size_t lanes) {
                                      q += j * L;
                                      _mm512_mask_storeu_ps(packed + (q / 32) * 32 * k + r * 32 + q % 32, __mmask16((1u << lanes) - 1), v);
                                    });
  }
}

/// generic::col2im_stride2 (its contract): for floats each image row the interleave of two sums
/// of four column rows, 16 pixels at a time, the taps added in the same order.
template <class T>
void col2im_stride2(const T* cols, const ConvGeometry& g, T* image, std::size_t ld) {
  if constexpr (!std::is_same_v<T, float>) {
    generic::col2im_stride2(cols, g, image, ld);
  } else {
    const std::size_t out_h = g.out_height, wo = g.out_width, width = g.width;
    for (std::size_t c = 0; c < g.channels; ++c)
      for (std::size_t ih = 0; ih < g.height; ++ih) {
        // the row's kernel rows ki (ascending) and their output rows oh (−1: none)
        const std::ptrdiff_t u = std::ptrdiff_t(ih / 2);
        const std::ptrdiff_t taps[2][2] = {{ih % 2 ? 0 : 1, ih % 2 ? u + 1 : u}, {ih % 2 ? 2 : 3, ih % 2 ? u : u - 1}};
        float* out = image + (c * g.height + ih) * width;
        for (std::size_t t0 = 0; t0 < wo; t0 += 16) {  // image columns 2·t0 .. 2·t0 + 32
          const std::size_t n = std::min<std::size_t>(16, wo - t0);
          const __mmask16 all = __mmask16((1u << n) - 1);
          const __mmask16 after_first = t0 == 0 ? __mmask16(all & ~1u) : all;      // ow = t − 1 ≥ 0
          const __mmask16 before_last = t0 + n == wo ? __mmask16(all >> 1) : all;  // ow = t + 1 < Wo
          __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
          for (const auto& [ki, oh] : taps) {
            if (oh < 0 || oh >= std::ptrdiff_t(out_h)) continue;
            const float* row = cols + (c * 16 + std::size_t(ki) * 4) * ld + std::size_t(oh) * wo + t0;  // kj = 0's
            odd = _mm512_add_ps(odd, _mm512_maskz_loadu_ps(before_last, row + 1));            // kj = 0: ow = t + 1
            even = _mm512_add_ps(even, _mm512_maskz_loadu_ps(all, row + ld));                 // kj = 1: ow = t
            odd = _mm512_add_ps(odd, _mm512_maskz_loadu_ps(all, row + 2 * ld));               // kj = 2: ow = t
            even = _mm512_add_ps(even, _mm512_maskz_loadu_ps(after_first, row + 3 * ld - 1)); // kj = 3: ow = t − 1
          }
          const std::size_t pixels = 2 * n;  // even and odd columns interleaved
          store_interleaved(out + 2 * t0, even, odd, __mmask16((1u << std::min<std::size_t>(16, pixels)) - 1),
                            __mmask16(pixels > 16 ? (1u << (pixels - 16)) - 1 : 0));
        }
      }
  }
}

/// Stride2Rows<T>: the split of rows of T, in registers for floats.
template <class T>
using Stride2Rows = std::conditional_t<std::is_same_v<T, float>, Stride2RowsFloat, generic::Stride2Rows<T>>;

/// generic::stage_channel_stride2 (its contract), in registers for floats where the planner's
/// condition holds.
template <class T>
void stage_channel_stride2(const T* images, std::size_t count, const ConvGeometry& g, std::size_t c, T* staged,
                           std::size_t width) {
  if constexpr (!std::is_same_v<T, float>) {
    generic::stage_channel_stride2(images, count, g, c, staged, width);
  } else {
    for (std::size_t j = 0; j < count; ++j)
      for_each_stride2_column_piece(images + j * g.image_size(), g, c, c + 1, [&](std::size_t r, std::size_t q, __m512 v, std::size_t lanes) {
        _mm512_mask_storeu_ps(staged + (r % 16) * width + j * g.positions() + q, __mmask16((1u << lanes) - 1), v);
      });
  }
}

}  // namespace tessera::kernels::arch::avx512
