// tessera/train/resume.hpp — --resume for the example programs: restore everything a
// checkpoint holds and say where training continues.
//
//   io::Checkpoint<float> checkpoint;  checkpoint.add("model", model).add("optimizer", optimizer);
//   const auto [start, first_step] = train::resume(checkpoint, opt);
//   for (std::size_t epoch = start; epoch < opt.epochs; ++epoch)
//     for (const auto& batch : loader.epoch(epoch, epoch == start ? first_step : 0)) ...
#pragma once

#include <cstddef>
#include <iostream>

#include "../io/checkpoint.hpp"
#include "cli.hpp"

namespace tessera::train {

/// Where training stands: `step` steps into epoch `epoch` (both from 0).
struct Position {
  std::size_t epoch = 0, step = 0;
};

/// The position to start from: (0, 0) without --resume; otherwise the checkpoint's, after
/// loading it into every component of `checkpoint` (an Error, with nothing changed, if it
/// does not fit). Checkpoints saved at an epoch's end say (next epoch, 0); an interrupted run
/// saves the middle of an epoch (see interrupt.hpp).
///
/// The optimizers' learning rates are those the flags set (a changed --lr applies) where the
/// checkpoint recorded its run's flags or --lr is given; else the checkpoint's.
template <class T>
Position resume(io::Checkpoint<T>& checkpoint, const Options& opt) {
  if (opt.resume.empty()) return {};
  checkpoint.restore_learning_rates = !(opt.resumed_with_flags || opt.was_given("--lr"));
  checkpoint.load(opt.resume);
  checkpoint.restore_learning_rates = true;
  const Position at{checkpoint.state.epoch, checkpoint.state.step};
  std::cout << "resuming from " << opt.resume << " at epoch " << at.epoch + 1 << ", step " << at.step << '\n';
  return at;
}

}  // namespace tessera::train
