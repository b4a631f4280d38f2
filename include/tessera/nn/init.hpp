// tessera/nn/init.hpp — weight initialisers, as torch.nn.init, drawing from a seeded Rng
// (this thread's default_rng() unless one is given).
#pragma once

#include <cmath>
#include <utility>

#include "../autograd/var.hpp"
#include "../core/rng.hpp"

namespace tessera::nn::init {

/// PyTorch's fan computation: fan_in = size(1)·receptive field, fan_out = size(0)·receptive
/// field. (For a transposed convolution's (in, out, k, k) weight this makes fan_in = out·k·k,
/// PyTorch's own convention, kept so initial weights match it.)
inline std::pair<double, double> fan_in_and_fan_out(const Shape& s) {
  TESSERA_CHECK(s.size() >= 2, "init: fan in and fan out need at least 2 axes, got shape " << s);
  const double receptive = double(s.numel(2, s.size()));
  return {double(s[1]) * receptive, double(s[0]) * receptive};
}

template <class T>
void uniform_(Tensor<T>& t, double lo, double hi, Rng& rng = default_rng()) {
  for (auto& v : t) v = static_cast<T>(rng.uniform(lo, hi));
}
template <class T>
void normal_(Tensor<T>& t, double mean, double stddev, Rng& rng = default_rng()) {
  for (auto& v : t) v = static_cast<T>(rng.normal(mean, stddev));
}
template <class T>
void constant_(Tensor<T>& t, double value) {
  t.fill(static_cast<T>(value));
}
template <class T>
void zeros_(Tensor<T>& t) {
  t.fill(T(0));
}
template <class T>
void ones_(Tensor<T>& t) {
  t.fill(T(1));
}

/// Kaiming He et al. (2015) uniform: U(−b, b) with b = gain·sqrt(3 / fan_in), gain = sqrt(2 / (1 + a²)).
/// With a = √5 (PyTorch's layer default) this is U(−1/√fan_in, 1/√fan_in).
template <class T>
void kaiming_uniform_(Tensor<T>& t, double a = 0.0, Rng& rng = default_rng()) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / fan_in_and_fan_out(t.shape()).first);
  uniform_(t, -bound, bound, rng);
}
/// Kaiming normal: N(0, gain² / fan_in).
template <class T>
void kaiming_normal_(Tensor<T>& t, double a = 0.0, Rng& rng = default_rng()) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  normal_(t, 0.0, gain / std::sqrt(fan_in_and_fan_out(t.shape()).first), rng);
}
/// Glorot & Bengio (2010) uniform: U(−b, b) with b = gain·sqrt(6 / (fan_in + fan_out)).
template <class T>
void xavier_uniform_(Tensor<T>& t, double gain = 1.0, Rng& rng = default_rng()) {
  const auto [fan_in, fan_out] = fan_in_and_fan_out(t.shape());
  const double bound = gain * std::sqrt(6.0 / (fan_in + fan_out));
  uniform_(t, -bound, bound, rng);
}
/// Glorot normal: N(0, gain² · 2 / (fan_in + fan_out)).
template <class T>
void xavier_normal_(Tensor<T>& t, double gain = 1.0, Rng& rng = default_rng()) {
  const auto [fan_in, fan_out] = fan_in_and_fan_out(t.shape());
  normal_(t, 0.0, gain * std::sqrt(2.0 / (fan_in + fan_out)), rng);
}

// The same initialisers on a parameter handle: init::normal_(conv.weight, 0, 0.02).
template <class T, class... Args>
void uniform_(Var<T>& p, Args&&... args) { uniform_(p.value(), std::forward<Args>(args)...); }
template <class T, class... Args>
void normal_(Var<T>& p, Args&&... args) { normal_(p.value(), std::forward<Args>(args)...); }
template <class T>
void constant_(Var<T>& p, double value) { constant_(p.value(), value); }
template <class T>
void zeros_(Var<T>& p) { zeros_(p.value()); }
template <class T>
void ones_(Var<T>& p) { ones_(p.value()); }
template <class T, class... Args>
void kaiming_uniform_(Var<T>& p, Args&&... args) { kaiming_uniform_(p.value(), std::forward<Args>(args)...); }
template <class T, class... Args>
void kaiming_normal_(Var<T>& p, Args&&... args) { kaiming_normal_(p.value(), std::forward<Args>(args)...); }
template <class T, class... Args>
void xavier_uniform_(Var<T>& p, Args&&... args) { xavier_uniform_(p.value(), std::forward<Args>(args)...); }
template <class T, class... Args>
void xavier_normal_(Var<T>& p, Args&&... args) { xavier_normal_(p.value(), std::forward<Args>(args)...); }

/// PyTorch's default for Dense and convolution layers: weight kaiming_uniform_(a = √5),
/// bias U(−1/√fan_in, 1/√fan_in) with the weight's fan_in.
template <class T>
void default_layer_init_(Var<T>& weight, Var<T>* bias, Rng& rng = default_rng()) {
  kaiming_uniform_(weight.value(), std::sqrt(5.0), rng);
  if (bias && bias->defined()) {
    const double bound = 1.0 / std::sqrt(fan_in_and_fan_out(weight.shape()).first);
    uniform_(bias->value(), -bound, bound, rng);
  }
}

}  // namespace tessera::nn::init
