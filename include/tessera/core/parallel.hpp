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

/// Sets the thread count for this thread's subsequent parallel regions.
inline void set_num_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n > 0 ? n : 1);
#else
  (void)n;
#endif
}

/// Calls body(i) for i in [begin, end). Runs serially when the range is smaller than
/// `grain` iterations (threads cost more than they save on small loops) or when already
/// inside a parallel region (exactly one level of threading).
template <class Body>
void parallel_for(std::size_t begin, std::size_t end, std::size_t grain, Body&& body) {
#ifdef _OPENMP
  if (end > begin && end - begin >= 2 * grain && !omp_in_parallel() && omp_get_max_threads() > 1) {
    const long long first = static_cast<long long>(begin), last = static_cast<long long>(end);
#pragma omp parallel for schedule(static)
    for (long long i = first; i < last; ++i) body(static_cast<std::size_t>(i));
    return;
  }
#else
  (void)grain;
#endif
  for (std::size_t i = begin; i < end; ++i) body(i);
}

}  // namespace tessera
