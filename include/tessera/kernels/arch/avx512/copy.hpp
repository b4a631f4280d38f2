// tessera/kernels/arch/avx512/copy.hpp — copy_run with AVX-512VL: the rest of a run after its
// whole vectors as one half vector and one masked half vector, which never straddle a cache
// line where the runs are 32-byte aligned.
#pragma once

#include <cstddef>
#include <type_traits>

#include <immintrin.h>

#include "../generic/copy.hpp"

namespace tessera::kernels::arch::avx512 {

/// to[0, n) = from[0, n) (generic::copy_run's contract).
template <class T>
inline __attribute__((always_inline)) void copy_run(const T* from, std::size_t n, T* to) {
#if defined(__AVX512VL__)
  if constexpr (std::is_same_v<T, float>) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(to + i, _mm512_loadu_ps(from + i));
    if (i + 8 <= n) {
      _mm256_storeu_ps(to + i, _mm256_loadu_ps(from + i));
      i += 8;
    }
    if (i < n) {
      const __mmask8 rest = __mmask8((1u << (n - i)) - 1);
      _mm256_mask_storeu_ps(to + i, rest, _mm256_maskz_loadu_ps(rest, from + i));
    }
    return;
  }
#endif
  generic::copy_run(from, n, to);
}

}  // namespace tessera::kernels::arch::avx512
