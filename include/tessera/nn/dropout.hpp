// tessera/nn/dropout.hpp — Dropout(rate): inverted dropout. In training each element is zeroed
// with probability rate and the rest scaled by 1/(1 − rate), so eval mode is the identity.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>

#include "../core/parallel.hpp"
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
    // One draw from rng keys a counter-based stream, so the mask fills in parallel and is the
    // same at any thread count. An element is kept when its top 53 bits, read as u in [0, 1),
    // reach the rate; branch-free (a branch would mispredict half the time).
    const std::uint64_t key = rng.next_u64(), threshold = std::uint64_t(std::ceil(rate_ * 0x1p53));
    const T keep_scale = T(1.0 / (1.0 - rate_));
    Tensor<T> mask = Tensor<T>::empty(x.shape()), y = Tensor<T>::empty(x.shape());
    T* const m = mask.data();
    T* const out = y.data();
    const T* const in = x.value().data();
    parallel_for_ranges(0, mask.size(), std::size_t(1) << 14, [=](std::size_t first, std::size_t last) {
      const T scale = keep_scale;  // a local: the stores cannot alias it, so the loop vectorises
#pragma omp simd  // (at -O2 too, where GCC's cheap cost model would leave it scalar)
      for (std::size_t i = first; i < last; ++i) {
        const T keep = (Rng::counter_bits(key, i + 1) >> 11) >= threshold ? scale : T(0);
        m[i] = keep;
        out[i] = in[i] * keep;
      }
    });
    return make_op_result("dropout", std::move(y), {&x}, [x, mask = std::move(mask)](const Tensor<T>& g, const Tensor<T>&) {
      Tensor<T> dx = Tensor<T>::empty(g.shape());
      map_elements(dx.size(), dx.data(), std::multiplies<T>(), g.data(), mask.data());
      accumulate_grad(x, std::move(dx));
    });
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
