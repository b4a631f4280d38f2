// tessera/nn/freeze.hpp — FreezeGuard: a module's parameters stop requiring grad while the guard
// lives (PyTorch's `for p in D.parameters(): p.requires_grad_(False)`), so a backward pass
// through the module reaches its inputs but leaves no gradient in it, and an optimizer
// (which skips parameters without a gradient) leaves it untouched. A GAN's generator step
// freezes the discriminator with it.
#pragma once

#include <vector>

#include "module.hpp"

namespace tessera::nn {

template <class T>
class FreezeGuard {
 public:
  explicit FreezeGuard(const Module<T>& module) : params_(module.parameters()) {
    for (auto& p : params_) {
      previous_.push_back(p.requires_grad());
      p.set_requires_grad(false);
    }
  }
  ~FreezeGuard() {
    for (std::size_t i = 0; i < params_.size(); ++i) params_[i].set_requires_grad(previous_[i]);
  }
  FreezeGuard(const FreezeGuard&) = delete;
  FreezeGuard& operator=(const FreezeGuard&) = delete;

 private:
  std::vector<Var<T>> params_;  // handles share the parameters' nodes
  std::vector<bool> previous_;  // restored as they were: a parameter frozen before stays frozen
};

}  // namespace tessera::nn
