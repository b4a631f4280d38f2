// tessera/kernels/arch/avx512/sqrt.hpp — sqrt_in_place with AVX-512: the hardware's square root
// 16 floats or 8 doubles at a time, correctly rounded like std::sqrt, so the same numbers.
#pragma once

#include <cstddef>
#include <type_traits>

#include <immintrin.h>

#include "../generic/sqrt.hpp"

namespace tessera::kernels::arch::avx512 {

/// x[i] = √x[i] for n values, a vector at a time.
template <class T>
void sqrt_in_place(T* x, std::size_t n) {
  std::size_t i = 0;
  if constexpr (std::is_same_v<T, float>)
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_sqrt_ps(_mm512_loadu_ps(x + i)));
  if constexpr (std::is_same_v<T, double>)
    for (; i + 8 <= n; i += 8) _mm512_storeu_pd(x + i, _mm512_sqrt_pd(_mm512_loadu_pd(x + i)));
  generic::sqrt_in_place(x, n, i);
}

}  // namespace tessera::kernels::arch::avx512
