// tessera/kernels/arch/generic/transpose.hpp — transpose_rows: the transposes that pack a GEMM
// operand whose rows run along the product's depth, portable.
#pragma once

#include <cstddef>

namespace tessera::kernels::arch::generic {

/// out[kk·out_ld + i] = rows[i][kk] for i < count ≤ lanes, kk < k: `count` rows, each k values
/// long, written column by column (a transpose).
template <class T>
void transpose_rows(const T* const* rows, std::size_t count, std::size_t k, T* out, std::size_t out_ld,
                    std::size_t from = 0) {
  for (std::size_t kk = from; kk < k; ++kk)
    for (std::size_t i = 0; i < count; ++i) out[kk * out_ld + i] = rows[i][kk];
}

}  // namespace tessera::kernels::arch::generic
