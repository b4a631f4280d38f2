// tessera/models/eval_mode.hpp — EvalMode: a scope in which a model runs for inference: eval
// mode (BatchNorm's running statistics, no dropout) and no graph recorded. Every submodule's
// previous mode comes back at scope exit, also when an error is thrown.
//
//   { models::EvalMode<float> inference(model);  auto logits = model(x).value(); }
#pragma once

#include "../autograd/var.hpp"
#include "../nn/module.hpp"

namespace tessera::models {

template <class T>
class EvalMode {
 public:
  explicit EvalMode(nn::Module<T>& module) : mode_(module, /*training=*/false) {}

 private:
  nn::ModeGuard<T> mode_;
  NoGradGuard no_grad_;
};

}  // namespace tessera::models
