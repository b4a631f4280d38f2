// tessera/nn/activations.hpp — activation layers: ReLU, LeakyReLU(alpha), Tanh, Sigmoid.
#pragma once

#include <sstream>
#include <string>

#include "../ops/elementwise.hpp"
#include "module.hpp"

namespace tessera::nn {

template <class T>
class ReLU : public Module<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return relu(x); }
  std::string repr() const override { return "ReLU()"; }
};

template <class T>
class LeakyReLU : public Module<T> {
 public:
  explicit LeakyReLU(double alpha = 0.01) : alpha_(alpha) {}
  Var<T> forward(const Var<T>& x) override { return leaky_relu(x, T(alpha_)); }
  std::string repr() const override {
    std::ostringstream os;
    os << "LeakyReLU(" << alpha_ << ')';
    return os.str();
  }

 private:
  double alpha_;
};

template <class T>
class Tanh : public Module<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return tanh(x); }
  std::string repr() const override { return "Tanh()"; }
};

template <class T>
class Sigmoid : public Module<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return sigmoid(x); }
  std::string repr() const override { return "Sigmoid()"; }
};

}  // namespace tessera::nn
