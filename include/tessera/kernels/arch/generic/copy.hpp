// tessera/kernels/arch/generic/copy.hpp — copy_run: the short copies of im2col and packing,
// portable (whole vectors, then element by element).
#pragma once

#include <cstddef>

#include "../vector.hpp"

namespace tessera::kernels::arch::generic {

/// to[0, n) = from[0, n), for the short runs of im2col and packing (a library call would cost
/// more than the copy): whole vectors, then the rest.
template <class T>
inline __attribute__((always_inline)) void copy_run(const T* from, std::size_t n, T* to) {
  constexpr std::size_t lanes = kVectorBytes / sizeof(T);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) store(to + i, load<Vector<T>>(from + i));
  for (; i < n; ++i) to[i] = from[i];
}

}  // namespace tessera::kernels::arch::generic
