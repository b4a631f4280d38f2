// tessera/core/tensor.hpp — Tensor<T>: an owning, contiguous, row-major n-d array.
// Images are NCHW. Copying a tensor copies its data (value semantics, like an Eigen matrix);
// moving is free.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <new>
#include <sstream>
#include <ostream>
#include <type_traits>
#include <utility>
#include <vector>

#include "eigen.hpp"

#include "allocator.hpp"
#include "error.hpp"
#include "memory_budget.hpp"
#include "rng.hpp"
#include "shape.hpp"

namespace tessera {

template <class T>
class Tensor {
  static_assert(std::is_floating_point_v<T>, "Tensor<T>: T must be float or double");

 public:
  using value_type = T;
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using MatrixMap = Eigen::Map<Matrix, Eigen::Unaligned>;
  using ConstMatrixMap = Eigen::Map<const Matrix, Eigen::Unaligned>;
  using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Unaligned>;
  using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>, Eigen::Unaligned>;

  /// An undefined tensor: no storage, size() == 0.
  Tensor() = default;

  /// A zero-filled tensor of the given shape.
  explicit Tensor(const Shape& shape) : Tensor(shape, uninitialized) { fill(T(0)); }

  /// A tensor with the given values (row-major); values.size() must equal shape.numel().
  Tensor(const Shape& shape, const std::vector<T>& values) : Tensor(shape, uninitialized) {
    TESSERA_CHECK(values.size() == size_, "Tensor: " << values.size() << " values for shape " << shape
                                                     << " (" << size_ << " elements)");
    std::copy(values.begin(), values.end(), data_);
  }

  Tensor(const Tensor& other) : Tensor(other.shape_, uninitialized) {
    if (size_) std::memcpy(data_, other.data_, size_ * sizeof(T));
  }
  Tensor(Tensor&& other) noexcept { swap(other); }
  Tensor& operator=(const Tensor& other) {
    if (this != &other) {
      Tensor copy(other);
      swap(copy);
    }
    return *this;
  }
  Tensor& operator=(Tensor&& other) noexcept {
    Tensor moved(std::move(other));
    swap(moved);
    return *this;
  }
  ~Tensor() { release(); }

  void swap(Tensor& other) noexcept {
    std::swap(shape_, other.shape_);
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(defined_, other.defined_);
    std::swap(allocator_, other.allocator_);
  }

  // ---- factories -------------------------------------------------------------------------
  /// Uninitialised storage, for ops that overwrite every element.
  static Tensor empty(const Shape& shape) { return Tensor(shape, uninitialized); }
  static Tensor zeros(const Shape& shape) { return Tensor(shape); }
  static Tensor ones(const Shape& shape) { return full(shape, T(1)); }
  static Tensor full(const Shape& shape, T value) {
    Tensor t(shape, uninitialized);
    t.fill(value);
    return t;
  }
  /// A rank-0 tensor holding one value.
  static Tensor scalar(T value) { return full(Shape{}, value); }
  /// Normal samples N(mean, stddev²) drawn in row-major order from `rng`.
  static Tensor randn(const Shape& shape, Rng& rng, T mean = T(0), T stddev = T(1)) {
    Tensor t(shape, uninitialized);
    for (std::size_t i = 0; i < t.size_; ++i) t.data_[i] = static_cast<T>(rng.normal(mean, stddev));
    return t;
  }
  /// Uniform samples in [lo, hi) drawn in row-major order from `rng`.
  static Tensor uniform(const Shape& shape, Rng& rng, T lo = T(0), T hi = T(1)) {
    Tensor t(shape, uninitialized);
    for (std::size_t i = 0; i < t.size_; ++i) t.data_[i] = static_cast<T>(rng.uniform(lo, hi));
    return t;
  }

  // ---- shape and data ----------------------------------------------------------------------
  const Shape& shape() const { return shape_; }
  std::size_t dim() const { return shape_.size(); }      ///< number of axes
  std::size_t size() const { return size_; }             ///< number of elements
  std::size_t size(std::size_t axis) const {
    TESSERA_CHECK(axis < shape_.size(), "Tensor::size: axis " << axis << " out of range for shape " << shape_);
    return shape_[axis];
  }
  bool defined() const { return defined_; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

  /// Element at a multi-index, bounds-checked: t.at(n, c, h, w).
  template <class... Index>
  T& at(Index... index) {
    return data_[offset({static_cast<std::size_t>(index)...})];
  }
  template <class... Index>
  const T& at(Index... index) const {
    return data_[offset({static_cast<std::size_t>(index)...})];
  }

  /// The single value of a one-element tensor.
  T item() const {
    TESSERA_CHECK(size_ == 1, "Tensor::item: tensor of shape " << shape_ << " has " << size_ << " elements, not 1");
    return data_[0];
  }

  /// The same data under another shape with the same number of elements.
  Tensor reshape(const Shape& shape) const& { return Tensor(*this).reshape(shape); }
  Tensor reshape(const Shape& shape) && {
    TESSERA_CHECK(shape.numel() == size_, "reshape: cannot view shape " << shape_ << " as " << shape);
    shape_ = shape;
    return std::move(*this);
  }

  /// Converts element type (e.g. float weights to double for a gradient check).
  template <class U>
  Tensor<U> cast() const {
    Tensor<U> out = Tensor<U>::empty(shape_);
    for (std::size_t i = 0; i < size_; ++i) out[i] = static_cast<U>(data_[i]);
    return out;
  }

  std::vector<T> to_vector() const { return {begin(), end()}; }

  // ---- Eigen views -------------------------------------------------------------------------
  /// The data as a rows × cols row-major matrix (rows·cols must equal size()).
  MatrixMap matrix(std::size_t rows, std::size_t cols) {
    check_matrix(rows, cols);
    return MatrixMap(data_, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  }
  ConstMatrixMap matrix(std::size_t rows, std::size_t cols) const {
    check_matrix(rows, cols);
    return ConstMatrixMap(data_, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  }
  /// The data as a flat Eigen array, for elementwise expressions.
  ArrayMap array() { return ArrayMap(data_, static_cast<Eigen::Index>(size_)); }
  ConstArrayMap array() const { return ConstArrayMap(data_, static_cast<Eigen::Index>(size_)); }

  // ---- in-place arithmetic (same shape only) -------------------------------------------------
  Tensor& fill(T value) {
    std::fill(data_, data_ + size_, value);
    return *this;
  }
  Tensor& operator+=(const Tensor& other) {
    check_same_shape("Tensor::operator+=", other);
    array() += other.array();
    return *this;
  }
  Tensor& operator-=(const Tensor& other) {
    check_same_shape("Tensor::operator-=", other);
    array() -= other.array();
    return *this;
  }
  Tensor& operator*=(T s) {
    array() *= s;
    return *this;
  }

  void check_same_shape(const char* op, const Tensor& other) const {
    TESSERA_CHECK(shape_ == other.shape_, op << ": shapes " << shape_ << " and " << other.shape_ << " differ");
  }

  /// Prints shape and values, e.g. Tensor(2, 2) [1, 2, 3, 4]; long tensors are elided.
  friend std::ostream& operator<<(std::ostream& os, const Tensor& t) {
    os << "Tensor" << t.shape_ << " [";
    const std::size_t shown = std::min<std::size_t>(t.size_, 16);
    for (std::size_t i = 0; i < shown; ++i) os << (i ? ", " : "") << t.data_[i];
    if (shown < t.size_) os << ", ... (" << t.size_ << " values)";
    return os << ']';
  }

 private:
  struct Uninitialized {};
  static constexpr Uninitialized uninitialized{};

  // Every tensor's memory is counted against the memory budget (memory_budget.hpp) before it
  // is asked for; a shape too large to count is an Error before that.
  Tensor(const Shape& shape, Uninitialized) : shape_(shape), size_(shape.numel()), defined_(true) {
    if (size_ == 0) return;
    TESSERA_CHECK(size_ <= std::numeric_limits<std::size_t>::max() / sizeof(T),
                  "Tensor: shape " << shape << " has " << size_ << " elements, more than memory can address");
    const std::size_t bytes = size_ * sizeof(T);
    memory_budget().reserve(bytes, [&] {
      std::ostringstream os;
      os << "a tensor of shape " << shape_ << " (" << (sizeof(T) == 4 ? "float" : "double") << ")";
      return os.str();
    });
    allocator_ = &allocator();
    try {
      data_ = static_cast<T*>(allocator_->allocate(bytes));
    } catch (const std::bad_alloc&) {
      memory_budget().release(bytes);
      TESSERA_FAIL("out of memory: the system refused " << detail::memory_text(double(bytes)) << " for a tensor of shape "
                                                        << shape_ << " (" << detail::memory_text(double(memory_budget().in_use()))
                                                        << " in use); set TESSERA_MEMORY_LIMIT lower to be told earlier");
    }
  }

  void release() noexcept {
    if (data_) {
      allocator_->deallocate(data_, size_ * sizeof(T));
      memory_budget().release(size_ * sizeof(T));
    }
    data_ = nullptr;
  }

  std::size_t offset(std::initializer_list<std::size_t> index) const {
    TESSERA_CHECK(index.size() == shape_.size(),
                  "Tensor::at: " << index.size() << " indices for shape " << shape_);
    std::size_t flat = 0, axis = 0;
    for (std::size_t i : index) {
      TESSERA_CHECK(i < shape_[axis], "Tensor::at: index " << i << " out of range for axis " << axis
                                                           << " of shape " << shape_);
      flat = flat * shape_[axis++] + i;
    }
    return flat;
  }

  void check_matrix(std::size_t rows, std::size_t cols) const {
    TESSERA_CHECK(rows * cols == size_, "Tensor::matrix: " << rows << "x" << cols << " view of shape " << shape_);
  }

  Shape shape_;
  T* data_ = nullptr;
  std::size_t size_ = 0;
  bool defined_ = false;
  Allocator* allocator_ = nullptr;  // memory goes back to the allocator that gave it
};

}  // namespace tessera
