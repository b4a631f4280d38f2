// tessera/nn/reshape.hpp — Flatten: (N, ...) → (N, features); Reshape(shape): (N, ...) →
// (N, *shape), the per-sample shape as Keras' Reshape((8, 8, 128)) but NCHW.
#pragma once

#include <sstream>
#include <string>

#include "../ops/shape.hpp"
#include "module.hpp"

namespace tessera::nn {

template <class T>
class Flatten : public Module<T> {
 public:
  Var<T> forward(const Var<T>& x) override { return flatten(x); }
  std::string repr() const override { return "Flatten()"; }
};

template <class T>
class Reshape : public Module<T> {
 public:
  explicit Reshape(const Shape& per_sample) : per_sample_(per_sample) {}

  Var<T> forward(const Var<T>& x) override {
    const Shape& s = x.shape();
    TESSERA_CHECK(s.size() >= 1 && s.numel(1, s.size()) == per_sample_.numel(),
                  repr() << ": input " << s << " does not hold " << per_sample_.numel() << " values per sample");
    Shape out{s[0]};
    for (std::size_t d : per_sample_) out.push_back(d);
    return reshape(x, out);
  }

  std::string repr() const override {
    std::ostringstream os;
    os << "Reshape" << per_sample_;
    return os.str();
  }

 private:
  Shape per_sample_;
};

}  // namespace tessera::nn
