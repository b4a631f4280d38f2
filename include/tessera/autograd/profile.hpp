// tessera/autograd/profile.hpp — Profiler: wall time per layer, forward and backward, for the
// benchmark's breakdown (tessera_bench --profile). Scopes name where the forward is
// (Sequential names each child by index and repr(), a GAN its "G" and "D"); nested scopes join
// as "G/2 BatchNorm(128, ...)". Forward time goes to the innermost open scope (self time), every op
// recorded meanwhile carries that scope's label, and backward() times each op's closure under
// it. Off (no Profiler alive on this thread), a scope costs one thread-local load.
//
//   Profiler profile;
//   { ProfileScope step("step"); loss = model(x) ...; loss.backward(); }
//   for (const auto& row : profile.rows()) ... row.label, row.forward_s, row.backward_s
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/error.hpp"

namespace tessera {

class Profiler {
 public:
  struct Row {
    std::string label;
    double forward_s = 0, backward_s = 0;
  };

  Profiler() {
    TESSERA_CHECK(!active(), "Profiler: another profiler is already recording on this thread");
    active() = this;
  }
  ~Profiler() { active() = nullptr; }
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  /// Every label seen, in order of first appearance, with its accumulated times.
  const std::vector<Row>& rows() const { return rows_; }

  /// The profiler recording on this thread, or nullptr.
  static Profiler*& active() {
    thread_local Profiler* profiler = nullptr;
    return profiler;
  }
  /// The label id new ops get: the innermost scope's, or −1 outside every scope.
  std::int32_t current_label() const { return stack_.empty() ? -1 : stack_.back(); }
  /// Adds `seconds` of backward time to label `id` (from Var::backward).
  void add_backward(std::int32_t id, double seconds) {
    if (id >= 0) rows_[std::size_t(id)].backward_s += seconds;
  }

  static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

 private:
  friend class ProfileScope;
  void push(const std::string& name) {
    const std::string label = stack_.empty() ? name : rows_[std::size_t(stack_.back())].label + "/" + name;
    charge_forward();
    auto [it, inserted] = ids_.emplace(label, std::int32_t(rows_.size()));
    if (inserted) rows_.push_back({label});
    stack_.push_back(it->second);
  }
  void pop() {
    charge_forward();
    stack_.pop_back();
  }
  // The time since the last push or pop belongs to the scope open during it.
  void charge_forward() {
    const double t = now();
    if (!stack_.empty()) rows_[std::size_t(stack_.back())].forward_s += t - mark_;
    mark_ = t;
  }

  std::vector<Row> rows_;
  std::unordered_map<std::string, std::int32_t> ids_;
  std::vector<std::int32_t> stack_;
  double mark_ = 0;
};

/// RAII: a named scope while alive, if a Profiler is recording. The name may be given as a
/// callable, so that building it costs nothing when nobody is profiling.
class ProfileScope {
 public:
  template <class Name>
  explicit ProfileScope(Name&& name) : profiler_(Profiler::active()) {
    if (!profiler_) return;
    if constexpr (std::is_invocable_v<Name>)
      profiler_->push(name());
    else
      profiler_->push(std::string(name));
  }
  ~ProfileScope() {
    if (profiler_) profiler_->pop();
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  Profiler* profiler_;
};

}  // namespace tessera
