// tessera/core/parallel.hpp — the one way tessera spreads a loop over threads.
// OpenMP with a static schedule: each thread gets a fixed, contiguous range, so results never
// depend on scheduling, and omp_set_num_threads / OMP_NUM_THREADS are respected.
#pragma once

#include <cstddef>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tessera {

/// Threads tessera will use (omp_get_max_threads, or 1 without OpenMP).
inline int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Threads a loop started here would get: 1 inside a parallel region (one level of
/// threading), else num_threads().
inline int available_threads() {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

/// Sets the thread count for this thread's subsequent parallel regions.
inline void set_num_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n > 0 ? n : 1);
#else
  (void)n;
#endif
}

/// Calls body(first, last) on contiguous pieces of [begin, end): one per thread (a static
/// schedule), or the whole range at once when serial: when the range is smaller than `grain`
/// iterations (threads cost more than they save on small loops) or when already inside a
/// parallel region (exactly one level of threading). A plain loop inside body, over local
/// copies of what it reads, vectorises; a per-index callback reaching captures through
/// references often does not (a store might alias them).
template <class Body>
void parallel_for_ranges(std::size_t begin, std::size_t end, std::size_t grain, Body&& body) {
  if (end <= begin) return;
#ifdef _OPENMP
  if (end - begin >= 2 * grain && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel
    {
      const std::size_t threads = std::size_t(omp_get_num_threads()), t = std::size_t(omp_get_thread_num());
      const std::size_t size = end - begin, first = begin + size * t / threads, last = begin + size * (t + 1) / threads;
      if (first < last) body(first, last);
    }
    return;
  }
#else
  (void)grain;
#endif
  body(begin, end);
}

/// Calls body(i) for i in [begin, end), each thread over its piece from parallel_for_ranges
/// (so the same rules: serial below `grain` iterations or inside a parallel region).
template <class Body>
void parallel_for(std::size_t begin, std::size_t end, std::size_t grain, Body&& body) {
  parallel_for_ranges(begin, end, grain, [&](std::size_t first, std::size_t last) {
    for (std::size_t i = first; i < last; ++i) body(i);
  });
}

/// out[i] = f(in[i]...) for i < n, threaded, for any number of same-sized inputs: the
/// elementwise loop of the pointwise ops, written once so that it vectorises.
template <class T, class F, class... In>
void map_elements(std::size_t n, T* out, F f, const In*... in) {
  parallel_for_ranges(0, n, std::size_t(1) << 14, [&](std::size_t first, std::size_t last) {
    const F local = f;  // a local copy: its captures cannot alias `out`, so they stay in registers
    T* const o = out;
#pragma omp simd  // (at -O2 too, where GCC's cheap cost model leaves most such loops scalar)
    for (std::size_t i = first; i < last; ++i) o[i] = local(in[i]...);
  });
}

}  // namespace tessera
