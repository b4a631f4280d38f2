// tessera/nn/fuse.hpp — Sequential's fusion pass: the layers cut into runs that one op computes
// in one pass over memory. A layer is asked what it is through the interfaces below (a
// subclass is what its base is; a wrapper is what it declares itself to be), never by its
// exact type. The runs:
//   epilogue: a layer that applies an epilogue to its own output (Conv2D, BatchNorm), followed
//             by a rectifier (ReLU, LeakyReLU with α ≥ 0), and after that by a max-pool whose
//             windows tile the plane, where the layer takes one (BatchNorm; kernels/epilogue.hpp);
//   folded:   at inference (no graph), a convolution followed by an eval-mode BatchNorm — an
//             affine map per channel, folded into the convolution's weights (as torch.jit.freeze
//             folds conv + bn) — then a rectifier and a tiling max-pool, as one op.
// Fused runs give the layers' values to rounding (the same values where nothing is folded),
// NaN and ±inf included.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../kernels/epilogue.hpp"
#include "module.hpp"

namespace tessera::nn {

/// A pointwise rectifier max(z, slope·z): its slope, or none where an op's fused rectifier
/// cannot stand for it (a negative slope).
class RectifierLayer {
 public:
  virtual ~RectifierLayer() = default;
  virtual std::optional<double> rectifier_slope() const = 0;
};

/// A max-pool: its window k where its windows tile the plane (stride k), else 0.
class MaxPoolLayer {
 public:
  virtual ~MaxPoolLayer() = default;
  virtual std::size_t tiling_window() const = 0;
};

/// A layer whose op can apply a rectifier, and after it a max-pool of windows up to
/// largest_fused_pool() (0: none), to its own output.
template <class T>
class EpilogueLayer {
 public:
  virtual ~EpilogueLayer() = default;
  virtual std::size_t largest_fused_pool() const = 0;
  /// The layer's forward, then the rectifier (if enabled), then a pool × pool max-pool of
  /// stride pool (0: none), as one op.
  virtual Var<T> forward_fused(const Var<T>& x, Rectifier rectifier, std::size_t pool) = 0;
};

/// A layer that is, as it stands (eval mode), z = scale·x + shift per channel.
template <class T>
class AffineLayer {
 public:
  virtual ~AffineLayer() = default;
  /// The channels of the map, or none where the layer is not such a map now (training mode).
  virtual std::optional<std::size_t> affine_channels() const = 0;
  /// (scale, shift), each (channels).
  virtual std::pair<Tensor<T>, Tensor<T>> affine_map() const = 0;
};

/// A convolution that can fold an affine map of its output into its weights, at inference.
template <class T>
class FoldingLayer {
 public:
  virtual ~FoldingLayer() = default;
  virtual std::size_t output_channels() const = 0;
  /// Inference of the layer, then z = scale·y + shift, a rectifier and a pool × pool max-pool
  /// of stride pool (0: none), as one op without a graph.
  virtual Var<T> forward_folded(const Var<T>& x, const Tensor<T>& scale, const Tensor<T>& shift, Rectifier rectifier,
                                std::size_t pool) = 0;
};

/// Layers [first, last] of a Sequential, computed as one op.
struct FusedRun {
  enum class Kind { single, epilogue, folded };
  std::size_t first = 0, last = 0;
  Kind kind = Kind::single;
  Rectifier rectifier{};
  std::size_t pool = 0;
};

namespace fuse_detail {
template <class Interface, class T>
Interface* as(const std::vector<std::shared_ptr<Module<T>>>& layers, std::size_t i) {
  return i < layers.size() ? dynamic_cast<Interface*>(layers[i].get()) : nullptr;
}
}  // namespace fuse_detail

/// The fusion pass over `layers`: consecutive runs covering them all, in order. At inference
/// (no graph recorded) convolutions also fold the affine layer after them.
template <class T>
std::vector<FusedRun> plan_fusion(const std::vector<std::shared_ptr<Module<T>>>& layers, bool inference) {
  using fuse_detail::as;
  std::vector<FusedRun> plan;
  for (std::size_t i = 0; i < layers.size();) {
    FusedRun run{i, i};
    std::size_t largest_pool = 0;
    auto* folding = as<FoldingLayer<T>>(layers, i);
    auto* affine = as<AffineLayer<T>>(layers, i + 1);
    std::optional<std::size_t> channels;
    if (inference && folding && affine && (channels = affine->affine_channels()) && *channels == folding->output_channels()) {
      run.kind = FusedRun::Kind::folded, run.last = i + 1, largest_pool = 16;
    } else if (auto* producer = as<EpilogueLayer<T>>(layers, i)) {
      run.kind = FusedRun::Kind::epilogue, largest_pool = producer->largest_fused_pool();
    }
    // then a rectifier, and after it a tiling max-pool the producer takes
    const auto* rectifier = run.kind == FusedRun::Kind::single ? nullptr : as<RectifierLayer>(layers, run.last + 1);
    const std::optional<double> slope = rectifier ? rectifier->rectifier_slope() : std::nullopt;
    if (slope) {
      run.rectifier = Rectifier{true, *slope}, ++run.last;
      const auto* pool = as<MaxPoolLayer>(layers, run.last + 1);
      const std::size_t window = pool ? pool->tiling_window() : 0;
      if (window > 0 && window <= largest_pool) run.pool = window, ++run.last;
    } else if (run.kind == FusedRun::Kind::epilogue) {
      run.kind = FusedRun::Kind::single;  // nothing to fuse after it
    }
    plan.push_back(run);
    i = run.last + 1;
  }
  return plan;
}

/// Runs one run of the plan on x.
template <class T>
Var<T> forward_run(const std::vector<std::shared_ptr<Module<T>>>& layers, const FusedRun& run, const Var<T>& x) {
  switch (run.kind) {
    case FusedRun::Kind::folded: {
      const auto [scale, shift] = dynamic_cast<AffineLayer<T>&>(*layers[run.first + 1]).affine_map();
      return dynamic_cast<FoldingLayer<T>&>(*layers[run.first]).forward_folded(x, scale, shift, run.rectifier, run.pool);
    }
    case FusedRun::Kind::epilogue:
      return dynamic_cast<EpilogueLayer<T>&>(*layers[run.first]).forward_fused(x, run.rectifier, run.pool);
    case FusedRun::Kind::single:
      break;
  }
  return layers[run.first]->forward(x);
}

/// The name of a run, as the profiler shows it: "4 Conv2D(...)", or "1-3 BatchNorm(...) +
/// ReLU() + MaxPool2D(...)".
template <class T>
std::string run_label(const std::vector<std::shared_ptr<Module<T>>>& layers, const FusedRun& run) {
  std::string name = std::to_string(run.first) + (run.last > run.first ? "-" + std::to_string(run.last) : "");
  for (std::size_t j = run.first; j <= run.last; ++j) name += (j == run.first ? " " : " + ") + layers[j]->repr();
  return name;
}

/// The plan, one run a line, each labelled and marked (fused) or (folded).
template <class T>
std::string describe(const std::vector<std::shared_ptr<Module<T>>>& layers, const std::vector<FusedRun>& plan) {
  std::string out;
  for (const FusedRun& run : plan) {
    out += run_label(layers, run);
    if (run.kind == FusedRun::Kind::epilogue) out += "  (fused)";
    if (run.kind == FusedRun::Kind::folded) out += "  (folded)";
    out += '\n';
  }
  return out;
}

}  // namespace tessera::nn
