// tessera/nn/module.hpp — Module<T>: the base of every layer and model, after libtorch's
// torch::nn::Module. A module registers its parameters, buffers and child modules by name;
// one recursive walk turns them into PyTorch state-dict names ("0.weight", "2.running_mean").
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/var.hpp"
#include "../core/error.hpp"

namespace tessera::nn {

template <class T>
class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;  // parameters are shared handles: a copy would alias them
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  /// The single-input forward that Sequential chains. Models with other inputs (a
  /// conditional generator's (z, labels)) define their own forward instead.
  virtual Var<T> forward(const Var<T>& x) {
    (void)x;
    TESSERA_FAIL(repr() << " has no single-input forward");
  }
  Var<T> operator()(const Var<T>& x) { return forward(x); }

  /// One-line description, PyTorch's repr style: "Conv2D(3, 64, kernel=4, stride=2, padding=1)".
  virtual std::string repr() const { return "Module"; }

  /// Parameters by dotted name, children's after this module's own, in registration order.
  std::vector<std::pair<std::string, Var<T>>> named_parameters() const {
    std::vector<std::pair<std::string, Var<T>>> out;
    walk("", [&](const std::string& prefix, const Module& m) {
      for (const auto& [name, p] : m.parameters_) out.emplace_back(prefix + name, p);
    });
    return out;
  }
  std::vector<Var<T>> parameters() const {
    std::vector<Var<T>> out;
    for (auto& [name, p] : named_parameters()) out.push_back(p);
    return out;
  }
  /// Buffers (running statistics) by dotted name; the references stay valid while the module lives.
  std::vector<std::pair<std::string, Tensor<T>&>> named_buffers() const {
    std::vector<std::pair<std::string, Tensor<T>&>> out;
    walk("", [&](const std::string& prefix, const Module& m) {
      for (const auto& [name, b] : m.buffers_) out.emplace_back(prefix + name, b.node()->value);
    });
    return out;
  }
  /// This module and all below it, depth first, with dotted names ("" for this one).
  std::vector<std::pair<std::string, Module*>> named_modules() {
    std::vector<std::pair<std::string, Module*>> out;
    walk("", [&](const std::string& prefix, const Module& m) {
      out.emplace_back(prefix.empty() ? prefix : prefix.substr(0, prefix.size() - 1), const_cast<Module*>(&m));
    });
    return out;
  }
  /// Calls fn on this module and every descendant (e.g. to apply DCGAN's weight init).
  void apply(const std::function<void(Module&)>& fn) {
    for (auto& [name, m] : named_modules()) fn(*m);
  }

  /// Training mode (batch statistics, dropout on) or eval mode; recursive.
  void train(bool on = true) {
    for (auto& [name, m] : named_modules()) m->training_ = on;
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Drops every parameter's gradient.
  void zero_grad() {
    for (auto& p : parameters()) p.zero_grad();
  }

  /// Registers a trainable tensor; the returned handle is the one to use in forward.
  Var<T> register_parameter(const std::string& name, Tensor<T> value) {
    check_new_name(name);
    parameters_.emplace_back(name, Var<T>(std::move(value), true));
    return parameters_.back().second;
  }
  /// Registers state that is saved with the model but not trained (running statistics).
  Var<T> register_buffer(const std::string& name, Tensor<T> value) {
    check_new_name(name);
    buffers_.emplace_back(name, Var<T>(std::move(value), false));
    return buffers_.back().second;
  }
  /// Removes the parameter `name` and returns it: a parametrization (spectral_norm) registers
  /// its value again under its own names, as PyTorch's do.
  Var<T> take_parameter(const std::string& name) {
    for (auto it = parameters_.begin(); it != parameters_.end(); ++it)
      if (it->first == name) {
        Var<T> p = it->second;
        parameters_.erase(it);
        return p;
      }
    TESSERA_FAIL(repr() << ": no parameter \"" << name << "\"");
  }

  /// Adds a function run at the start of this module's forward (PyTorch's forward pre-hook): a
  /// parametrization recomputing a weight from its own parameters and buffers. The layers
  /// spectral_norm applies to run them in every forward path (plain, fused, folded).
  void add_forward_pre_hook(std::function<void(Module&)> hook) { pre_hooks_.push_back(std::move(hook)); }
  void run_forward_pre_hooks() {
    for (auto& hook : pre_hooks_) hook(*this);
  }

  /// Registers a child; its names get the prefix "name.".
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    TESSERA_CHECK(module, repr() << ": register_module(\"" << name << "\") with a null module");
    check_new_name(name);
    children_.emplace_back(name, module);
    return module;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }

 private:
  // The one parameter walk: fn(prefix, module) for this module and every descendant.
  template <class Fn>
  void walk(const std::string& prefix, Fn&& fn) const {
    fn(prefix, *this);
    for (const auto& [name, child] : children_) child->walk(prefix + name + ".", fn);
  }

  void check_new_name(const std::string& name) const {
    TESSERA_CHECK(!name.empty() && name.find('.') == std::string::npos,
                  repr() << ": name \"" << name << "\" must be non-empty and contain no '.'");
    auto taken = [&](const auto& list) {
      for (const auto& entry : list)
        if (entry.first == name) return true;
      return false;
    };
    TESSERA_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_),
                  repr() << ": name \"" << name << "\" is already registered");
  }

  std::vector<std::pair<std::string, Var<T>>> parameters_;
  std::vector<std::pair<std::string, Var<T>>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<std::function<void(Module&)>> pre_hooks_;
  bool training_ = true;
};

/// While alive, `module` and all below it are in training mode (`training`) or eval mode;
/// every module's own previous mode comes back at scope exit, also when an error is thrown.
template <class T>
class ModeGuard {
 public:
  ModeGuard(Module<T>& module, bool training) {
    for (auto& [name, m] : module.named_modules()) saved_.emplace_back(m, m->is_training());
    module.train(training);
  }
  ~ModeGuard() {
    for (auto& [m, training] : saved_) m->train(training);  // parents come first: each child's own mode is set last
  }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  std::vector<std::pair<Module<T>*, bool>> saved_;
};

}  // namespace tessera::nn
