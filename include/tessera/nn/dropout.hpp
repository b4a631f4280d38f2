// tessera/nn/dropout.hpp — Dropout(rate): inverted dropout. In training each element is zeroed
// with probability rate and the rest scaled by 1/(1 − rate), so eval mode is the identity.
#pragma once

#include <sstream>
#include <string>

#include "../core/rng.hpp"
#include "../ops/elementwise.hpp"
#include "module.hpp"

namespace tessera::nn {

template <class T>
class Dropout : public Module<T> {
 public:
  /// Masks come from `rng` if given (it must outlive the layer), else this thread's default_rng().
  explicit Dropout(double rate = 0.5, Rng* rng = nullptr) : rate_(rate), rng_(rng) {
    TESSERA_CHECK(rate >= 0.0 && rate < 1.0, "Dropout: rate must be in [0, 1), got " << rate);
  }

  Var<T> forward(const Var<T>& x) override {
    if (!this->is_training() || rate_ == 0.0) return x;
    Rng& rng = rng_ ? *rng_ : default_rng();
    Tensor<T> mask = Tensor<T>::empty(x.shape());
    const T keep_scale = T(1.0 / (1.0 - rate_));
    // bernoulli(rate) drops; written without a branch, which would mispredict half the time
    for (auto& m : mask) m = keep_scale * T(rng.uniform() >= rate_);
    return x * Var<T>(std::move(mask));
  }

  std::string repr() const override {
    std::ostringstream os;
    os << "Dropout(" << rate_ << ')';
    return os.str();
  }

 private:
  double rate_;
  Rng* rng_;
};

}  // namespace tessera::nn
