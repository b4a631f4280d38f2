// tessera/nn/batchnorm.hpp — BatchNorm(features, eps, momentum) on (N, F) or (N, C, H, W):
// PyTorch's BatchNorm1d/2d with weight (γ = 1), bias (β = 0), running_mean (0), running_var (1).
// To Sequential's fusion pass (fuse.hpp) it takes a rectifier and a max-pool into its op, and in
// eval mode it is an affine map that a convolution before it folds in. Its forward is final.
#pragma once

#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../ops/batchnorm.hpp"
#include "fuse.hpp"
#include "module.hpp"

namespace tessera::nn {

template <class T>
class BatchNorm : public Module<T>, public EpilogueLayer<T>, public AffineLayer<T> {
 public:
  Var<T> weight, bias, running_mean, running_var;

  explicit BatchNorm(std::size_t features, double eps = 1e-5, double momentum = 0.1)
      : features_(features), eps_(eps), momentum_(momentum) {
    weight = this->register_parameter("weight", Tensor<T>::ones({features}));
    bias = this->register_parameter("bias", Tensor<T>::zeros({features}));
    running_mean = this->register_buffer("running_mean", Tensor<T>::zeros({features}));
    running_var = this->register_buffer("running_var", Tensor<T>::ones({features}));
  }

  Var<T> forward(const Var<T>& x) final { return forward_fused(x, Rectifier{}, 0); }

  /// forward(x) followed by the rectifier, and then by a max_pool × max_pool max-pool of stride
  /// max_pool if max_pool > 0, in one op (Sequential fuses BatchNorm + ReLU or LeakyReLU
  /// [+ MaxPool2D(k)] this way): passes over memory fewer each way, tensors fewer kept.
  std::size_t largest_fused_pool() const final { return 16; }
  Var<T> forward_fused(const Var<T>& x, Rectifier rectifier, std::size_t max_pool) final {
    return batch_norm(x, weight, bias, running_mean.value(), running_var.value(), this->is_training(), T(momentum_),
                      T(eps_), rectifier, max_pool);
  }

  /// In eval mode, the affine map it is (inference_affine), over the channels its weight has.
  std::optional<std::size_t> affine_channels() const final {
    if (this->is_training() || weight.shape().size() != 1) return std::nullopt;
    return weight.shape()[0];
  }
  std::pair<Tensor<T>, Tensor<T>> affine_map() const final { return inference_affine(); }

  /// Eval mode's map as the affine z = scale·x + shift it is, per channel: scale = γ/√(σ² + ε),
  /// shift = β − μ·scale with the running statistics (what inference folds into the
  /// convolution before it).
  std::pair<Tensor<T>, Tensor<T>> inference_affine() const {
    for (const Var<T>* t : {&weight, &bias, &running_mean, &running_var})
      TESSERA_CHECK(t->shape() == Shape{features_}, repr() << ": weight " << weight.shape() << ", bias " << bias.shape()
                                                          << ", running_mean " << running_mean.shape() << ", running_var "
                                                          << running_var.shape() << " must each be (" << features_ << ")");
    Tensor<T> scale = Tensor<T>::empty({features_}), shift = Tensor<T>::empty({features_});
    for (std::size_t c = 0; c < features_; ++c) {
      scale[c] = weight.value()[c] / std::sqrt(running_var.value()[c] + T(eps_));
      shift[c] = bias.value()[c] - running_mean.value()[c] * scale[c];
    }
    return {std::move(scale), std::move(shift)};
  }

  double momentum() const { return momentum_; }
  void set_momentum(double momentum) { momentum_ = momentum; }

  std::string repr() const override {
    std::ostringstream os;
    os << "BatchNorm(" << features_ << ", eps=" << eps_ << ", momentum=" << momentum_ << ')';
    return os.str();
  }

 private:
  std::size_t features_;
  double eps_, momentum_;
};

/// Recomputes the running statistics of every BatchNorm in `module` as the plain average over
/// the passes forward(0), …, forward(batches − 1), run in training mode without a graph: for
/// weights whose stored statistics belong to other weights, such as a weight average (SWA's
/// bn_update, Izmailov et al. 2018). Batch k enters with momentum 1/(k + 1): a running mean of
/// the batches' statistics. Every module's mode and momentum come back after, also on error.
template <class T, class Forward>
void recompute_batch_norm_statistics(Module<T>& module, std::size_t batches, Forward&& forward) {
  struct RestoreMomenta {
    std::vector<std::pair<BatchNorm<T>*, double>> saved;
    ~RestoreMomenta() {
      for (auto& [norm, momentum] : saved) norm->set_momentum(momentum);
    }
  } momenta;
  for (auto& [name, m] : module.named_modules())
    if (auto* norm = dynamic_cast<BatchNorm<T>*>(m)) momenta.saved.emplace_back(norm, norm->momentum());
  ModeGuard<T> training(module, /*training=*/true);
  NoGradGuard no_graph;
  for (std::size_t k = 0; k < batches; ++k) {
    for (auto& [norm, momentum] : momenta.saved) norm->set_momentum(1.0 / double(k + 1));
    forward(k);
  }
}

}  // namespace tessera::nn
