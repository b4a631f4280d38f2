// tessera/kernels/epilogue.hpp — what an op does to its result in the same pass over memory, while
// it is in cache: a shift per channel (a bias), the rectifier, and a max-pool over windows that
// tile the plane. The one rectifier and the one pooled-window routine of tessera live here: the
// pointwise ops, the convolutions' and BatchNorm's fused outputs, and max_pool2d use them.
//
// The rectifier is y = max(z, slope·z): ReLU with slope 0, LeakyReLU with slope α (a NaN stays
// NaN, as PyTorch's). Where slope ≥ 0 its gradient is decided by y's sign alone: dz = dy where
// y > 0, slope·dy elsewhere — so a fused op keeps y, not z.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "../core/error.hpp"
#include "arch/arch.hpp"
#include "vector_math.hpp"

namespace tessera {

/// The rectifier an op applies to its own result: none, or max(z, slope·z).
struct Rectifier {
  bool enabled = false;
  double slope = 0;  // ≥ 0 in a fused op (its gradient reads the output's sign)
};

namespace kernels {

/// The check every op taking a rectifier makes: a slope below 0 is not a rectifier.
inline void check_rectifier(const char* op, Rectifier rectifier) {
  TESSERA_CHECK(!rectifier.enabled || rectifier.slope >= 0,
                op << ": the rectifier's slope must be non-negative, got " << rectifier.slope);
}

/// z where z > 0 (or NaN), else slope·z, and +0 where that is 0 (ReLU's max(z, 0) is +0 at
/// z = −∞, not 0·−∞). Blends, not selects, so that loops of it vectorise (vector_math.hpp).
template <class T>
T rectify(T z, T slope) {
  return blend(!(z <= T(0)), z, blend(slope == T(0), T(0), slope * z)) + T(0);
}
/// The gradient at the rectifier's input from the one at its output: dy where `decider` > 0,
/// else slope·dy. The decider is the input z (any slope) or the output y (slope ≥ 0).
template <class T>
T rectified_gradient(T dy, T decider, T slope) {
  return blend(decider > T(0), dy, slope * dy);
}

/// values[i] = rectify(values[i], slope) for n values, in one vectorised pass.
template <class T>
void rectify_in_place(T* values, std::size_t n, T slope) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) values[i] = rectify(values[i], slope);
}
/// dz[i] = rectified_gradient(dy[i], decider[i], slope) for n values, in one vectorised pass.
template <class T>
void gradients_through_rectifier(const T* dy, const T* decider, std::size_t n, T slope, T* dz) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) dz[i] = rectified_gradient(dy[i], decider[i], slope);
}

/// Row oh of the k×k windows of stride s over one plane `width` values wide, tap by tap:
/// taps[t·wo + ow] = plane[(oh·s + t / k)·width + ow·s + t % k] for the k² taps t = ki·k + kj.
/// Windows of two taps a row and stride 2 split each row into its even and odd columns at once.
template <class T>
void window_taps(const T* plane, std::size_t width, std::size_t oh, std::size_t k, std::size_t s, std::size_t wo, T* taps) {
  const arch::Stride2Rows<T> stride2(2 * wo);
  for (std::size_t ki = 0; ki < k; ++ki) {
    const T* row = plane + (oh * s + ki) * width;
    T* row_taps = taps + ki * k * wo;
    if (k == 2 && s == 2) {
      stride2.template move<true>(row, row_taps, row_taps + wo);
      continue;
    }
    for (std::size_t kj = 0; kj < k; ++kj)
      for (std::size_t ow = 0; ow < wo; ++ow) row_taps[kj * wo + ow] = row[ow * s + kj];
  }
}

/// Each of wo windows' largest key(v) over its `count` taps (laid out by window_taps), the first
/// on ties (">", as PyTorch's max-pool): the key to best_key, and where asked the tap's value to
/// best_value (KeepValue) and its index to best_tap (KeepTap). Window by window with the running
/// best in registers; with Count = count known at compile time the loop over windows vectorises.
/// (The pointers are __restrict, or the compiler gives up checking them for overlap; the update
/// is an `if`, which GCC 12 if-converts where it does not three dependent selects.)
template <std::size_t Count, bool KeepValue, bool KeepTap, class T, class Key>
void window_maxima(const T* __restrict taps, std::size_t count, std::size_t wo, Key key, T* __restrict best_key,
                   T* __restrict best_value, std::uint16_t* __restrict best_tap) {
  const std::size_t n = Count ? Count : count;
#pragma omp simd  // (at -O2 too, with the taps unrolled)
  for (std::size_t ow = 0; ow < wo; ++ow) {
    T key_max = key(taps[ow]), value_max = taps[ow];
    int tap_max = 0;
#pragma GCC unroll 16
    for (std::size_t tap = 1; tap < n; ++tap) {
      const T v = taps[tap * wo + ow], z = key(v);
      if (z > key_max) key_max = z, value_max = v, tap_max = int(tap);
    }
    best_key[ow] = key_max;
    if constexpr (KeepValue) best_value[ow] = value_max;
    if constexpr (KeepTap) best_tap[ow] = std::uint16_t(tap_max);
  }
}

/// What follows a product inside its op, per output channel: + bias, then the rectifier, then
/// the maximum of each pool × pool window of stride pool (0: no pool). Pooling after the shift
/// and the rectifier picks the same values as before them (both are monotonic, and rounding
/// keeps order), so the maximum is taken first, in a pool²-th of the additions.
template <class T>
struct Epilogue {
  const T* bias = nullptr;
  Rectifier rectifier{};
  std::size_t pool = 0;

  T shift(std::size_t channel) const { return bias ? bias[channel] : T(0); }
  /// values[0, n) rectified in place, if the rectifier is on.
  void rectify(T* values, std::size_t n) const {
    if (rectifier.enabled) rectify_in_place(values, n, T(rectifier.slope));
  }
  /// Channel c's (height × width) plane of a product to `out`, which may be `product` itself
  /// when nothing is pooled; pooled, out is (height / pool) × (width / pool) and `taps` has room
  /// for pool²·(width / pool) values.
  void apply(const T* product, std::size_t height, std::size_t width, std::size_t c, T* out, T* taps) const {
    if (pool) {
      const std::size_t wo = width / pool;
      for (std::size_t oh = 0; oh < height / pool; ++oh) pooled_row(product, width, oh, c, taps, out + oh * wo);
      return;
    }
    const std::size_t n = height * width;
    if (bias) {
      const T s = bias[c];  // a local: the stores cannot alias it
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) out[i] = product[i] + s;
    } else if (out != product) {
      std::copy_n(product, n, out);
    }
    rectify(out, n);
  }

 private:
  /// Output row oh of a pooled plane: each window's maximum, shifted and rectified.
  void pooled_row(const T* plane, std::size_t width, std::size_t oh, std::size_t c, T* taps, T* out) const {
    const std::size_t wo = width / pool;
    window_taps(plane, width, oh, pool, pool, wo, taps);
    auto value = [](T v) { return v; };
    if (pool == 2)
      window_maxima<4, false, false>(taps, 4, wo, value, out, static_cast<T*>(nullptr), nullptr);
    else
      window_maxima<0, false, false>(taps, pool * pool, wo, value, out, static_cast<T*>(nullptr), nullptr);
    const T s = shift(c);
#pragma omp simd
    for (std::size_t ow = 0; ow < wo; ++ow) out[ow] += s;
    rectify(out, wo);
  }
};

}  // namespace kernels
}  // namespace tessera
