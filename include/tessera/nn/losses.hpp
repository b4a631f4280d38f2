// tessera/nn/losses.hpp — loss functions, mean-reduced as PyTorch's defaults, each a single op
// with its own numerically stable backward.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../autograd/var.hpp"
#include "../core/parallel.hpp"
#include "../ops/elementwise.hpp"

namespace tessera::nn {
namespace detail {

template <class T>
using Target = typename std::common_type<Var<T>>::type;  // non-deduced, so a Tensor target converts

/// mean_i loss(x_i, t_i) with d/dx = dloss_dx(x, t) / n and d/dt = dloss_dt(x, t) / n.
template <class T, class Loss, class DLossDx, class DLossDt>
Var<T> mean_pointwise_loss(const char* op, const Var<T>& input, const Var<T>& target, Loss loss, DLossDx dloss_dx,
                           DLossDt dloss_dt) {
  TESSERA_CHECK(input.shape() == target.shape(),
                op << ": input " << input.shape() << " and target " << target.shape() << " differ");
  const std::size_t n = input.value().size();
  TESSERA_CHECK(n > 0, op << ": empty input");
  const T* x = input.value().data();
  const T* t = target.value().data();
  double total = 0;  // in double: the mean of many small terms
  for (std::size_t i = 0; i < n; ++i) total += loss(x[i], t[i]);
  return make_op_result(op, Tensor<T>::scalar(T(total / double(n))), {&input, &target},
                        [input, target, n, dloss_dx, dloss_dt](const Tensor<T>& g, const Tensor<T>&) {
                          const T scale = g[0] / T(n);
                          const T* px = input.value().data();
                          const T* pt = target.value().data();
                          auto gradient = [&](auto&& d) {
                            Tensor<T> out = Tensor<T>::empty(input.shape());
                            for (std::size_t i = 0; i < n; ++i) out[i] = scale * d(px[i], pt[i]);
                            return out;
                          };
                          if (needs_grad(input)) accumulate_grad(input, gradient(dloss_dx));
                          if (needs_grad(target)) accumulate_grad(target, gradient(dloss_dt));
                        });
}

template <class T>
T clamped_log(T v) {  // PyTorch's BCELoss clamps log to ≥ −100 so p = 0 or 1 stays finite
  return std::max(std::log(v), T(-100));
}

}  // namespace detail

/// Binary cross-entropy on probabilities: mean(−t·log p − (1 − t)·log(1 − p)).
template <class T>
Var<T> bce(const Var<T>& prob, const detail::Target<T>& target) {
  return detail::mean_pointwise_loss(
      "bce", prob, target,
      [](T p, T t) { return -(t * detail::clamped_log(p) + (T(1) - t) * detail::clamped_log(T(1) - p)); },
      [](T p, T t) { return (p - t) / std::max(p * (T(1) - p), T(1e-12f)); },  // PyTorch's float epsilon
      [](T p, T) { return detail::clamped_log(T(1) - p) - detail::clamped_log(p); });
}

/// Binary cross-entropy on logits, stable for any x: mean(max(x, 0) − x·t + log(1 + e^−|x|)).
template <class T>
Var<T> bce_with_logits(const Var<T>& logits, const detail::Target<T>& target) {
  return detail::mean_pointwise_loss(
      "bce_with_logits", logits, target,
      [](T x, T t) { return std::max(x, T(0)) - x * t + std::log1p(std::exp(-std::abs(x))); },
      [](T x, T t) { return stable_sigmoid(x) - t; }, [](T x, T) { return -x; });
}

/// Mean squared error.
template <class T>
Var<T> mse(const Var<T>& input, const detail::Target<T>& target) {
  return detail::mean_pointwise_loss(
      "mse", input, target, [](T x, T t) { return (x - t) * (x - t); }, [](T x, T t) { return T(2) * (x - t); },
      [](T x, T t) { return T(2) * (t - x); });
}

/// Mean absolute error (gradient sign(x − t), 0 where equal).
template <class T>
Var<T> l1(const Var<T>& input, const detail::Target<T>& target) {
  return detail::mean_pointwise_loss(
      "l1", input, target, [](T x, T t) { return std::abs(x - t); },
      [](T x, T t) { return T((x > t) - (x < t)); }, [](T x, T t) { return T((t > x) - (t < x)); });
}

/// Softmax cross-entropy of logits (N, K) against integer labels in [0, K):
/// mean_n(log Σ_k e^{z_nk} − z_{n,y_n}), the log-sum-exp taken around the row maximum.
/// Gradient: (softmax(z) − onehot(y)) / N.
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<std::int64_t>& labels) {
  const Shape& s = logits.shape();
  TESSERA_CHECK(s.size() == 2, "cross_entropy: logits must be (N, K), got " << s);
  const std::size_t batch = s[0], classes = s[1];
  TESSERA_CHECK(labels.size() == batch,
                "cross_entropy: " << labels.size() << " labels for logits " << s);
  for (std::int64_t y : labels)
    TESSERA_CHECK(y >= 0 && std::size_t(y) < classes,
                  "cross_entropy: label " << y << " out of range for " << classes << " classes");
  Tensor<T> softmax = Tensor<T>::empty(s);
  double total = 0;
  for (std::size_t n = 0; n < batch; ++n) {
    const T* z = logits.value().data() + n * classes;
    T* p = softmax.data() + n * classes;
    const T zmax = *std::max_element(z, z + classes);
    double denom = 0;
    for (std::size_t k = 0; k < classes; ++k) denom += std::exp(double(z[k] - zmax));
    for (std::size_t k = 0; k < classes; ++k) p[k] = T(std::exp(double(z[k] - zmax)) / denom);
    total += std::log(denom) + double(zmax) - double(z[labels[n]]);
  }
  return make_op_result("cross_entropy", Tensor<T>::scalar(T(total / double(batch))), {&logits},
                        [logits, labels, softmax = std::move(softmax), batch, classes](const Tensor<T>& g, const Tensor<T>&) {
                          Tensor<T> gz = softmax;
                          for (std::size_t n = 0; n < batch; ++n) gz[n * classes + std::size_t(labels[n])] -= T(1);
                          gz *= g[0] / T(batch);
                          accumulate_grad(logits, std::move(gz));
                        });
}

/// KL(N(mu, e^logvar) ‖ N(0, 1)) = −½ Σ_features (1 + logvar − mu² − e^logvar), mean over the
/// batch (axis 0). Gradients: mu / N and ½(e^logvar − 1) / N.
template <class T>
Var<T> kl_normal(const Var<T>& mu, const detail::Target<T>& logvar) {
  TESSERA_CHECK(mu.shape() == logvar.shape(), "kl_normal: mu " << mu.shape() << " and logvar " << logvar.shape() << " differ");
  TESSERA_CHECK(mu.shape().size() >= 1 && mu.shape()[0] > 0, "kl_normal: needs a batch axis, got " << mu.shape());
  const std::size_t batch = mu.shape()[0], n = mu.value().size();
  const T* m = mu.value().data();
  const T* lv = logvar.value().data();
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) total += -0.5 * (1.0 + lv[i] - double(m[i]) * m[i] - std::exp(double(lv[i])));
  return make_op_result("kl_normal", Tensor<T>::scalar(T(total / double(batch))), {&mu, &logvar},
                        [mu, logvar, batch, n](const Tensor<T>& g, const Tensor<T>&) {
                          const T scale = g[0] / T(batch);
                          if (needs_grad(mu)) {
                            Tensor<T> gm = mu.value();
                            gm *= scale;
                            accumulate_grad(mu, std::move(gm));
                          }
                          if (needs_grad(logvar)) {
                            Tensor<T> gl = Tensor<T>::empty(logvar.shape());
                            for (std::size_t i = 0; i < n; ++i) gl[i] = scale * T(0.5) * (std::exp(logvar.value()[i]) - T(1));
                            accumulate_grad(logvar, std::move(gl));
                          }
                        });
}

}  // namespace tessera::nn
