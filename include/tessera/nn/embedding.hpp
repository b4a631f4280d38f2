// tessera/nn/embedding.hpp — Embedding(num, dim): a learned vector per class label, PyTorch's
// nn.Embedding (weight (num, dim) ~ N(0, 1)). The conditional GAN embeds its labels with it.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../ops/shape.hpp"
#include "init.hpp"
#include "module.hpp"

namespace tessera::nn {

template <class T>
class Embedding : public Module<T> {
 public:
  Var<T> weight;

  Embedding(std::size_t num_embeddings, std::size_t dim) : num_(num_embeddings), dim_(dim) {
    weight = this->register_parameter("weight", Tensor<T>({num_embeddings, dim}));
    init::normal_(weight, 0.0, 1.0);
  }

  /// labels → (len, dim).
  Var<T> forward(const std::vector<std::int64_t>& labels) {
    this->run_forward_pre_hooks();
    return embedding(weight, labels);
  }

  /// The same from a tensor of whole-numbered labels (any shape, read in order), so the
  /// layer can sit in a Sequential.
  Var<T> forward(const Var<T>& labels) override {
    std::vector<std::int64_t> indices;
    for (T v : labels.value()) {
      TESSERA_CHECK(v == std::floor(v), repr() << ": label " << v << " is not a whole number");
      indices.push_back(static_cast<std::int64_t>(v));
    }
    return forward(indices);
  }

  std::string repr() const override { return "Embedding(" + std::to_string(num_) + ", " + std::to_string(dim_) + ")"; }

 private:
  std::size_t num_, dim_;
};

}  // namespace tessera::nn
