// tessera/nn/sequential.hpp — Sequential<T>: layers applied in order, named "0", "1", ... as in
// PyTorch's nn.Sequential, so state-dict names match ("0.weight", "2.running_mean"). Each
// forward runs the plan of the fusion pass (fuse.hpp): a Conv2D or BatchNorm followed by a
// ReLU or LeakyReLU (and a BatchNorm's by a MaxPool2D(k) after that) is one op; at inference
// (no graph) a Conv2D followed by a BatchNorm [+ rectifier [+ MaxPool2D(k)]] is one op, the
// BatchNorm folded into the convolution's weights. fusion() shows the plan.
#pragma once

#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/profile.hpp"
#include "fuse.hpp"
#include "module.hpp"

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
    for (const FusedRun& run : plan_fusion(layers_, !grad_enabled())) {
      ProfileScope scope([&] { return run_label(layers_, run); });
      h = forward_run(layers_, run, h);
    }
    return h;
  }

  /// The fusion pass's plan for a forward now (training or eval mode, with a graph or not), one
  /// run a line: "0-1 Conv2D(...) + LeakyReLU(0.2)  (fused)".
  std::string fusion() const { return describe(layers_, plan_fusion(layers_, !grad_enabled())); }

  std::size_t size() const { return layers_.size(); }
  Module<T>& operator[](std::size_t i) { return *child(i); }
  /// Layer i, shared (to build another network from it).
  const std::shared_ptr<Module<T>>& child(std::size_t i) const {
    TESSERA_CHECK(i < layers_.size(), "Sequential: layer " << i << " of " << layers_.size());
    return layers_[i];
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
  std::vector<std::shared_ptr<Module<T>>> layers_;
};

}  // namespace tessera::nn
