// tessera/kernels/vector_math.hpp — pointwise functions written so that a loop of them vectorises
// (libm's are calls, one element at a time): plain arithmetic and blends, no branches, no
// tables. tanh is accurate to 2 ulp for every float (tested against std:: in double); the
// square root is the hardware's, a vector at a time (arch/).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "arch/arch.hpp"

namespace tessera::kernels {

using arch::sqrt_in_place;  // x[i] = √x[i], correctly rounded: std::sqrt's numbers

/// cond ? a : b, as a blend of their bits. Written as a select whose arm is a multiply
/// (z > 0 ? z : slope·z), GCC makes a branch of it and, without AVX-512's masks, will not
/// if-convert a multiply that may trap, so the loop stays scalar (13× slower on AVX2 in
/// BatchNorm + LeakyReLU); a blend of two values already computed vectorises on every target.
template <class T>
T blend(bool cond, T a, T b) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  static_assert(sizeof(T) == sizeof(Bits), "blend: float or double");
  Bits a_bits, b_bits;
  std::memcpy(&a_bits, &a, sizeof a);
  std::memcpy(&b_bits, &b, sizeof b);
  const Bits mask = Bits(0) - Bits(cond);  // all ones where cond
  const Bits bits = (a_bits & mask) | (b_bits & ~mask);
  T out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

/// e^t for t in [0, 20]: t = n·ln2 + r with |r| ≤ ln2/2 (Cody & Waite's two-part ln2, so r is
/// exact), e^r by its Taylor series to r⁷ (truncation < 1.2e-8 relative), times 2^n made from
/// its exponent bits.
inline float exp_float_small_range(float t) {
  constexpr float log2e = 1.44269504f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  constexpr float round = 12582912.0f;  // 1.5·2^23: adding and subtracting it rounds to an integer
  const float n = (t * log2e + round) - round;
  const float r = (t - n * ln2_hi) - n * ln2_lo;
  const float p =
      1.f + r * (1.f + r * (1.f / 2 + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720 + r * (1.f / 5040)))))));
  const std::int32_t bits = (std::int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/// tanh for float: for |x| < 0.55 its Taylor series to x¹⁷ (the first term left out is below
/// 0.1 ulp there); above, 1 − 2/(e^{2|x|} + 1), which has no cancellation once tanh ≥ 0.5.
/// |x| is clamped at 10, past which tanh rounds to ±1. NaN stays NaN.
inline float tanh_float(float x) {
  const float a = std::fabs(x), a2 = a * a;
  const float series =
      a + a * a2 *
              (-1.f / 3 +
               a2 * (2.f / 15 +
                     a2 * (-17.f / 315 +
                           a2 * (62.f / 2835 +
                                 a2 * (-1382.f / 155925 +
                                       a2 * (21844.f / 6081075.f + a2 * (-929569.f / 638512875.f + a2 * (6404582.f / 10854718875.f))))))));
  const float e = exp_float_small_range(2.f * (a < 10.f ? a : 10.f));
  const float closed = 1.f - 2.f / (e + 1.f);
  const float magnitude = a < 0.55f ? series : closed;
  return x != x ? x : std::copysign(magnitude, x);
}

/// tanh elementwise: the vectorisable one for float, std::tanh otherwise.
template <class T>
T tanh_value(T x) {
  if constexpr (std::is_same_v<T, float>)
    return tanh_float(x);
  else
    return std::tanh(x);
}

}  // namespace tessera::kernels
