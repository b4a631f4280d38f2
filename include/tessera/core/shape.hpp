// tessera/core/shape.hpp — the sizes of a tensor's axes, e.g. (64, 3, 32, 32).
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <ostream>
#include <vector>

#include "error.hpp"

namespace tessera {

/// A small fixed-capacity vector of axis sizes. Stored inline (no heap allocation),
/// since every op builds a few of these.
class Shape {
 public:
  static constexpr std::size_t max_rank = 8;

  Shape() = default;
  Shape(std::initializer_list<std::size_t> dims) { assign(dims.begin(), dims.end()); }
  explicit Shape(const std::vector<std::size_t>& dims) { assign(dims.begin(), dims.end()); }

  std::size_t size() const { return rank_; }   ///< number of axes
  bool empty() const { return rank_ == 0; }
  std::size_t operator[](std::size_t axis) const { return dims_[axis]; }
  std::size_t& operator[](std::size_t axis) { return dims_[axis]; }
  const std::size_t* begin() const { return dims_.data(); }
  const std::size_t* end() const { return dims_.data() + rank_; }
  std::size_t back() const { return dims_[rank_ - 1]; }

  /// Product of the sizes: the number of elements (1 for a rank-0 scalar). An Error where the
  /// product overflows (a shape no memory could hold).
  std::size_t numel() const { return numel(0, rank_); }

  void push_back(std::size_t d) {
    TESSERA_CHECK(rank_ < max_rank, "Shape: more than " << max_rank << " axes");
    dims_[rank_++] = d;
  }

  /// Product of sizes over axes [first, last).
  std::size_t numel(std::size_t first, std::size_t last) const {
    std::size_t n = 1;
    for (std::size_t i = first; i < last && i < rank_; ++i)
      TESSERA_CHECK(!__builtin_mul_overflow(n, dims_[i], &n), "Shape " << *this << ": the element count overflows");
    return n;
  }

  std::vector<std::size_t> to_vector() const { return {begin(), end()}; }

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (std::size_t i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

  /// Prints as PyTorch's tuple notation: (64, 3, 32, 32); a 1-axis shape prints (5).
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) {
    os << '(';
    for (std::size_t i = 0; i < s.rank_; ++i) os << (i ? ", " : "") << s.dims_[i];
    return os << ')';
  }

 private:
  template <class It>
  void assign(It first, It last) {
    for (; first != last; ++first) push_back(static_cast<std::size_t>(*first));
  }

  std::array<std::size_t, max_rank> dims_{};
  std::size_t rank_ = 0;
};

}  // namespace tessera
