// tessera/optim/schedule.hpp — learning-rate schedules as factors of the base rate, functions
// of the epoch alone (so a resumed run repeats them exactly).
//
//   optimizer.set_lr(base_lr * optim::cosine_decay(epoch, epochs));
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "../core/error.hpp"

namespace tessera::optim {

/// ½(1 + cos(π·epoch/epochs)) (Loshchilov & Hutter 2017, without restarts): 1 at the start,
/// falling smoothly towards 0.
inline double cosine_decay(std::size_t epoch, std::size_t epochs) {
  TESSERA_CHECK(epochs > 0, "cosine_decay: epochs must be positive");
  return 0.5 * (1 + std::cos(3.14159265358979323846 * double(epoch) / double(epochs)));
}

/// 1 for the first `constant` epochs, then a straight line towards 0 over the rest, reaching
/// 1/(decaying + 1) in the last epoch (pix2pix and CycleGAN's schedule: constant, then linear).
inline double linear_decay(std::size_t epoch, std::size_t epochs, std::size_t constant) {
  TESSERA_CHECK(constant < epochs, "linear_decay: " << constant << " constant epochs of " << epochs);
  const double decaying = double(epochs - constant);
  const std::size_t into_decay = epoch >= constant ? std::min(epoch, epochs - 1) - constant + 1 : 0;
  return 1.0 - double(into_decay) / (decaying + 1.0);
}

}  // namespace tessera::optim
