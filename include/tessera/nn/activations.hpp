// tessera/nn/activations.hpp — activation layers: ReLU, LeakyReLU(alpha), Tanh, Sigmoid. ReLU and
// LeakyReLU are rectifiers to Sequential's fusion pass (fuse.hpp): the layer before may apply
// them in its own op; their forward is final, so that a subclass computes what the fused op does.
#pragma once

#include <optional>
#include <sstream>
#include <string>

#include "../ops/elementwise.hpp"
#include "fuse.hpp"
#include "module.hpp"

namespace tessera::nn {

/// A layer that applies one parameter-free pointwise op.
template <class T>
class Pointwise : public Module<T> {
 public:
  using Op = Var<T> (*)(const Var<T>&);
  Pointwise(const char* name, Op op) : name_(name), op_(op) {}
  Var<T> forward(const Var<T>& x) override { return op_(x); }
  std::string repr() const override { return std::string(name_) + "()"; }

 private:
  const char* name_;
  Op op_;
};

template <class T>
class ReLU : public Module<T>, public RectifierLayer {
 public:
  Var<T> forward(const Var<T>& x) final { return relu(x); }
  std::optional<double> rectifier_slope() const final { return 0.0; }
  std::string repr() const override { return "ReLU()"; }
};
template <class T>
struct Tanh : Pointwise<T> {
  Tanh() : Pointwise<T>("Tanh", tessera::tanh<T>) {}
};
template <class T>
struct Sigmoid : Pointwise<T> {
  Sigmoid() : Pointwise<T>("Sigmoid", sigmoid<T>) {}
};

template <class T>
class LeakyReLU : public Module<T>, public RectifierLayer {
 public:
  explicit LeakyReLU(double alpha = 0.01) : alpha_(alpha) {}
  double alpha() const { return alpha_; }
  Var<T> forward(const Var<T>& x) final { return leaky_relu(x, T(alpha_)); }
  /// α, where a fused op can stand for it (α ≥ 0: the gradient then follows the output's sign).
  std::optional<double> rectifier_slope() const final {
    return alpha_ >= 0 ? std::optional<double>(alpha_) : std::nullopt;
  }
  std::string repr() const override {
    std::ostringstream os;
    os << "LeakyReLU(" << alpha_ << ')';
    return os.str();
  }

 private:
  double alpha_;
};

}  // namespace tessera::nn
