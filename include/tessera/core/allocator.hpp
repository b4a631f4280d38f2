// tessera/core/allocator.hpp — the single place where tensor memory is obtained and released.
// A buffer pool (or an instrumented allocator in tests) replaces the default by set_allocator.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace tessera {

/// Interface for tensor memory. Implementations must be thread-safe.
class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* p, std::size_t bytes) = 0;
};

/// Default: 64-byte aligned blocks (a cache line, and an AVX-512 vector) from the C++ runtime.
class AlignedAllocator final : public Allocator {
 public:
  static constexpr std::size_t alignment = 64;
  void* allocate(std::size_t bytes) override {
    return ::operator new(bytes == 0 ? alignment : bytes, std::align_val_t(alignment));
  }
  void deallocate(void* p, std::size_t) override {
    ::operator delete(p, std::align_val_t(alignment));
  }
};

namespace detail {
inline Allocator& default_allocator() {
  static AlignedAllocator instance;
  return instance;
}
inline std::atomic<Allocator*>& current_allocator() {
  static std::atomic<Allocator*> current{&default_allocator()};
  return current;
}
}  // namespace detail

/// The allocator used for new tensors. Memory is always returned to the allocator that gave it.
inline Allocator& allocator() { return *detail::current_allocator().load(); }

/// Installs `a` (nullptr restores the default); returns the previous one. `a` must outlive
/// every tensor it allocated.
inline Allocator* set_allocator(Allocator* a) {
  return detail::current_allocator().exchange(a ? a : &detail::default_allocator());
}

}  // namespace tessera
