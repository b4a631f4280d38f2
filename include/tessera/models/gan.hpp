// tessera/models/gan.hpp — Gan<T>: what a GAN trainer needs of a generative adversarial network
// (Goodfellow et al. 2014), conditional or not: a generator G(z, y), a discriminator D(x, y)
// that returns logits, and both as modules (for optimizers, freezing and checkpoints).
// Implemented by Dcgan (labels ignored) and ConditionalGan.
#pragma once

#include <cstdint>
#include <vector>

#include "../nn/module.hpp"

namespace tessera::models {

template <class T>
class Gan : public nn::Module<T> {
 public:
  /// Images (N, C, H, W) in [−1, 1] from noise z (N, latent); `labels` (N classes, or empty
  /// for an unconditional GAN, which ignores them) say which class each image should be.
  virtual Var<T> generate(const Var<T>& z, const std::vector<std::int64_t>& labels) = 0;
  /// Logits (N, 1), positive for "real", for images (N, C, H, W) in [−1, 1] of classes `labels`.
  virtual Var<T> discriminate(const Var<T>& x, const std::vector<std::int64_t>& labels) = 0;

  virtual nn::Module<T>& generator() = 0;
  virtual nn::Module<T>& discriminator() = 0;
  /// Width of the noise vector z.
  virtual std::size_t latent() const = 0;
  /// Classes the generator can be asked for; 0 for an unconditional GAN.
  virtual std::size_t num_classes() const { return 0; }
};

}  // namespace tessera::models
