// tessera/kernels/arch/generic/sqrt.hpp — sqrt_in_place, portable: std::sqrt one value at a time
// (a loop of it stays scalar, since libm's sqrt may set errno).
#pragma once

#include <cmath>
#include <cstddef>

namespace tessera::kernels::arch::generic {

/// x[i] = √x[i] for n values, from `from` on, correctly rounded (std::sqrt).
template <class T>
void sqrt_in_place(T* x, std::size_t n, std::size_t from = 0) {
  for (std::size_t i = from; i < n; ++i) x[i] = std::sqrt(x[i]);
}

}  // namespace tessera::kernels::arch::generic
