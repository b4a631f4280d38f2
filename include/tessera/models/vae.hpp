// tessera/models/vae.hpp — ConvVae: a convolutional variational autoencoder (Kingma & Welling
// 2014) for images in [0, 1], the Keras VAE example's recipe with DCGAN-style layers:
//
//   encoder  Conv2D(C→64, 4, 2, 1) LeakyReLU(0.2)  Conv2D(64→128, 4, 2, 1) BatchNorm LeakyReLU(0.2)
//            Flatten → two Dense heads, mu and logvar (for 32×32: 8192 → latent each)
//   decoder  Dense(latent → 128·s·s) Reshape(128, s, s) BatchNorm LeakyReLU(0.2),  s = size / 8
//            ConvT(128→128) BN LeakyReLU, ConvT(128→64) BN LeakyReLU, ConvT(64→C) Sigmoid  (k4 s2 p1)
//
//   models::ConvVae<float> vae({/*image_size=*/32, /*channels=*/3, /*latent=*/100});
//   Rng rng(1);
//   auto loss = vae.loss(Var<float>(batch.images), rng);   // total, reconstruction, kl
//   loss.total.backward();
//
// The loss is per image: reconstruction summed over the image's pixels and channels, KL summed
// over the latent features, both averaged over the batch (as Keras' VAE example). Summing over
// pixels puts the two terms on the scale of the evidence lower bound; a per-pixel mean would
// weigh the KL term C·H·W times more and blur the reconstructions.
#pragma once

#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../core/rng.hpp"
#include "../nn/activations.hpp"
#include "../nn/batchnorm.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/conv2d_transpose.hpp"
#include "../nn/dense.hpp"
#include "../nn/losses.hpp"
#include "../nn/reshape.hpp"
#include "../nn/sequential.hpp"
#include "../ops/elementwise.hpp"
#include "eval_mode.hpp"

namespace tessera::models {

/// How the decoder's output is compared with the input: Bernoulli likelihood (binary
/// cross-entropy, the usual choice for images in [0, 1]) or Gaussian (squared error).
enum class Reconstruction { bce, mse };

struct VaeConfig {
  std::size_t image_size = 32;  // square images, a multiple of 8
  std::size_t channels = 3;
  std::size_t latent = 100;
  Reconstruction reconstruction = Reconstruction::bce;
  double beta = 1.0;  // weight of the KL term (β-VAE, Higgins et al. 2017); 1 is the plain VAE
};

template <class T>
struct VaeOutput {
  Var<T> reconstruction;  // (N, C, H, W) in (0, 1)
  Var<T> mu, logvar;      // (N, latent): the approximate posterior N(mu, e^logvar)
};

template <class T>
struct VaeLoss {
  Var<T> total;           // reconstruction + β·kl, per image
  Var<T> reconstruction;  // summed over pixels, mean over the batch
  Var<T> kl;              // KL(q(z|x) ‖ N(0, I)) summed over latents, mean over the batch
};

template <class T>
class ConvVae : public nn::Module<T> {
 public:
  std::shared_ptr<nn::Sequential<T>> encoder, decoder;
  std::shared_ptr<nn::Dense<T>> mu_head, logvar_head;

  explicit ConvVae(VaeConfig config = {}) : config_(config) {
    const std::size_t size = config.image_size, C = config.channels, s = size / 8;
    TESSERA_CHECK(size >= 8 && size % 8 == 0, "ConvVae: image_size must be a positive multiple of 8, got " << size);
    TESSERA_CHECK(C > 0 && config.latent > 0, "ConvVae: channels and latent must be positive, got " << C << " and " << config.latent);
    TESSERA_CHECK(config.beta >= 0, "ConvVae: beta must be non-negative, got " << config.beta);
    const std::size_t flat = 128 * (size / 4) * (size / 4);
    encoder = this->register_module("encoder", std::make_shared<nn::Sequential<T>>());
    encoder->template add<nn::Conv2D>(C, 64, 4, 2, 1);
    encoder->template add<nn::LeakyReLU>(0.2);
    encoder->template add<nn::Conv2D>(64, 128, 4, 2, 1);
    encoder->template add<nn::BatchNorm>(128);
    encoder->template add<nn::LeakyReLU>(0.2);
    encoder->template add<nn::Flatten>();
    mu_head = this->register_module("mu", std::make_shared<nn::Dense<T>>(flat, config.latent));
    logvar_head = this->register_module("logvar", std::make_shared<nn::Dense<T>>(flat, config.latent));
    decoder = this->register_module("decoder", std::make_shared<nn::Sequential<T>>());
    decoder->template add<nn::Dense>(config.latent, 128 * s * s);
    decoder->template add<nn::Reshape>(Shape{128, s, s});
    decoder->template add<nn::BatchNorm>(128);
    decoder->template add<nn::LeakyReLU>(0.2);
    decoder->template add<nn::Conv2DTranspose>(128, 128, 4, 2, 1);  // s → 2s
    decoder->template add<nn::BatchNorm>(128);
    decoder->template add<nn::LeakyReLU>(0.2);
    decoder->template add<nn::Conv2DTranspose>(128, 64, 4, 2, 1);   // 2s → 4s
    decoder->template add<nn::BatchNorm>(64);
    decoder->template add<nn::LeakyReLU>(0.2);
    decoder->template add<nn::Conv2DTranspose>(64, C, 4, 2, 1);     // 4s → 8s = size
    decoder->template add<nn::Sigmoid>();
  }

  const VaeConfig& config() const { return config_; }

  /// The approximate posterior's parameters for images x (N, C, H, W).
  std::pair<Var<T>, Var<T>> encode(const Var<T>& x) {
    check_images(x, "encode");
    ProfileScope scope("encoder");
    const Var<T> h = encoder->forward(x);
    return {mu_head->forward(h), logvar_head->forward(h)};
  }

  /// Images (N, C, H, W) in (0, 1) from latents z (N, latent).
  Var<T> decode(const Var<T>& z) {
    TESSERA_CHECK(z.shape().size() == 2 && z.shape()[1] == config_.latent,
                  repr() << ": decode expects latents (N, " << config_.latent << "), got " << z.shape());
    ProfileScope scope("decoder");
    return decoder->forward(z);
  }

  /// z = mu + e^(logvar/2)·ε, ε ~ N(0, I) from `rng`: differentiable in mu and logvar.
  Var<T> reparameterize(const Var<T>& mu, const Var<T>& logvar, Rng& rng) {
    const Var<T> eps(Tensor<T>::randn(mu.shape(), rng));
    return mu + exp(logvar * T(0.5)) * eps;
  }

  using nn::Module<T>::forward;
  /// Encodes, draws z from the posterior with `rng`, decodes.
  VaeOutput<T> forward(const Var<T>& x, Rng& rng) {
    auto [mu, logvar] = encode(x);
    return {decode(reparameterize(mu, logvar, rng)), mu, logvar};
  }

  /// The negative evidence lower bound of x, per image (see the header comment).
  VaeLoss<T> loss(const Var<T>& x, Rng& rng) {
    const VaeOutput<T> out = forward(x, rng);
    return loss(x, out);
  }
  VaeLoss<T> loss(const Var<T>& x, const VaeOutput<T>& out) const {
    const T pixels = T(x.shape().numel(1, x.shape().size()));  // mean over pixels × pixels = sum per image
    const Var<T> target = x.detach();
    const Var<T> reconstruction = (config_.reconstruction == Reconstruction::bce ? nn::bce(out.reconstruction, target)
                                                                                 : nn::mse(out.reconstruction, target)) *
                                  pixels;
    const Var<T> kl = nn::kl_normal(out.mu, out.logvar);
    return {reconstruction + kl * T(config_.beta), reconstruction, kl};
  }

  /// n images decoded from the prior N(0, I), in eval mode.
  Tensor<T> sample(std::size_t n, Rng& rng) {
    TESSERA_CHECK(n > 0, repr() << ": sample needs n > 0");
    EvalMode<T> inference(*this);
    return decode(Var<T>(Tensor<T>::randn({n, config_.latent}, rng))).value();
  }

  /// Each image decoded from its posterior mean (no sampling), in eval mode.
  Tensor<T> reconstruct(const Tensor<T>& x) {
    EvalMode<T> inference(*this);
    return decode(encode(Var<T>(x)).first).value();
  }

  /// `steps` images (steps, C, H, W) decoded along the straight line between the posterior
  /// means of two images (C, H, W) or (1, C, H, W); the first and last decode the means.
  Tensor<T> interpolate(const Tensor<T>& x1, const Tensor<T>& x2, std::size_t steps) {
    TESSERA_CHECK(steps >= 2, repr() << ": interpolate needs at least 2 steps, got " << steps);
    EvalMode<T> inference(*this);
    const Tensor<T> m1 = encode(Var<T>(as_batch_of_one(x1))).first.value();
    const Tensor<T> m2 = encode(Var<T>(as_batch_of_one(x2))).first.value();
    const std::size_t L = config_.latent;
    Tensor<T> z = Tensor<T>::empty({steps, L});
    for (std::size_t i = 0; i < steps; ++i) {
      const T t = T(i) / T(steps - 1);
      for (std::size_t k = 0; k < L; ++k) z[i * L + k] = (T(1) - t) * m1[k] + t * m2[k];
    }
    return decode(Var<T>(std::move(z))).value();
  }

  std::string repr() const override {
    std::ostringstream os;
    os << "ConvVae(image_size=" << config_.image_size << ", channels=" << config_.channels << ", latent=" << config_.latent
       << ", reconstruction=" << (config_.reconstruction == Reconstruction::bce ? "bce" : "mse") << ", beta=" << config_.beta
       << ')';
    return os.str();
  }

 private:
  void check_images(const Var<T>& x, const char* op) const {
    const Shape& s = x.shape();
    TESSERA_CHECK(s.size() == 4 && s[0] > 0 && s[1] == config_.channels && s[2] == config_.image_size && s[3] == config_.image_size,
                  repr() << ": " << op << " expects images (N, " << config_.channels << ", " << config_.image_size << ", "
                         << config_.image_size << "), got " << s);
  }

  Tensor<T> as_batch_of_one(const Tensor<T>& image) const {
    if (image.dim() == 3) return image.reshape(Shape{1, image.size(0), image.size(1), image.size(2)});
    TESSERA_CHECK(image.dim() == 4 && image.size(0) == 1,
                  repr() << ": interpolate expects an image (C, H, W) or (1, C, H, W), got " << image.shape());
    return image;
  }

  VaeConfig config_;
};

}  // namespace tessera::models
