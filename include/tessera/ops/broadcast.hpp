// tessera/ops/broadcast.hpp — NumPy/PyTorch broadcasting, in one place.
// Shapes are aligned at their last axis; an axis of size 1 stretches to match. So a
// per-channel vector for NCHW data has shape (C, 1, 1), a per-feature vector for (N, F) data
// has shape (F). Every elementwise op's backward reduces its gradient with reduce_to_shape.
#pragma once

#include <array>
#include <cstddef>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"

namespace tessera {
namespace detail {

using Strides = std::array<std::size_t, Shape::max_rank>;

/// Strides of `s` seen as a tensor of rank `rank` (leading axes prepended), with stride 0 on
/// every axis of size 1 so that one element serves the whole broadcast axis.
inline Strides broadcast_strides(const Shape& s, std::size_t rank) {
  Strides strides{};
  std::size_t stride = 1;
  for (std::size_t k = 0; k < s.size(); ++k) {
    const std::size_t axis = s.size() - 1 - k;
    strides[rank - 1 - k] = s[axis] == 1 ? 0 : stride;
    stride *= s[axis];
  }
  return strides;
}

/// Calls fn(i, ia, ib) for every flat index i of `out` with the matching flat offsets into
/// a and b. Row-major order, so the result never depends on threads.
template <class Fn>
void for_each_broadcast(const Shape& out, const Strides& sa, const Strides& sb, Fn&& fn) {
  const std::size_t rank = out.size(), n = out.numel();
  if (n == 0) return;
  if (rank == 0) {
    fn(0, 0, 0);
    return;
  }
  std::array<std::size_t, Shape::max_rank> index{};
  const std::size_t inner = out[rank - 1], ia_step = sa[rank - 1], ib_step = sb[rank - 1];
  std::size_t ia = 0, ib = 0;
  for (std::size_t i = 0; i < n; i += inner) {
    for (std::size_t j = 0; j < inner; ++j) fn(i + j, ia + j * ia_step, ib + j * ib_step);
    // advance the multi-index over the outer axes, carrying like an odometer
    for (std::size_t axis = rank - 1; axis-- > 0;) {
      ia += sa[axis];
      ib += sb[axis];
      if (++index[axis] < out[axis]) break;
      ia -= sa[axis] * out[axis];
      ib -= sb[axis] * out[axis];
      index[axis] = 0;
    }
  }
}

}  // namespace detail

/// The broadcast result shape of a and b, or an Error naming `op` and both shapes.
inline Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  const std::size_t rank = a.size() > b.size() ? a.size() : b.size();
  Shape out;
  for (std::size_t k = 0; k < rank; ++k) out.push_back(1);
  for (std::size_t k = 0; k < rank; ++k) {
    const std::size_t da = k < a.size() ? a[a.size() - 1 - k] : 1;
    const std::size_t db = k < b.size() ? b[b.size() - 1 - k] : 1;
    TESSERA_CHECK(da == db || da == 1 || db == 1,
                  op << ": shapes " << a << " and " << b << " cannot be broadcast together");
    out[rank - 1 - k] = da == 1 ? db : da;
  }
  return out;
}

/// out[i] = f(a[...], b[...]) over the broadcast shape.
template <class T, class F>
Tensor<T> broadcast_binary(const char* op, const Tensor<T>& a, const Tensor<T>& b, F&& f) {
  const Shape shape = broadcast_shape(op, a.shape(), b.shape());
  Tensor<T> out = Tensor<T>::empty(shape);
  T* o = out.data();
  const T* pa = a.data();
  const T* pb = b.data();
  const std::size_t n = out.size();
  if (a.size() == n && b.size() == n) {  // same shape: the common case, vectorised
    map_elements(n, o, f, pa, pb);
  } else if (b.size() == 1 && a.size() == n) {
    map_elements(n, o, [f, s = pb[0]](T u) { return f(u, s); }, pa);
  } else if (a.size() == 1 && b.size() == n) {
    map_elements(n, o, [f, s = pa[0]](T v) { return f(s, v); }, pb);
  } else {
    const auto sa = detail::broadcast_strides(a.shape(), shape.size());
    const auto sb = detail::broadcast_strides(b.shape(), shape.size());
    detail::for_each_broadcast(shape, sa, sb,
                               [&](std::size_t i, std::size_t ia, std::size_t ib) { o[i] = f(pa[ia], pb[ib]); });
  }
  return out;
}

/// Sums `grad` over the axes along which a tensor of shape `target` was broadcast to reach
/// grad's shape: the adjoint of broadcasting.
template <class T>
Tensor<T> reduce_to_shape(const Tensor<T>& grad, const Shape& target) {
  if (grad.shape() == target) return grad;
  const Shape check = broadcast_shape("reduce_to_shape", grad.shape(), target);
  TESSERA_CHECK(check == grad.shape(), "reduce_to_shape: " << target << " does not broadcast to " << grad.shape());
  Tensor<T> out = Tensor<T>::zeros(target);
  T* o = out.data();
  const T* g = grad.data();
  const auto st = detail::broadcast_strides(target, grad.dim());
  detail::for_each_broadcast(grad.shape(), st, st, [&](std::size_t i, std::size_t it, std::size_t) { o[it] += g[i]; });
  return out;
}

/// Copies `t` stretched to `shape` (the forward of broadcasting, used by sum's backward).
template <class T>
Tensor<T> broadcast_to(const Tensor<T>& t, const Shape& shape) {
  TESSERA_CHECK(broadcast_shape("broadcast_to", t.shape(), shape) == shape,
                "broadcast_to: " << t.shape() << " does not broadcast to " << shape);
  Tensor<T> out = Tensor<T>::empty(shape);
  T* o = out.data();
  const T* src = t.data();
  const auto st = detail::broadcast_strides(t.shape(), shape.size());
  detail::for_each_broadcast(shape, st, st, [&](std::size_t i, std::size_t it, std::size_t) { o[i] = src[it]; });
  return out;
}

}  // namespace tessera
