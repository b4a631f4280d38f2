// tessera/train/resume.hpp — --resume for the example programs: restore everything a
// checkpoint holds and say where training continues.
//
//   io::Checkpoint<float> checkpoint;  checkpoint.add("model", model).add("optimizer", optimizer);
//   for (std::size_t epoch = train::resume(checkpoint, opt); epoch < opt.epochs; ++epoch) ...
#pragma once

#include <cstddef>
#include <iostream>

#include "../io/checkpoint.hpp"
#include "cli.hpp"

namespace tessera::train {

/// The epoch to start from: 0 without --resume; otherwise the checkpoint's, after loading it
/// into every component of `checkpoint` (an Error, with nothing changed, if it does not fit).
template <class T>
std::size_t resume(io::Checkpoint<T>& checkpoint, const Options& opt) {
  if (opt.resume.empty()) return 0;
  checkpoint.load(opt.resume);
  std::cout << "resuming from " << opt.resume << " after epoch " << checkpoint.state.epoch << '\n';
  return checkpoint.state.epoch;
}

}  // namespace tessera::train
