// tessera/nn/activations.hpp — activation layers: ReLU, LeakyReLU(alpha), Tanh, Sigmoid.
#pragma once

#include <sstream>
#include <string>

#include "../ops/elementwise.hpp"
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
struct ReLU : Pointwise<T> {
  ReLU() : Pointwise<T>("ReLU", relu<T>) {}
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
class LeakyReLU : public Module<T> {
 public:
  explicit LeakyReLU(double alpha = 0.01) : alpha_(alpha) {}
  double alpha() const { return alpha_; }
  Var<T> forward(const Var<T>& x) override { return leaky_relu(x, T(alpha_)); }
  std::string repr() const override {
    std::ostringstream os;
    os << "LeakyReLU(" << alpha_ << ')';
    return os.str();
  }

 private:
  double alpha_;
};

}  // namespace tessera::nn
