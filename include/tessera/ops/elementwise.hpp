// tessera/ops/elementwise.hpp — + − × ÷ with broadcasting, and the pointwise functions
// (exp, log, sqrt, pow, abs, tanh, sigmoid, relu, leaky_relu, softplus), each with its backward.
#pragma once

#include <cmath>
#include <functional>
#include <type_traits>

#include "../autograd/var.hpp"
#include "../kernels/epilogue.hpp"
#include "../kernels/vector_math.hpp"
#include "broadcast.hpp"

namespace tessera {

// ---- binary ops: forward broadcasts, backward reduces the gradient back to each input's shape ----

template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
  return make_op_result("add", broadcast_binary("add", a.value(), b.value(), std::plus<T>()), {&a, &b},
                        [a, b](const Tensor<T>& g, const Tensor<T>&) {
                          if (needs_grad(a)) accumulate_grad(a, reduce_to_shape(g, a.shape()));
                          if (needs_grad(b)) accumulate_grad(b, reduce_to_shape(g, b.shape()));
                        });
}

template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
  return make_op_result("sub", broadcast_binary("sub", a.value(), b.value(), std::minus<T>()), {&a, &b},
                        [a, b](const Tensor<T>& g, const Tensor<T>&) {
                          if (needs_grad(a)) accumulate_grad(a, reduce_to_shape(g, a.shape()));
                          if (needs_grad(b)) {
                            Tensor<T> gb = reduce_to_shape(g, b.shape());
                            gb *= T(-1);
                            accumulate_grad(b, std::move(gb));
                          }
                        });
}

template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
  return make_op_result("mul", broadcast_binary("mul", a.value(), b.value(), std::multiplies<T>()), {&a, &b},
                        [a, b](const Tensor<T>& g, const Tensor<T>&) {
                          // d(ab)/da = b, d(ab)/db = a
                          if (needs_grad(a))
                            accumulate_grad(a, reduce_to_shape(broadcast_binary("mul", g, b.value(), std::multiplies<T>()), a.shape()));
                          if (needs_grad(b))
                            accumulate_grad(b, reduce_to_shape(broadcast_binary("mul", g, a.value(), std::multiplies<T>()), b.shape()));
                        });
}

template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
  return make_op_result("div", broadcast_binary("div", a.value(), b.value(), std::divides<T>()), {&a, &b},
                        [a, b](const Tensor<T>& g, const Tensor<T>& y) {
                          // d(a/b)/da = 1/b, d(a/b)/db = -(a/b)/b = -y/b
                          if (needs_grad(a))
                            accumulate_grad(a, reduce_to_shape(broadcast_binary("div", g, b.value(), std::divides<T>()), a.shape()));
                          if (needs_grad(b)) {
                            Tensor<T> gy = broadcast_binary("div", g, y, std::multiplies<T>());
                            Tensor<T> gb = broadcast_binary("div", gy, b.value(), [](T u, T v) { return -u / v; });
                            accumulate_grad(b, reduce_to_shape(gb, b.shape()));
                          }
                        });
}

namespace detail {
template <class T>
using Scalar = typename std::common_type<T>::type;  // non-deduced: a Var<float> * 2.0 picks T = float
template <class T>
Var<T> constant(T value) {
  return Var<T>(Tensor<T>::scalar(value));
}
}  // namespace detail

template <class T> Var<T> operator+(const Var<T>& a, const Var<T>& b) { return add(a, b); }
template <class T> Var<T> operator-(const Var<T>& a, const Var<T>& b) { return sub(a, b); }
template <class T> Var<T> operator*(const Var<T>& a, const Var<T>& b) { return mul(a, b); }
template <class T> Var<T> operator/(const Var<T>& a, const Var<T>& b) { return div(a, b); }
template <class T> Var<T> operator+(const Var<T>& a, detail::Scalar<T> s) { return add(a, detail::constant(s)); }
template <class T> Var<T> operator+(detail::Scalar<T> s, const Var<T>& a) { return add(detail::constant(s), a); }
template <class T> Var<T> operator-(const Var<T>& a, detail::Scalar<T> s) { return sub(a, detail::constant(s)); }
template <class T> Var<T> operator-(detail::Scalar<T> s, const Var<T>& a) { return sub(detail::constant(s), a); }
template <class T> Var<T> operator*(const Var<T>& a, detail::Scalar<T> s) { return mul(a, detail::constant(s)); }
template <class T> Var<T> operator*(detail::Scalar<T> s, const Var<T>& a) { return mul(detail::constant(s), a); }
template <class T> Var<T> operator/(const Var<T>& a, detail::Scalar<T> s) { return div(a, detail::constant(s)); }
template <class T> Var<T> operator/(detail::Scalar<T> s, const Var<T>& a) { return div(detail::constant(s), a); }
template <class T> Var<T> operator-(const Var<T>& a) { return mul(a, detail::constant(T(-1))); }

// ---- pointwise functions ------------------------------------------------------------------

/// y = f(x) elementwise; backward multiplies the gradient by dy/dx = df(x, y).
template <class T, class F, class DF>
Var<T> unary_op(const char* op, const Var<T>& x, F f, DF df) {
  Tensor<T> y = Tensor<T>::empty(x.shape());
  map_elements(y.size(), y.data(), f, x.value().data());
  return make_op_result(op, std::move(y), {&x}, [x, df](const Tensor<T>& g, const Tensor<T>& out) {
    Tensor<T> gx = Tensor<T>::empty(g.shape());
    map_elements(gx.size(), gx.data(), [df](T gi, T xi, T yi) { return gi * df(xi, yi); }, g.data(), x.value().data(),
                 out.data());
    accumulate_grad(x, std::move(gx));
  });
}

template <class T>
Var<T> exp(const Var<T>& x) {
  return unary_op("exp", x, [](T v) { return std::exp(v); }, [](T, T y) { return y; });
}
template <class T>
Var<T> log(const Var<T>& x) {
  return unary_op("log", x, [](T v) { return std::log(v); }, [](T v, T) { return T(1) / v; });
}
template <class T>
Var<T> sqrt(const Var<T>& x) {
  return unary_op("sqrt", x, [](T v) { return std::sqrt(v); }, [](T, T y) { return T(0.5) / y; });
}
template <class T>
Var<T> pow(const Var<T>& x, detail::Scalar<T> p) {
  return unary_op("pow", x, [p](T v) { return std::pow(v, p); },
                  [p](T v, T) { return p == T(0) ? T(0) : p * std::pow(v, p - T(1)); });
}
template <class T>
Var<T> abs(const Var<T>& x) {  // derivative sign(x), 0 at 0 (PyTorch's choice)
  return unary_op("abs", x, [](T v) { return std::abs(v); }, [](T v, T) { return T((v > 0) - (v < 0)); });
}
template <class T>
Var<T> tanh(const Var<T>& x) {
  return unary_op("tanh", x, [](T v) { return kernels::tanh_value(v); }, [](T, T y) { return T(1) - y * y; });
}

/// 1 / (1 + e^-x), computed without overflow for large |x|.
template <class T>
T stable_sigmoid(T v) {
  if (v >= T(0)) return T(1) / (T(1) + std::exp(-v));
  const T e = std::exp(v);
  return e / (T(1) + e);
}

template <class T>
Var<T> sigmoid(const Var<T>& x) {
  return unary_op("sigmoid", x, [](T v) { return stable_sigmoid(v); }, [](T, T y) { return y * (T(1) - y); });
}
/// max(x, 0) (a NaN stays NaN, as PyTorch's); derivative 0 at 0, as PyTorch. The rectifier of
/// kernels/epilogue.hpp, which the fused ops apply too.
template <class T>
Var<T> relu(const Var<T>& x) {
  return unary_op("relu", x, [](T v) { return kernels::rectify(v, T(0)); },
                  [](T v, T) { return kernels::rectified_gradient(T(1), v, T(0)); });
}
/// x where x > 0, else alpha·x (any alpha; the fused ops take alpha ≥ 0).
template <class T>
Var<T> leaky_relu(const Var<T>& x, detail::Scalar<T> alpha = T(0.01)) {
  return unary_op("leaky_relu", x, [alpha](T v) { return kernels::rectify(v, alpha); },
                  [alpha](T v, T) { return kernels::rectified_gradient(T(1), v, alpha); });
}
/// log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow; derivative sigmoid(x).
template <class T>
Var<T> softplus(const Var<T>& x) {
  return unary_op("softplus", x, [](T v) { return std::max(v, T(0)) + std::log1p(std::exp(-std::abs(v))); },
                  [](T v, T) { return stable_sigmoid(v); });
}

}  // namespace tessera
