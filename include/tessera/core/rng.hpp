// tessera/core/rng.hpp — the seeded random number generator behind every random tensor,
// initialiser, dropout mask and data shuffle. Same seed, same numbers, on every platform.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "error.hpp"

namespace tessera {

/// xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64. Its full state is
/// plain data (RngState), so a checkpoint can save and restore it exactly.
struct RngState {
  std::array<std::uint64_t, 4> s{};
  double spare_normal = 0.0;  // Box–Muller makes normals in pairs; the second waits here
  bool has_spare = false;
};

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0x7e55e7a) { seed_with(seed); }

  void seed_with(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (auto& word : state_.s) word = splitmix64(x);
    state_.has_spare = false;
    state_.spare_normal = 0.0;
  }

  const RngState& state() const { return state_; }
  void set_state(const RngState& st) { state_ = st; }

  /// Next 64 random bits.
  std::uint64_t next_u64() {
    auto& s = state_.s;
    const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
    const std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  /// Standard normal N(mean, stddev²) by the Box–Muller transform.
  double normal(double mean = 0.0, double stddev = 1.0) {
    if (state_.has_spare) {
      state_.has_spare = false;
      return mean + stddev * state_.spare_normal;
    }
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();  // log(0) guard
    const double u2 = uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * 3.14159265358979323846 * u2;
    state_.spare_normal = radius * std::sin(angle);
    state_.has_spare = true;
    return mean + stddev * radius * std::cos(angle);
  }

  /// Uniform integer in [0, n), without modulo bias (rejects the short top range).
  std::uint64_t below(std::uint64_t n) {
    TESSERA_CHECK(n > 0, "Rng::below: n must be positive");
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    for (;;) {
      const std::uint64_t r = next_u64();
      if (r >= threshold) return r % n;
    }
  }

  /// True with probability p.
  bool bernoulli(double p) { return uniform() < p; }

  /// 64 random bits for index i of the stream keyed by `key`, without state: splitmix64's
  /// output for key + (i + 1)·golden (Steele et al., 2014). Any thread can draw any index, so
  /// a tensor filled from it is the same at every thread count.
  static std::uint64_t counter_bits(std::uint64_t key, std::uint64_t i) {
    std::uint64_t z = key + i * kGolden;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  static constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) { return counter_bits(x += kGolden, 0); }

  RngState state_;
};

/// The generator used where none is passed (layer initialisation, dropout), like
/// torch's default generator. One per thread, so models built and trained in different
/// threads do not disturb each other.
inline Rng& default_rng() {
  thread_local Rng rng;
  return rng;
}

/// Reseeds this thread's default generator (torch.manual_seed).
inline void manual_seed(std::uint64_t seed) { default_rng().seed_with(seed); }

}  // namespace tessera
