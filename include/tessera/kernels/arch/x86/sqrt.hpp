// tessera/kernels/arch/x86/sqrt.hpp — sqrt_in_place on x86 without AVX-512: the hardware's
// square root four (SSE2) or eight (AVX) floats at a time, correctly rounded like std::sqrt, so
// the same numbers. (A loop calling std::sqrt stays scalar: libm's may set errno.)
#pragma once

#include <cstddef>
#include <type_traits>

#include <immintrin.h>

#include "../generic/sqrt.hpp"

namespace tessera::kernels::arch::x86 {

/// x[i] = √x[i] for n values, a vector at a time.
template <class T>
void sqrt_in_place(T* x, std::size_t n) {
  std::size_t i = 0;
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float>)
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_sqrt_ps(_mm256_loadu_ps(x + i)));
  if constexpr (std::is_same_v<T, double>)
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(x + i, _mm256_sqrt_pd(_mm256_loadu_pd(x + i)));
#else
  if constexpr (std::is_same_v<T, float>)
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(x + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
  if constexpr (std::is_same_v<T, double>)
    for (; i + 2 <= n; i += 2) _mm_storeu_pd(x + i, _mm_sqrt_pd(_mm_loadu_pd(x + i)));
#endif
  generic::sqrt_in_place(x, n, i);
}

}  // namespace tessera::kernels::arch::x86
