// tessera/core/allocator.hpp — the single place where tensor memory is obtained and released.
// The default is a CachingAllocator over 64-byte aligned blocks (huge pages from 2 MB on);
// set_allocator replaces it (an instrumented allocator in tests, your own pool).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string_view>
#include <unordered_map>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

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

/// Blocks of a huge page (2 MB) or more each get a mapping of their own, aligned to a huge
/// page and advised to the kernel as transparent huge pages (Linux); smaller blocks come from
/// AlignedAllocator. A training step streams through activations of 2-16 MB: in 4 KB pages
/// every pass walks the page tables each 4 KB, which a hypervisor's nested paging makes dear
/// (measured: dcgan64 +2-7 % steps/s). The mapping runs on to the block's last whole huge page
/// when that adds at most an eighth; otherwise its tail stays in small pages.
class HugePageAllocator final : public Allocator {
 public:
  static constexpr std::size_t huge_page = std::size_t(2) << 20;

  /// Bytes mapped for a block of `bytes`: 0 for blocks that come from AlignedAllocator.
  static std::size_t mapping_size(std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes < huge_page) return 0;
    const std::size_t whole = round_up(bytes, huge_page);
    return whole - bytes <= bytes / 8 ? whole : round_up(bytes, std::size_t(sysconf(_SC_PAGESIZE)));
#else
    (void)bytes;
    return 0;
#endif
  }

  void* allocate(std::size_t bytes) override {
    const std::size_t size = mapping_size(bytes);
    if (size == 0) return small_.allocate(bytes);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // map a huge page more than needed, then unmap what lies before the first huge-page
    // boundary and after the block
    char* const raw = static_cast<char*>(mmap(nullptr, size + huge_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (raw == MAP_FAILED) throw std::bad_alloc();
    char* const start = raw + (huge_page - reinterpret_cast<std::uintptr_t>(raw) % huge_page) % huge_page;
    if (start > raw) munmap(raw, std::size_t(start - raw));
    munmap(start + size, std::size_t(raw + huge_page - start));
    madvise(start, size, MADV_HUGEPAGE);  // advice: without transparent huge pages, small pages
    return start;
#else
    return nullptr;
#endif
  }
  void deallocate(void* p, std::size_t bytes) override {
    const std::size_t size = mapping_size(bytes);
    if (size == 0) return small_.deallocate(p, bytes);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    munmap(p, size);
#endif
  }

 private:
  static std::size_t round_up(std::size_t n, std::size_t step) { return (n + step - 1) / step * step; }
  AlignedAllocator small_;
};

/// Keeps freed blocks and hands them out again, binned by size class. A training step
/// allocates the same tensors every time, so after the first step it stops asking the system
/// for memory: no fresh pages to fault in and zero (PyTorch's CPU allocator returns them and
/// spends a quarter of a DCGAN step in the kernel). Sizes round up to an eighth of their power
/// of two (at most 12.5 % waste); cached blocks go back to the system only on release_cached().
class CachingAllocator final : public Allocator {
 public:
  struct Stats {
    std::size_t hits = 0, misses = 0, cached_bytes = 0;
  };
  CachingAllocator() = default;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;
  ~CachingAllocator() override { release_cached(); }

  void* allocate(std::size_t bytes) override {
    const std::size_t size = size_class(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        stats_.cached_bytes -= size;
        cached_bytes_.store(stats_.cached_bytes, std::memory_order_relaxed);
        ++stats_.hits;
        return p;
      }
      ++stats_.misses;
    }
    return upstream_.allocate(size);
  }
  void deallocate(void* p, std::size_t bytes) override {
    const std::size_t size = size_class(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    free_[size].push_back(p);
    stats_.cached_bytes += size;
    cached_bytes_.store(stats_.cached_bytes, std::memory_order_relaxed);
  }

  /// Returns every cached block to the system (tensors alive keep theirs).
  void release_cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) upstream_.deallocate(p, size);
    free_.clear();
    stats_.cached_bytes = 0;
    cached_bytes_.store(0, std::memory_order_relaxed);
  }
  Stats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  /// Bytes held in the cache, read without waiting for the lock (the memory budget's view).
  std::size_t cached_bytes() const { return cached_bytes_.load(std::memory_order_relaxed); }

  /// Multiples of 64 bytes up to 512; above, multiples of an eighth of the size's power of
  /// two (1024 → 1024, 1025 → 1152, 100 000 → 106 496).
  static std::size_t size_class(std::size_t bytes) {
    if (bytes <= 512) return bytes <= 64 ? 64 : (bytes + 63) / 64 * 64;
    std::size_t power = 512;
    while (power * 2 <= bytes) power *= 2;
    const std::size_t step = power / 8;
    return (bytes + step - 1) / step * step;
  }

 private:
  HugePageAllocator upstream_;
  mutable std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  Stats stats_;
  std::atomic<std::size_t> cached_bytes_{0};
};

// Under AddressSanitizer tensors come straight from the system, so that a use after free is
// caught rather than served from the cache. TESSERA_NO_CACHING_ALLOCATOR does the same.
#if defined(__SANITIZE_ADDRESS__) || defined(TESSERA_NO_CACHING_ALLOCATOR)
#define TESSERA_CACHING_ALLOCATOR_DEFAULT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TESSERA_CACHING_ALLOCATOR_DEFAULT 0
#endif
#endif
#ifndef TESSERA_CACHING_ALLOCATOR_DEFAULT
#define TESSERA_CACHING_ALLOCATOR_DEFAULT 1
#endif

namespace detail {
/// Eigen's matrix products malloc their packing buffers (up to a few MB) on every call. By
/// default glibc maps blocks that large afresh each time and returns freed heap to the system,
/// so every product faulted its buffers in again: 33 000 page faults per DCGAN-64 step. Kept
/// in the heap (as the GLIBC_TUNABLES of PyTorch's best environment do), they are reused.
inline void keep_freed_heap_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // blocks below 32 MB come from the heap...
  mallopt(M_TRIM_THRESHOLD, 1 << 30);   // ...which keeps up to 1 GB freed at its top...
  mallopt(M_TOP_PAD, 256 << 20);        // ...and grows 256 MB at a time (the one that stops the faults)
#endif
}

inline Allocator& default_allocator() {
  // Never destroyed: tensors in other static objects may be freed after it would have been.
  // TESSERA_CACHING_ALLOCATOR=0 in the environment turns caching off, and leaves glibc's
  // malloc settings alone (valgrind, measurements).
  static Allocator* instance = [] () -> Allocator* {
    const char* setting = std::getenv("TESSERA_CACHING_ALLOCATOR");
    const bool caching = setting ? std::string_view(setting) != "0" : TESSERA_CACHING_ALLOCATOR_DEFAULT;
    if (!caching) return new AlignedAllocator;
    keep_freed_heap_memory();
    return new CachingAllocator;
  }();
  return *instance;
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

/// Gives the default allocator's cached blocks back to the system (say, after training and
/// before something memory-hungry); nothing to do when the default does not cache.
inline void release_cached_memory() {
  if (auto* caching = dynamic_cast<CachingAllocator*>(&detail::default_allocator())) caching->release_cached();
}

/// Bytes the default allocator holds cached for reuse (0 when it does not cache).
inline std::size_t cached_memory() {
  static CachingAllocator* const caching = dynamic_cast<CachingAllocator*>(&detail::default_allocator());
  return caching ? caching->cached_bytes() : 0;
}

}  // namespace tessera
