// tessera/nn/sequential.hpp — Sequential<T>: layers applied in order, named "0", "1", ... as in
// PyTorch's nn.Sequential, so state-dict names match ("0.weight", "2.running_mean"). A
// BatchNorm followed by a ReLU or LeakyReLU, and by a MaxPool2D(k) after that, runs as one
// fused op; so does a Conv2D followed by a ReLU or LeakyReLU. At inference (eval mode, no
// graph) a Conv2D followed by such a BatchNorm [+ rectifier [+ MaxPool2D(k)]] is one op too,
// the BatchNorm folded into the convolution's weights.
#pragma once

#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "activations.hpp"
#include "batchnorm.hpp"
#include "conv2d.hpp"
#include "module.hpp"
#include "pooling.hpp"

namespace tessera::nn {

template <class T>
class Sequential : public Module<T> {
 public:
  /// add<nn::Dense>(100, 10): a layer template, instantiated with this model's T.
  template <template <class> class Layer, class... Args>
  Layer<T>& add(Args&&... args) {
    return add(std::make_shared<Layer<T>>(std::forward<Args>(args)...));
  }
  /// add<MyBlock>(...): a full layer type.
  template <class Layer, class... Args>
  Layer& add(Args&&... args) {
    return add(std::make_shared<Layer>(std::forward<Args>(args)...));
  }
  /// add(std::make_shared<...>(...)): an already-built layer.
  template <class Layer>
  Layer& add(std::shared_ptr<Layer> layer) {
    this->register_module(std::to_string(layers_.size()), layer);
    layers_.push_back(layer);
    return *layer;
  }

  Var<T> forward(const Var<T>& x) override {
    Var<T> h = x;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      if (folds_batch_norm(i)) {  // inference: layers i, i + 1 (, i + 2 (, i + 3)) as one op
        const auto slope = rectifier_after(i + 1);
        const std::size_t pool = slope ? fused_max_pool(i + 3) : 0, last = i + 1 + (slope ? 1 : 0) + (pool ? 1 : 0);
        ProfileScope scope([&] { return label(i, last); });
        const auto [scale, shift] = static_cast<const BatchNorm<T>&>(*layers_[i + 1]).inference_affine();
        const Rectifier rectifier = slope ? Rectifier{true, *slope} : Rectifier{};
        h = static_cast<Conv2D<T>&>(*layers_[i]).forward_folded(h, scale, shift, rectifier, pool);
        i = last;
        continue;
      }
      const auto slope = rectifier_after(i);
      if (slope && typeid(*layers_[i]) == typeid(Conv2D<T>)) {  // layers i and i + 1 as one op
        ProfileScope scope([&] { return label(i, i + 1); });
        h = static_cast<Conv2D<T>&>(*layers_[i]).forward_rectified(h, *slope);
        ++i;
        continue;
      }
      if (slope && typeid(*layers_[i]) == typeid(BatchNorm<T>)) {  // layers i, i + 1 (and i + 2) as one op
        const std::size_t pool = fused_max_pool(i + 2), last = i + (pool ? 2 : 1);
        ProfileScope scope([&] { return label(i, last); });
        h = static_cast<BatchNorm<T>&>(*layers_[i]).forward_rectified(h, *slope, pool);
        i = last;
        continue;
      }
      ProfileScope scope([&] { return label(i, i); });
      h = layers_[i]->forward(h);
    }
    return h;
  }

  std::size_t size() const { return layers_.size(); }
  Module<T>& operator[](std::size_t i) {
    TESSERA_CHECK(i < layers_.size(), "Sequential: layer " << i << " of " << layers_.size());
    return *layers_[i];
  }

  /// Multi-line listing, as PyTorch prints a Sequential.
  std::string repr() const override {
    std::ostringstream os;
    os << "Sequential(";
    for (std::size_t i = 0; i < layers_.size(); ++i) os << "\n  (" << i << "): " << layers_[i]->repr();
    os << (layers_.empty() ? ")" : "\n)");
    return os.str();
  }

 private:
  /// Whether layers i, i + 1 are a Conv2D and an eval-mode BatchNorm, exactly, with no graph
  /// being recorded: the BatchNorm is then an affine map that folds into the convolution's
  /// weights (as torch.jit.freeze folds conv + bn), and a rectifier and max-pool after it run
  /// on each image's output in cache: one op and one pass over memory for up to four layers.
  /// (A BatchNorm of another size than the convolution's output runs unfolded, to report it.)
  bool folds_batch_norm(std::size_t i) const {
    if (grad_enabled() || i + 1 >= layers_.size() || typeid(*layers_[i]) != typeid(Conv2D<T>) ||
        typeid(*layers_[i + 1]) != typeid(BatchNorm<T>) || layers_[i + 1]->is_training())
      return false;
    const auto& conv = static_cast<const Conv2D<T>&>(*layers_[i]);
    return static_cast<const BatchNorm<T>&>(*layers_[i + 1]).weight.shape() == Shape{conv.weight.shape()[0]};
  }

  /// The rectifier's slope when layer i + 1 is a ReLU (0) or a LeakyReLU with α ≥ 0 (α), of
  /// exactly those types: a BatchNorm or Conv2D at layer i then applies it in its own pass,
  /// with the same numbers (a NaN stays NaN where relu() would make it 0).
  std::optional<double> rectifier_after(std::size_t i) const {
    if (i + 1 >= layers_.size()) return std::nullopt;
    const Module<T>& next = *layers_[i + 1];
    if (typeid(next) == typeid(ReLU<T>)) return 0.0;
    if (typeid(next) == typeid(LeakyReLU<T>) && static_cast<const LeakyReLU<T>&>(next).alpha() >= 0)
      return static_cast<const LeakyReLU<T>&>(next).alpha();
    return std::nullopt;
  }

  /// The profiler's name for layers first..last run as one op: "4 Conv2D(...)", or
  /// "1-3 BatchNorm(...) + ReLU() + MaxPool2D(...)".
  std::string label(std::size_t first, std::size_t last) const {
    std::string name = std::to_string(first) + (last > first ? "-" + std::to_string(last) : "");
    for (std::size_t j = first; j <= last; ++j) name += (j == first ? " " : " + ") + layers_[j]->repr();
    return name;
  }

  /// k when layer i is a MaxPool2D(k) with stride k (windows that tile the plane), else 0.
  std::size_t fused_max_pool(std::size_t i) const {
    if (i >= layers_.size() || typeid(*layers_[i]) != typeid(MaxPool2D<T>)) return 0;
    const auto& pool = static_cast<const MaxPool2D<T>&>(*layers_[i]);
    return pool.stride() == pool.kernel() && pool.kernel() <= 16 ? pool.kernel() : 0;
  }

  std::vector<std::shared_ptr<Module<T>>> layers_;
};

}  // namespace tessera::nn
