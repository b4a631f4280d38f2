// tessera/models/eval_mode.hpp — EvalMode: a scope in which a model runs for inference: eval
// mode (BatchNorm's running statistics, no dropout) and no graph recorded. Every submodule's
// previous mode comes back at scope exit, also when an error is thrown.
//
//   { models::EvalMode<float> inference(model);  auto logits = model(x).value(); }
#pragma once

#include <utility>
#include <vector>

#include "../autograd/var.hpp"
#include "../nn/module.hpp"

namespace tessera::models {

template <class T>
class EvalMode {
 public:
  explicit EvalMode(nn::Module<T>& module) {
    for (auto& [name, m] : module.named_modules()) saved_.emplace_back(m, m->is_training());
    module.eval();
  }
  ~EvalMode() {
    // parents come before their children, so each child's own mode is set last
    for (auto& [m, training] : saved_) m->train(training);
  }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  std::vector<std::pair<nn::Module<T>*, bool>> saved_;
  NoGradGuard no_grad_;
};

}  // namespace tessera::models
