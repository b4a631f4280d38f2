// tessera/ops/rectifier.hpp — the rectifier an op can apply to its own output in the same pass
// over memory (BatchNorm's and a convolution's fused ReLU / LeakyReLU): y = max(z, slope·z),
// ReLU with slope 0, LeakyReLU with slope α > 0. Its gradient is decided by y's sign alone:
// dz = dy where y > 0, slope·dy elsewhere.
#pragma once

#include <cstddef>

#include "../core/error.hpp"
#include "vector_math.hpp"

namespace tessera {

/// What follows an op's result inside the op: nothing, or max(z, slope·z).
struct Rectifier {
  bool enabled = false;
  double slope = 0;  // ≥ 0
};

namespace detail {
/// The check every op taking a rectifier makes: a slope below 0 is not a rectifier.
inline void check_rectifier(const char* op, Rectifier rectifier) {
  TESSERA_CHECK(!rectifier.enabled || rectifier.slope >= 0,
                op << ": the rectifier's slope must be non-negative, got " << rectifier.slope);
}
/// max(z, slope·z) (z where z > 0, slope·z elsewhere); + 0 makes relu's +0 where slope·z is
/// −0. A blend, not a select, so that loops of it vectorise (vector_math.hpp). (A NaN stays
/// NaN, where relu() would make it 0.)
template <class T>
T rectify(T z, T slope) {
  return blend(z > T(0), z, slope * z) + T(0);
}
/// The gradient at the rectifier's input, from the one at its output y.
template <class T>
T rectified_gradient(T dy, T y, T slope) {
  return blend(y > T(0), dy, slope * dy);
}

/// values[i] = rectify(values[i], slope) for n values, in one vectorised pass.
template <class T>
void rectify_in_place(T* values, std::size_t n, T slope) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) values[i] = rectify(values[i], slope);
}
/// dz[i] = rectified_gradient(dy[i], y[i], slope) for n values, in one vectorised pass.
template <class T>
void gradients_through_rectifier(const T* dy, const T* y, std::size_t n, T slope, T* dz) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) dz[i] = rectified_gradient(dy[i], y[i], slope);
}
}  // namespace detail

}  // namespace tessera
