// tessera/train/interrupt.hpp — Ctrl-C (SIGINT) and SIGTERM during training: the loop
// finishes its step, saves a checkpoint and exits 128 + signal (130, 143: the shell's
// convention), saying how to continue; --resume then picks up at the next step.
//
//   ts::train::StopOnSignal stop;                          // handlers installed while alive
//   for (const auto& batch : loader.epoch(epoch, step)) {
//     if (stop.requested()) return ts::train::save_and_stop(checkpoint, path, epoch, step, stop);
//     ... one step; ++step;
//   }
#pragma once

#include <csignal>
#include <cstddef>
#include <iostream>
#include <string>

#include "../io/checkpoint.hpp"

namespace tessera::train {

namespace detail {
inline volatile std::sig_atomic_t received_signal = 0;
inline void remember_signal(int signal) { received_signal = signal; }
}  // namespace detail

/// While alive, SIGINT and SIGTERM only set a flag (a second one still does no more: the
/// checkpoint being written must not be cut short). The previous handlers come back after.
class StopOnSignal {
 public:
  StopOnSignal() {
    detail::received_signal = 0;
    previous_int_ = std::signal(SIGINT, detail::remember_signal);
    previous_term_ = std::signal(SIGTERM, detail::remember_signal);
  }
  ~StopOnSignal() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;

  bool requested() const { return detail::received_signal != 0; }
  int signal() const { return detail::received_signal; }
  int exit_code() const { return 128 + signal(); }

 private:
  using Handler = void (*)(int);
  Handler previous_int_, previous_term_;
};

/// Saves `checkpoint` (atomically) as standing after `steps_done` steps of epoch `epoch`, says
/// so on stdout with the command-line flag that continues it, and returns the exit code.
template <class T>
int save_and_stop(io::Checkpoint<T>& checkpoint, const std::string& path, std::size_t epoch, std::size_t steps_done,
                  const StopOnSignal& stop) {
  checkpoint.state.epoch = epoch;
  checkpoint.state.step = steps_done;
  checkpoint.save(path);
  std::cout << "interrupted by " << (stop.signal() == SIGINT ? "SIGINT" : "SIGTERM") << " in epoch " << epoch + 1
            << " after step " << steps_done << "; saved " << path << "; continue with --resume " << path << std::endl;
  return stop.exit_code();
}

}  // namespace tessera::train
