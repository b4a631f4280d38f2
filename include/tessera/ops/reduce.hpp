// tessera/ops/reduce.hpp — sum and mean, over everything or over given axes.
#pragma once

#include <vector>

#include "../autograd/var.hpp"
#include "broadcast.hpp"

namespace tessera {
namespace detail {

/// The input shape with each reduced axis set to 1 (negative axes count from the end).
inline Shape reduced_shape(const char* op, const Shape& in, const std::vector<int>& axes, std::vector<bool>& reduced) {
  reduced.assign(in.size(), false);
  for (int a : axes) {
    const int rank = static_cast<int>(in.size());
    TESSERA_CHECK(a >= -rank && a < rank, op << ": axis " << a << " out of range for shape " << in);
    const std::size_t axis = static_cast<std::size_t>(a < 0 ? a + rank : a);
    TESSERA_CHECK(!reduced[axis], op << ": axis " << a << " given twice");
    reduced[axis] = true;
  }
  Shape keep = in;
  for (std::size_t k = 0; k < in.size(); ++k)
    if (reduced[k]) keep[k] = 1;
  return keep;
}

/// scale · Σ over `axes`; the gradient is the upstream gradient broadcast back, times scale.
template <class T>
Var<T> scaled_sum(const char* op, const Var<T>& x, const std::vector<int>& axes, bool keepdim, T scale) {
  std::vector<bool> reduced;
  const Shape keep = reduced_shape(op, x.shape(), axes, reduced);
  Shape out_shape;
  for (std::size_t k = 0; k < keep.size(); ++k)
    if (keepdim || !reduced[k]) out_shape.push_back(keep[k]);

  Tensor<T> out = keep.numel() == 1 ? Tensor<T>::full(keep, x.value().array().sum())
                                    : reduce_to_shape(x.value(), keep);
  if (scale != T(1)) out *= scale;
  out = std::move(out).reshape(out_shape);
  return make_op_result(op, std::move(out), {&x}, [x, keep, scale](const Tensor<T>& g, const Tensor<T>&) {
    Tensor<T> gx = broadcast_to(g.reshape(keep), x.shape());
    if (scale != T(1)) gx *= scale;
    accumulate_grad(x, std::move(gx));
  });
}

inline std::vector<int> all_axes(std::size_t rank) {
  std::vector<int> axes;
  for (std::size_t k = 0; k < rank; ++k) axes.push_back(static_cast<int>(k));
  return axes;
}

}  // namespace detail

/// Sum of all elements: a rank-0 result.
template <class T>
Var<T> sum(const Var<T>& x) {
  return detail::scaled_sum("sum", x, detail::all_axes(x.shape().size()), false, T(1));
}
/// Sum over `axes` (negative counts from the end); keepdim keeps them as size-1 axes.
template <class T>
Var<T> sum(const Var<T>& x, const std::vector<int>& axes, bool keepdim = false) {
  return detail::scaled_sum("sum", x, axes, keepdim, T(1));
}
/// Mean of all elements: a rank-0 result.
template <class T>
Var<T> mean(const Var<T>& x) {
  TESSERA_CHECK(x.value().size() > 0, "mean: empty tensor of shape " << x.shape());
  return detail::scaled_sum("mean", x, detail::all_axes(x.shape().size()), false, T(1) / T(x.value().size()));
}
/// Mean over `axes`.
template <class T>
Var<T> mean(const Var<T>& x, const std::vector<int>& axes, bool keepdim = false) {
  std::vector<bool> reduced;
  const Shape keep = detail::reduced_shape("mean", x.shape(), axes, reduced);
  const std::size_t kept = keep.numel();
  TESSERA_CHECK(kept > 0 && x.value().size() > 0, "mean: empty reduction over shape " << x.shape());
  return detail::scaled_sum("mean", x, axes, keepdim, T(kept) / T(x.value().size()));
}

}  // namespace tessera
