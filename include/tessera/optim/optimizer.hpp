// tessera/optim/optimizer.hpp — the base of every optimizer: the parameters it updates, their
// per-parameter state (what a checkpoint saves), zero_grad and step.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/var.hpp"

namespace tessera::optim {

template <class T>
class Optimizer {
 public:
  explicit Optimizer(std::vector<Var<T>> params, double lr) : params_(std::move(params)), lr_(lr) {
    TESSERA_CHECK(lr >= 0.0, "optimizer: learning rate must be non-negative, got " << lr);
    for (const auto& p : params_)
      TESSERA_CHECK(p.defined() && p.requires_grad(), "optimizer: every parameter must be a Var that requires grad");
    step_counts_.assign(params_.size(), 0);
  }
  Optimizer(const Optimizer&) = delete;  // a copy would share the parameters but fork the state
  Optimizer& operator=(const Optimizer&) = delete;
  virtual ~Optimizer() = default;

  /// Applies one update to every parameter that has a gradient (others are skipped, as in PyTorch).
  void step() {
    NoGradGuard no_grad;
    ProfileScope scope("optimizer step");
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (!params_[i].has_grad()) continue;
      ++step_counts_[i];
      update(i, params_[i].value(), params_[i].grad());
    }
  }

  /// Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad() {
    for (auto& p : params_) p.zero_grad();
  }

  double lr() const { return lr_; }
  void set_lr(double lr) {
    TESSERA_CHECK(lr >= 0.0, "optimizer: learning rate must be non-negative, got " << lr);
    lr_ = lr;
  }
  const std::vector<Var<T>>& params() const { return params_; }

  /// Updates applied to each parameter so far (Adam's bias correction reads it).
  std::vector<std::uint64_t>& step_counts() { return step_counts_; }
  /// Per-parameter state tensors, parameter by parameter: "0.exp_avg", "0.exp_avg_sq",
  /// "1.exp_avg", ... (the tensors a checkpoint saves with step_counts()).
  std::vector<std::pair<std::string, Tensor<T>*>> named_state() {
    std::vector<std::pair<std::string, Tensor<T>*>> out;
    for (std::size_t i = 0; i < params_.size(); ++i)
      for (auto& [name, tensor] : state_of(i)) out.emplace_back(std::to_string(i) + "." + name, tensor);
    return out;
  }

 protected:
  /// One update of parameter i in place, given its gradient.
  virtual void update(std::size_t i, Tensor<T>& param, const Tensor<T>& grad) = 0;

  /// The state tensors of parameter i, by name.
  virtual std::vector<std::pair<const char*, Tensor<T>*>> state_of(std::size_t i) = 0;

  /// Per-parameter zero tensors shaped like the parameters (state is allocated up front so a
  /// checkpoint sees the same state layout from the first step on).
  std::vector<Tensor<T>> zeros_like_params() const {
    std::vector<Tensor<T>> out;
    for (const auto& p : params_) out.push_back(Tensor<T>::zeros(p.shape()));
    return out;
  }

  std::vector<Var<T>> params_;
  double lr_;
  std::vector<std::uint64_t> step_counts_;
};

}  // namespace tessera::optim
