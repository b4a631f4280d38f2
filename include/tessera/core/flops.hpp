// tessera/core/flops.hpp — FlopCounter: counts the floating-point operations of the matrix
// products (2·m·n·k each: convolutions, transposed convolutions, Dense and matmul, forward and
// backward) that run on this thread while it is alive, as torch.utils.flop_counter. The
// benchmark uses it to turn steps/s into GFLOP/s; elementwise work is not counted.
//
//   FlopCounter flops;  trainer.step(real, {}, rng);  double per_step = flops.total();
#pragma once

#include <cstddef>

namespace tessera {

class FlopCounter;
namespace detail {
inline FlopCounter*& innermost_flop_counter() {
  thread_local FlopCounter* counter = nullptr;
  return counter;
}
inline void count_matmul_flops(std::size_t m, std::size_t n, std::size_t k);
}  // namespace detail

class FlopCounter {
 public:
  FlopCounter() : outer_(detail::innermost_flop_counter()) { detail::innermost_flop_counter() = this; }
  ~FlopCounter() { detail::innermost_flop_counter() = outer_; }
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;

  /// Operations counted so far (those of nested counters included).
  double total() const { return total_; }

 private:
  friend void detail::count_matmul_flops(std::size_t, std::size_t, std::size_t);
  double total_ = 0;
  FlopCounter* outer_;
};

namespace detail {
/// Called by every matrix product (m × k) · (k × n): 2·m·n·k operations to every live counter.
inline void count_matmul_flops(std::size_t m, std::size_t n, std::size_t k) {
  for (FlopCounter* c = innermost_flop_counter(); c; c = c->outer_) c->total_ += 2.0 * double(m) * double(n) * double(k);
}
}  // namespace detail

}  // namespace tessera
