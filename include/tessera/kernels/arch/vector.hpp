// tessera/kernels/arch/vector.hpp — the widest vector the compiler targets, as GCC/Clang vector
// extensions: the portable SIMD that the GEMM's register tile and Winograd's transforms are
// written in (one source for float and double, AVX-512, AVX2, SSE2 or NEON).
#pragma once

#include <cstddef>
#include <cstring>

namespace tessera::kernels::arch {

#if defined(__AVX512F__)
inline constexpr std::size_t kVectorBytes = 64, kVectorRegisters = 32;
#elif defined(__AVX__)
inline constexpr std::size_t kVectorBytes = 32, kVectorRegisters = 16;
#elif defined(__aarch64__)
inline constexpr std::size_t kVectorBytes = 16, kVectorRegisters = 32;
#else
inline constexpr std::size_t kVectorBytes = 16, kVectorRegisters = 16;
#endif

template <class T>
struct VectorOf {  // (an attribute on an alias template's dependent type would be dropped)
  typedef T type __attribute__((vector_size(kVectorBytes)));
};
template <class T>
struct HalfVectorOf {  // half the widest vector: a row of 8 Winograd tiles in floats with AVX-512
  typedef T type __attribute__((vector_size(kVectorBytes / 2)));
};
/// The widest vector of T, and half of it.
template <class T>
using Vector = typename VectorOf<T>::type;
template <class T>
using HalfVector = typename HalfVectorOf<T>::type;

/// An unaligned load or store of any vector type V of T (memcpy: no aliasing or alignment
/// assumptions, compiled to one instruction).
template <class V, class T>
V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T, class V>
void store(T* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}

}  // namespace tessera::kernels::arch
