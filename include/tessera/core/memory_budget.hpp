// tessera/core/memory_budget.hpp — the memory budget: every tensor allocation is refused, with
// an Error saying what was asked, what is in use and how to change the budget, when it would
// take tessera's live tensors plus the allocator's cache past the budget — instead of growing
// until the kernel's OOM killer or a swap storm ends the process. Before refusing, the cache is
// given back to the system and the request tried once more.
//
// The budget is TESSERA_MEMORY_LIMIT when set ("3G", "512M", "1.5G", "1048576"; "0" or "none":
// no budget), else 80 % of the memory available when the process starts: MemAvailable from
// /proc/meminfo, or what the process's cgroup (v2 memory.max, v1 memory.limit_in_bytes) has
// left, whichever is less. The rest is headroom for what is not a tensor (Eigen's and the
// kernels' scratch, decoded images, the program).
#pragma once

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>

#include "allocator.hpp"
#include "error.hpp"

namespace tessera {

namespace detail {
/// "3G", "512M", "1.5g", "64K", "1048576" (bytes) → bytes; "0" or "none" → 0 (no budget).
/// An Error naming `what` for anything else.
inline std::size_t parse_memory_size(const std::string& text, const std::string& what) {
  std::string s;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) s += char(std::toupper(static_cast<unsigned char>(c)));
  if (s == "NONE") return 0;
  std::size_t unit = 1, digits = s.size();
  if (!s.empty()) {
    const char last = s.back() == 'B' && s.size() > 1 ? s[s.size() - 2] : s.back();
    const std::size_t suffix = s.back() == 'B' && s.size() > 1 ? 2 : 1;
    const std::string units = "KMGT";
    if (const auto at = units.find(last); at != std::string::npos) unit = std::size_t(1) << (10 * (at + 1)), digits = s.size() - suffix;
  }
  const std::string number = s.substr(0, digits);
  char* end = nullptr;
  const double value = number.empty() ? -1 : std::strtod(number.c_str(), &end);
  TESSERA_CHECK(!number.empty() && end == number.c_str() + number.size() && std::isfinite(value) && value >= 0 &&
                    value * double(unit) < 1.8e19,
                what << ": expected a size such as 3G, 512M or 1048576 (bytes), or none; got '" << text << "'");
  return std::size_t(value * double(unit));
}

/// 1536 MB → "1.5 GB": bytes in the largest unit that keeps a number ≥ 1.
inline std::string memory_text(double bytes) {
  const char* units[] = {"bytes", "KB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (bytes >= 1024 && u < 5) bytes /= 1024, ++u;
  std::ostringstream os;
  os.precision(u == 0 ? 0 : bytes < 10 ? 2 : bytes < 100 ? 1 : 0);
  os << std::fixed << bytes << ' ' << units[u];
  return os.str();
}

/// A number from the first line of a file (a cgroup's limit or usage), or none.
inline bool read_number_file(const char* path, double& value) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word) || word == "max") return false;
  char* end = nullptr;
  value = std::strtod(word.c_str(), &end);
  return end != word.c_str() && value > 0 && value < 1e18;
}

/// The memory this process may still take: the machine's MemAvailable, or less if its cgroup
/// has less left. 0 where neither can be read.
inline double available_memory() {
  double available = 0;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string key; meminfo >> key;) {
    double kb = 0;
    std::string unit;
    meminfo >> kb >> unit;
    if (key == "MemAvailable:") available = kb * 1024;
  }
  double limit = 0, usage = 0;
  if (read_number_file("/sys/fs/cgroup/memory.max", limit) && read_number_file("/sys/fs/cgroup/memory.current", usage)) {
    const double left = std::max(0.0, limit - usage);
    available = available > 0 ? std::min(available, left) : left;
  } else if (read_number_file("/sys/fs/cgroup/memory/memory.limit_in_bytes", limit) &&
             read_number_file("/sys/fs/cgroup/memory/memory.usage_in_bytes", usage)) {
    const double left = std::max(0.0, limit - usage);
    available = available > 0 ? std::min(available, left) : left;
  }
  return available;
}
}  // namespace detail

/// The process's tensor memory against its budget. One instance (memory_budget()).
class MemoryBudget {
 public:
  /// Bytes of tensors alive now.
  std::size_t in_use() const { return in_use_.load(std::memory_order_relaxed); }
  /// The budget in bytes; 0: none.
  std::size_t limit() const { return limit_.load(std::memory_order_relaxed); }
  /// Where the budget came from, for messages: "TESSERA_MEMORY_LIMIT=3G", "80 % of the 11.7 GB
  /// available at start", "set_memory_budget".
  std::string source() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return source_;
  }
  /// Replaces the budget (0: none).
  void set_limit(std::size_t bytes, std::string source = "set_memory_budget") {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_.store(bytes, std::memory_order_relaxed);
    source_ = std::move(source);
  }

  /// Counts `bytes` of a new tensor in, or throws an Error (what(): the tensor, as `describe`
  /// names it) when they would take live plus cached memory past the budget even after the
  /// cache is released.
  template <class Describe>
  void reserve(std::size_t bytes, Describe&& describe) {
    const std::size_t before = in_use_.fetch_add(bytes, std::memory_order_relaxed);
    const std::size_t budget = limit();
    if (budget == 0 || fits(before, bytes, cached_memory(), budget)) return;
    release_cached_memory();  // the cache first: what it holds is not in use
    if (fits(before, bytes, cached_memory(), budget)) return;
    in_use_.fetch_sub(bytes, std::memory_order_relaxed);
    TESSERA_FAIL("out of memory budget: " << describe() << " needs " << detail::memory_text(double(bytes)) << ", with "
                                          << detail::memory_text(double(before)) << " in use and a budget of "
                                          << detail::memory_text(double(budget)) << " (" << source()
                                          << "); use smaller batches or images, or set TESSERA_MEMORY_LIMIT (e.g. "
                                          << suggestion(before + bytes) << ", or none)");
  }
  /// Counts a freed tensor's bytes out.
  void release(std::size_t bytes) { in_use_.fetch_sub(bytes, std::memory_order_relaxed); }

  /// The budget from the environment or the machine, as at start (the first tensor).
  static MemoryBudget& instance() {
    static MemoryBudget* const budget = [] {
      auto* b = new MemoryBudget;  // never destroyed: tensors in static objects may outlive it
      if (const char* setting = std::getenv("TESSERA_MEMORY_LIMIT")) {
        b->limit_ = detail::parse_memory_size(setting, "TESSERA_MEMORY_LIMIT");
        b->source_ = std::string("TESSERA_MEMORY_LIMIT=") + setting;
      } else if (const double available = detail::available_memory(); available > 0) {
        b->limit_ = std::size_t(0.8 * available);
        b->source_ = "80 % of the " + detail::memory_text(available) + " available at start";
      }
      return b;
    }();
    return *budget;
  }

 private:
  MemoryBudget() = default;
  static bool fits(std::size_t in_use, std::size_t bytes, std::size_t cached, std::size_t budget) {
    return bytes <= budget && in_use <= budget - bytes && cached <= budget - bytes - in_use;
  }
  static std::string suggestion(std::size_t needed) {
    const double gb = std::ceil(double(needed) * 1.25 / double(1u << 30));
    return std::to_string(static_cast<long long>(std::max(1.0, gb))) + "G";
  }

  std::atomic<std::size_t> in_use_{0}, limit_{0};
  mutable std::mutex mutex_;
  std::string source_ = "no budget";
};

/// The process's memory budget (read from TESSERA_MEMORY_LIMIT or the machine at first use).
inline MemoryBudget& memory_budget() { return MemoryBudget::instance(); }
/// Sets the budget in bytes (0: none), as TESSERA_MEMORY_LIMIT does at start.
inline void set_memory_budget(std::size_t bytes) { memory_budget().set_limit(bytes); }

}  // namespace tessera
