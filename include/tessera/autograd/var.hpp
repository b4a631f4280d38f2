// tessera/autograd/var.hpp — reverse-mode automatic differentiation.
// A Var<T> is a handle to a Node: a value, its gradient, and (for op results) the inputs and a
// backward closure, micrograd's `_backward`. The graph is built as ops run (define-by-run) and
// walked in reverse topological order by backward().
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_set>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "profile.hpp"

namespace tessera {

template <class T>
struct Node {
  /// Accumulates d(root)/d(this) from the node's output gradient and value into its inputs.
  using BackwardFn = std::function<void(const Tensor<T>& grad_output, const Tensor<T>& output)>;

  Tensor<T> value;
  Tensor<T> grad;   // undefined until a gradient arrives (or after zero_grad)
  Tensor<T> zeros;  // what grad() shows while there is no gradient
  bool requires_grad = false;
  const char* op = "leaf";  // the op that made this node, for error messages
  std::int32_t profile_label = -1;  // the Profiler scope it was made in, if one was recording
  std::vector<std::shared_ptr<Node>> inputs;
  BackwardFn backward;

  bool is_leaf() const { return !backward; }

  /// grad += g (the first gradient is moved in, not added to zeros).
  void accumulate(Tensor<T>&& g) {
    TESSERA_CHECK(g.shape() == value.shape(), "backward of " << op << ": gradient of shape " << g.shape()
                                                             << " for a value of shape " << value.shape());
    if (!grad.defined())
      grad = std::move(g);
    else
      grad += g;
  }
  void accumulate(const Tensor<T>& g) { accumulate(Tensor<T>(g)); }
};

namespace detail {
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;
  return enabled;
}
inline bool& anomaly_mode_flag() {
  thread_local bool enabled = false;
  return enabled;
}

/// "NaN", "Inf" or nullptr: what non-finite value `t` holds first, if any.
template <class T>
const char* non_finite(const Tensor<T>& t) {
  for (T v : t)
    if (!std::isfinite(v)) return std::isnan(v) ? "NaN" : "Inf";
  return nullptr;
}

/// Sets a thread-local mode flag for a scope; its previous value comes back at exit.
class ScopedFlag {
 public:
  ScopedFlag(bool& flag, bool value) : flag_(flag), previous_(flag) { flag = value; }
  ~ScopedFlag() { flag_ = previous_; }
  ScopedFlag(const ScopedFlag&) = delete;
  ScopedFlag& operator=(const ScopedFlag&) = delete;

 private:
  bool& flag_;
  bool previous_;
};
}  // namespace detail

/// Whether ops record the graph on this thread.
inline bool grad_enabled() { return detail::grad_mode_flag(); }

/// RAII: no graph is recorded while alive (inference, parameter updates). Per thread.
class NoGradGuard : detail::ScopedFlag {
 public:
  NoGradGuard() : ScopedFlag(detail::grad_mode_flag(), false) {}
};

/// Anomaly mode (PyTorch's detect_anomaly), per thread: every op's result and every gradient
/// is checked as it is made, and the first NaN or Inf is an Error naming the op, forward or
/// backward, and the shapes, instead of a loss that turns NaN many ops later. Costs a pass
/// over every tensor: for hunting a fault, not for every run.
inline void set_detect_anomaly(bool enabled) { detail::anomaly_mode_flag() = enabled; }
inline bool detect_anomaly_enabled() { return detail::anomaly_mode_flag(); }

/// RAII: anomaly mode on while alive.
class DetectAnomalyGuard : detail::ScopedFlag {
 public:
  DetectAnomalyGuard() : ScopedFlag(detail::anomaly_mode_flag(), true) {}
};

template <class T>
class Var {
 public:
  using value_type = T;

  /// An undefined handle.
  Var() = default;
  /// A leaf holding `value`; with requires_grad, backward() fills its grad().
  Var(Tensor<T> value, bool requires_grad = false) : node_(std::make_shared<Node<T>>()) {  // NOLINT: implicit on purpose
    node_->value = std::move(value);
    node_->requires_grad = requires_grad;
  }
  explicit Var(std::shared_ptr<Node<T>> node) : node_(std::move(node)) {}

  bool defined() const { return node_ != nullptr; }
  const Tensor<T>& value() const { return checked().value; }
  Tensor<T>& value() { return checked().value; }
  const Shape& shape() const { return value().shape(); }
  bool requires_grad() const { return checked().requires_grad; }
  Var& set_requires_grad(bool on) {
    TESSERA_CHECK(checked().is_leaf() || on, "set_requires_grad(false) on the result of " << node_->op
                                                                                          << "; use detach()");
    node_->requires_grad = on;
    return *this;
  }

  /// The accumulated gradient; zeros of the value's shape if none has arrived yet. Reading
  /// never creates a gradient, so an optimizer still skips a parameter that received none.
  const Tensor<T>& grad() const {
    Node<T>& n = checked();
    if (n.grad.defined()) return n.grad;
    if (!n.zeros.defined() || n.zeros.shape() != n.value.shape()) n.zeros = Tensor<T>::zeros(n.value.shape());
    return n.zeros;
  }
  /// Replaces the gradient (e.g. to feed an optimizer a gradient computed elsewhere).
  void set_grad(Tensor<T> g) {
    Node<T>& n = checked();
    TESSERA_CHECK(g.shape() == n.value.shape(), "set_grad: gradient of shape " << g.shape() << " for a value of shape "
                                                                             << n.value.shape());
    n.grad = std::move(g);
  }
  bool has_grad() const { return checked().grad.defined(); }
  /// Drops the gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad() { checked().grad = Tensor<T>(); }

  /// A new leaf with a copy of this value, cut off from the graph.
  Var detach() const { return Var(value(), false); }

  /// Backpropagates from a one-element result (d(self)/d(self) = 1).
  void backward(bool retain_graph = false) {
    TESSERA_CHECK(value().size() == 1, "backward: result of " << node_->op << " has shape " << shape()
                                                              << "; pass an upstream gradient for non-scalars");
    backward(Tensor<T>::ones(shape()), retain_graph);
  }

  /// Backpropagates `upstream` = d(loss)/d(self). Without retain_graph the graph's closures
  /// and intermediate gradients are freed as it goes, as in PyTorch.
  void backward(const Tensor<T>& upstream, bool retain_graph = false) {
    Node<T>& root = checked();
    TESSERA_CHECK(root.requires_grad, "backward: result of " << root.op << " does not require grad "
                                                             << "(no input requires grad, or NoGradGuard was active)");
    TESSERA_CHECK(upstream.shape() == root.value.shape(), "backward: upstream gradient of shape " << upstream.shape()
                                                               << " for a result of shape " << root.value.shape());
    const auto order = topological_order(node_);
    if (detect_anomaly_enabled()) TESSERA_CHECK(!detail::non_finite(upstream), "backward: the upstream gradient " << upstream.shape()
                                                                                << " holds " << detail::non_finite(upstream));
    root.accumulate(upstream);
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      Node<T>& n = **it;
      if (n.is_leaf()) continue;
      if (n.grad.defined()) {
        if (Profiler* profiler = Profiler::active()) {
          const double start = Profiler::now();
          n.backward(n.grad, n.value);
          profiler->add_backward(n.profile_label, Profiler::now() - start);
        } else {
          n.backward(n.grad, n.value);
        }
        if (detect_anomaly_enabled()) check_input_gradients(n);
      }
      n.grad = Tensor<T>();  // only leaves keep gradients, as in PyTorch
      if (!retain_graph) {
        n.backward = nullptr;
        n.inputs.clear();
        n.requires_grad = false;  // a freed node can take no second backward
      }
    }
  }

  const std::shared_ptr<Node<T>>& node() const { return node_; }

 private:
  Node<T>& checked() const {
    TESSERA_CHECK(node_, "Var: use of an undefined Var");
    return *node_;
  }

  // Anomaly mode: the gradients `n`'s backward just accumulated into its inputs are finite
  // (earlier contributions were checked when they arrived).
  static void check_input_gradients(const Node<T>& n) {
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
      const Tensor<T>& g = n.inputs[i]->grad;
      if (!g.defined()) continue;
      const char* bad = detail::non_finite(g);
      TESSERA_CHECK(!bad, "anomaly: backward of " << n.op << " (output " << n.value.shape() << ") produced " << bad
                                                  << " in the gradient of its input " << i << " " << g.shape());
    }
  }

  // Nodes that need a gradient, inputs before users (iterative DFS: deep graphs cannot
  // overflow the stack). Owning pointers: freeing the graph as backward runs must not
  // destroy a node that is still to be visited.
  static std::vector<std::shared_ptr<Node<T>>> topological_order(const std::shared_ptr<Node<T>>& root) {
    std::vector<std::shared_ptr<Node<T>>> order;
    std::unordered_set<Node<T>*> visited{root.get()};
    std::vector<std::pair<std::shared_ptr<Node<T>>, std::size_t>> stack{{root, 0}};
    while (!stack.empty()) {
      auto& [node, next_input] = stack.back();
      if (next_input < node->inputs.size()) {
        std::shared_ptr<Node<T>> child = node->inputs[next_input++];
        if (child->requires_grad && visited.insert(child.get()).second) stack.push_back({std::move(child), 0});
      } else {
        order.push_back(std::move(node));
        stack.pop_back();
      }
    }
    return order;
  }

  std::shared_ptr<Node<T>> node_;
};

namespace detail {
/// Anomaly mode: an op's result is finite, or an Error says which op made the first NaN/Inf
/// (or which input brought one in from outside the graph).
template <class T>
void check_forward(const char* op, const Tensor<T>& value, const std::vector<const Var<T>*>& inputs) {
  const char* bad = non_finite(value);
  if (!bad) return;
  std::ostringstream shapes;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i]->defined()) {
      shapes << (i ? ", " : "") << inputs[i]->shape();
      if (const char* in_bad = non_finite(inputs[i]->value()))
        TESSERA_FAIL("anomaly: input " << i << " " << inputs[i]->shape() << " of " << op << " already holds " << in_bad
                                       << " (it was made outside anomaly mode or outside the graph)");
    }
  TESSERA_FAIL("anomaly: forward of " << op << " produced " << bad << " in its result " << value.shape() << " from inputs "
                                      << shapes.str());
}

template <class T, class Backward>
Var<T> record_op(const char* op, Tensor<T> value, const std::vector<const Var<T>*>& inputs, Backward&& backward) {
  if (anomaly_mode_flag()) check_forward(op, value, inputs);
  bool any = false;
  if (grad_enabled())
    for (const Var<T>* in : inputs) any = any || (in->defined() && in->requires_grad());
  Var<T> out(std::move(value), false);
  if (!any) return out;
  Node<T>& n = *out.node();
  n.requires_grad = true;
  n.op = op;
  if (const Profiler* profiler = Profiler::active()) n.profile_label = profiler->current_label();
  for (const Var<T>* in : inputs)
    if (in->defined() && in->requires_grad()) n.inputs.push_back(in->node());
  n.backward = std::forward<Backward>(backward);
  return out;
}
}  // namespace detail

/// Builds an op's result: records `backward` and the inputs when grad mode is on and some
/// input requires grad; otherwise returns a plain constant (no graph, no saved tensors).
template <class T, class Backward>
Var<T> make_op_result(const char* op, Tensor<T> value, std::initializer_list<const Var<T>*> inputs,
                      Backward&& backward) {
  return detail::record_op(op, std::move(value), std::vector<const Var<T>*>(inputs),
                           std::forward<Backward>(backward));
}

/// Same, for ops with a run-time number of inputs (concat).
template <class T, class Backward>
Var<T> make_op_result(const char* op, Tensor<T> value, const std::vector<Var<T>>& inputs, Backward&& backward) {
  std::vector<const Var<T>*> pointers;
  for (const auto& in : inputs) pointers.push_back(&in);
  return detail::record_op(op, std::move(value), pointers, std::forward<Backward>(backward));
}

/// Whether a backward closure should compute `input`'s gradient at all.
template <class T>
bool needs_grad(const Var<T>& input) {
  return input.defined() && input.requires_grad();
}

/// Adds `g` to `input`'s gradient if it takes one: the closing line of every backward.
template <class T>
void accumulate_grad(const Var<T>& input, Tensor<T>&& g) {
  if (needs_grad(input)) input.node()->accumulate(std::move(g));
}

}  // namespace tessera
