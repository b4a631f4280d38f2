// tessera/nn/spectral_norm.hpp — spectral normalisation (Miyato, Kataoka, Koyama & Yoshida 2018):
// a layer's weight divided by its largest singular value σ, which keeps a discriminator
// 1-Lipschitz per layer. As torch.nn.utils.spectral_norm:
//   the weight, as a matrix W (the first axis against the rest; a transposed convolution's
//   (in, out, k, k) weight against its second axis, PyTorch's dim = 1), is registered again as
//   `weight_orig`, with buffers `weight_u` (its height) and `weight_v` (its width), each drawn
//   N(0, 1) and normalised. Every forward in training mode first runs n power iterations,
//       v ← W^T u / ‖W^T u‖,   u ← W v / ‖W v‖        (no gradient),
//   then the layer's weight is W / σ with σ = u^T W v, a function of W alone (u, v fixed), so
//   the gradient flows through σ as well. In eval mode σ comes from the stored u and v.
// State-dict names are PyTorch's: "weight_orig", "weight_u", "weight_v" (and "bias" as before),
// so a model moves between tessera and PyTorch through npz both ways.
//
//   auto conv = nn::spectral_norm(std::make_shared<nn::Conv2D<float>>(3, 64, 4, 2, 1));
//   D.add(conv);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <vector>

#include "../core/rng.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/reduce.hpp"
#include "conv2d.hpp"
#include "conv2d_transpose.hpp"
#include "dense.hpp"
#include "embedding.hpp"

namespace tessera::nn {

namespace detail {
/// How a weight is read as the matrix whose largest singular value spectral_norm divides by:
/// rows along axis `dim` (0, or 1 for a transposed convolution), columns over the rest.
struct WeightMatrix {
  std::size_t dim = 0, before = 1, rows = 0, after = 1;  // weight = (before, rows, after) with dim = 1

  WeightMatrix() = default;
  WeightMatrix(const Shape& shape, std::size_t axis) : dim(axis) {
    TESSERA_CHECK(axis < shape.size(), "spectral_norm: weight " << shape << " has no axis " << axis);
    for (std::size_t a = 0; a < axis; ++a) before *= shape[a];
    rows = shape[axis];
    for (std::size_t a = axis + 1; a < shape.size(); ++a) after *= shape[a];
  }
  std::size_t cols() const { return before * after; }
  /// Where entry (i, j) of the matrix lies in the weight: row i is position i on axis dim;
  /// column j runs over the other axes in order.
  std::size_t at(std::size_t i, std::size_t j) const { return ((j / after) * rows + i) * after + j % after; }
};

/// x / max(‖x‖, eps), in place (torch.nn.functional.normalize).
template <class T>
void normalize(Tensor<T>& x, double eps) {
  double squares = 0;
  for (T v : x) squares += double(v) * double(v);
  const T scale = T(1 / std::max(std::sqrt(squares), eps));
  for (T& v : x) v *= scale;
}

/// The spectral normalisation of one layer's weight: its state, and the hook that recomputes
/// the weight before each forward.
template <class T>
struct SpectralNormState {
  Var<T> weight_orig, u, v;
  WeightMatrix matrix;
  std::size_t iterations;
  double eps;

  /// visit(i, j, k) for every entry (i, j) of the matrix, at k in the weight: row by row,
  /// contiguous where the rows are the first axis.
  template <class Visit>
  void for_each_entry(Visit&& visit) const {
    for (std::size_t i = 0; i < matrix.rows; ++i)
      for (std::size_t j = 0; j < matrix.cols(); ++j) visit(i, j, matrix.dim == 0 ? i * matrix.cols() + j : matrix.at(i, j));
  }

  /// n power iterations on the stored u and v (no gradient), the sums in double.
  void power_iterations() {
    const T* w = weight_orig.value().data();
    Tensor<T>& uu = u.node()->value;
    Tensor<T>& vv = v.node()->value;
    std::vector<double> wt_u(matrix.cols()), w_v(matrix.rows);
    for (std::size_t it = 0; it < iterations; ++it) {
      std::fill(wt_u.begin(), wt_u.end(), 0.0);
      for_each_entry([&](std::size_t i, std::size_t j, std::size_t k) { wt_u[j] += double(w[k]) * double(uu[i]); });
      for (std::size_t j = 0; j < matrix.cols(); ++j) vv[j] = T(wt_u[j]);
      normalize(vv, eps);  // v = normalize(Wᵀ u)
      std::fill(w_v.begin(), w_v.end(), 0.0);
      for_each_entry([&](std::size_t i, std::size_t j, std::size_t k) { w_v[i] += double(w[k]) * double(vv[j]); });
      for (std::size_t i = 0; i < matrix.rows; ++i) uu[i] = T(w_v[i]);
      normalize(uu, eps);  // u = normalize(W v)
    }
  }

  /// W / σ, σ = uᵀ W v = Σ W ⊙ (u vᵀ laid out as W): a function of W, with u and v held fixed.
  Var<T> normalized_weight(bool training) {
    if (training && iterations > 0) power_iterations();
    const Tensor<T>& uu = u.value();
    const Tensor<T>& vv = v.value();
    Tensor<T> outer = Tensor<T>::empty(weight_orig.shape());
    for_each_entry([&](std::size_t i, std::size_t j, std::size_t k) { outer[k] = uu[i] * vv[j]; });
    const Var<T> sigma = sum(weight_orig * Var<T>(std::move(outer)));
    return weight_orig / sigma;
  }
};

/// The axis PyTorch's spectral_norm reads a layer's rows along: 1 for transposed convolutions.
template <class Layer>
constexpr std::size_t spectral_norm_dim() {
  using T = typename std::decay_t<decltype(std::declval<Layer>().weight.value())>::value_type;
  return std::is_base_of_v<Conv2DTranspose<T>, Layer> ? 1 : 0;
}
}  // namespace detail

/// Spectral normalisation of `layer`'s weight, in place (the top of this file). Layer: Dense,
/// Conv2D, Conv2DTranspose, Embedding (or a subclass). u and v are drawn from `rng`. Apply it
/// after any custom initialisation of the weight: weight_orig takes the weight's value.
template <class Layer>
Layer& spectral_norm(Layer& layer, std::size_t n_power_iterations = 1, double eps = 1e-12, Rng& rng = default_rng()) {
  using T = typename std::decay_t<decltype(layer.weight.value())>::value_type;
  static_assert(std::is_base_of_v<Module<T>, Layer>, "spectral_norm: a layer with a `weight`");
  TESSERA_CHECK(eps > 0, "spectral_norm: eps must be positive, got " << eps);
  auto state = std::make_shared<detail::SpectralNormState<T>>();
  const Var<T> weight = layer.take_parameter("weight");
  state->matrix = detail::WeightMatrix(weight.shape(), detail::spectral_norm_dim<Layer>());
  state->iterations = n_power_iterations;
  state->eps = eps;
  Tensor<T> u = Tensor<T>::randn({state->matrix.rows}, rng), v = Tensor<T>::randn({state->matrix.cols()}, rng);
  detail::normalize(u, eps);
  detail::normalize(v, eps);
  state->weight_orig = layer.register_parameter("weight_orig", weight.value());
  state->u = layer.register_buffer("weight_u", std::move(u));
  state->v = layer.register_buffer("weight_v", std::move(v));
  layer.weight = Var<T>(weight.value());  // (PyTorch's weight.data until the first forward)
  layer.add_forward_pre_hook([state](Module<T>& m) {
    static_cast<Layer&>(m).weight = state->normalized_weight(m.is_training());
  });
  return layer;
}

/// Spectral normalisation of every Dense, Conv2D, Conv2DTranspose and Embedding in `module` and
/// below it (an SNGAN discriminator), in module order.
template <class T>
void spectral_norm_every_layer(Module<T>& module, std::size_t n_power_iterations = 1, double eps = 1e-12) {
  for (auto& [name, m] : module.named_modules()) {
    if (auto* dense = dynamic_cast<Dense<T>*>(m)) spectral_norm(*dense, n_power_iterations, eps);
    if (auto* conv = dynamic_cast<Conv2D<T>*>(m)) spectral_norm(*conv, n_power_iterations, eps);
    if (auto* deconv = dynamic_cast<Conv2DTranspose<T>*>(m)) spectral_norm(*deconv, n_power_iterations, eps);
    if (auto* embedding = dynamic_cast<Embedding<T>*>(m)) spectral_norm(*embedding, n_power_iterations, eps);
  }
}

/// The same for a layer held by a shared pointer, returned for Sequential::add.
template <class Layer>
std::shared_ptr<Layer> spectral_norm(std::shared_ptr<Layer> layer, std::size_t n_power_iterations = 1, double eps = 1e-12) {
  spectral_norm(*layer, n_power_iterations, eps);
  return layer;
}

}  // namespace tessera::nn
