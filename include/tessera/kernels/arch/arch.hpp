// tessera/kernels/arch/arch.hpp — the one switch from the compiler's target to the routines that
// use its instructions. Each folder has the same names: generic/ (portable C++, compiled and
// tested on every build), x86/ (SSE2 and AVX), avx512/; each routine falls back to the generic
// one for the types it has no instructions for. Nothing outside kernels/arch/ holds an
// intrinsic or tests an instruction set.
#pragma once

#include <cstddef>

#include "generic/copy.hpp"
#include "generic/sqrt.hpp"
#include "generic/stride2.hpp"
#include "generic/transpose.hpp"
#include "vector.hpp"

#if defined(__AVX512F__)
#include "avx512/copy.hpp"
#include "avx512/sqrt.hpp"
#include "avx512/stride2.hpp"
#include "avx512/transpose.hpp"
#elif defined(__SSE2__)
#include "x86/sqrt.hpp"
#endif

namespace tessera::kernels::arch {

#if defined(__AVX512F__)
inline constexpr const char* kName = "avx512";
using avx512::col2im_stride2;
using avx512::copy_run;
using avx512::im2col_stride2_packed;
using avx512::sqrt_in_place;
using avx512::Stride2Rows;
using avx512::stage_channel_stride2;
using avx512::transpose_rows;
/// Outputs of a row the DCGAN geometry's direct im2col handles at once; 0 where this target
/// has no such path in registers (the planner then takes the phase planes).
template <class T>
inline constexpr std::size_t kStride2Piece = avx512::kStride2Piece<T>;
#else
#if defined(__SSE2__)
inline constexpr const char* kName = "x86";
using x86::sqrt_in_place;
#else
inline constexpr const char* kName = "generic";
using generic::sqrt_in_place;
#endif
using generic::col2im_stride2;
using generic::copy_run;
using generic::im2col_stride2_packed;
using generic::Stride2Rows;
using generic::stage_channel_stride2;
using generic::transpose_rows;
template <class T>
inline constexpr std::size_t kStride2Piece = 0;
#endif

}  // namespace tessera::kernels::arch
