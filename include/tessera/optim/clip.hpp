// tessera/optim/clip.hpp — gradient clipping, between backward() and the optimizer's step, as
// torch.nn.utils.clip_grad_norm_ and clip_grad_value_. Parameters without a gradient are
// skipped.
//
//   loss.backward();
//   optim::clip_grad_norm_(model.parameters(), 1.0);   // returns the norm before clipping
//   optimizer.step();
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../autograd/var.hpp"
#include "../core/error.hpp"

namespace tessera::optim {

/// Scales all gradients together so that their joint p-norm (all gradients as one vector) is
/// at most `max_norm`; p = 2 by default, infinity for the largest magnitude. Returns the norm
/// before clipping. A NaN or Inf norm is an Error, naming it, with no gradient changed
/// (PyTorch's error_if_nonfinite=True; clipping would otherwise spread the NaN to every weight).
template <class T>
double clip_grad_norm_(const std::vector<Var<T>>& params, double max_norm, double norm_type = 2.0) {
  TESSERA_CHECK(max_norm >= 0, "clip_grad_norm_: max_norm must be non-negative, got " << max_norm);
  TESSERA_CHECK(norm_type > 0, "clip_grad_norm_: norm_type must be positive, got " << norm_type);
  const bool infinity = std::isinf(norm_type);
  double total = 0;  // Σ|g|^p, or max |g|
  for (const auto& p : params) {
    if (!p.has_grad()) continue;
    for (T g : p.grad()) {
      const double magnitude = std::abs(double(g));
      total = infinity ? std::max(total, magnitude) : total + std::pow(magnitude, norm_type);
      if (std::isnan(magnitude)) total = magnitude;  // max() would drop a NaN
    }
  }
  const double norm = infinity ? total : std::pow(total, 1.0 / norm_type);
  TESSERA_CHECK(std::isfinite(norm), "clip_grad_norm_: the gradients' total norm is " << number_text(norm)
                                                                                       << "; no gradient was clipped");
  const double scale = max_norm / (norm + 1e-6);  // PyTorch's epsilon
  if (scale < 1)
    for (const auto& p : params)
      if (p.has_grad())
        for (T& g : p.node()->grad) g = T(double(g) * scale);
  return norm;
}

/// Clamps every gradient element into [−clip_value, clip_value] (NaN stays NaN).
template <class T>
void clip_grad_value_(const std::vector<Var<T>>& params, double clip_value) {
  TESSERA_CHECK(clip_value >= 0, "clip_grad_value_: clip_value must be non-negative, got " << clip_value);
  const T bound = T(clip_value);
  for (const auto& p : params)
    if (p.has_grad())
      for (T& g : p.node()->grad) g = std::clamp(g, -bound, bound);
}

}  // namespace tessera::optim
