// tessera/models/dcgan.hpp — DCGAN (Radford, Metz & Chintala 2016) as in the Keras DCGAN
// example, translated layer by layer: builders for the generator and the discriminator, the
// paper's weight initialisation, and Dcgan<T>, the pair as one module ("generator.0.weight").
//
//   64×64, C channels, latent 100:
//   G: Dense(100, 128·8·8) Reshape(128, 8, 8) BatchNorm LeakyReLU(0.2)
//      Conv2DTranspose(128, 128, 4, 2, 1) BatchNorm LeakyReLU(0.2)          8 → 16
//      Conv2DTranspose(128, 64, 4, 2, 1) BatchNorm LeakyReLU(0.2)           16 → 32
//      Conv2DTranspose(64, C, 4, 2, 1) Tanh                                 32 → 64
//   D: Conv2D(C, 64, 4, 2, 1) LeakyReLU(0.2)                                64 → 32
//      Conv2D(64, 128, 4, 2, 1) BatchNorm LeakyReLU(0.2)                    32 → 16
//      Conv2D(128, 128, 4, 2, 1) BatchNorm LeakyReLU(0.2)                   16 → 8
//      Flatten Dropout(0.5) Dense(128·8·8, 1)                               a logit
// With spectral_norm and without batch_norm_in_d, D is SNGAN's: every layer spectrally normalised.
//
// Kernel 4, stride 2, padding 1 is Keras' padding='same'. Every multiple of 8 gets the same
// three layers, starting from size / 8 (32: 4×4 → 32×32); 28 halves twice, from 7×7 (MNIST's
// DCGAN). At 32×32, two layers from 8×8 had a texture-feature Fréchet distance of 0.60 of its
// initial value after 1500 steps, three layers 0.41–0.43 (same data, seed and step time).
#pragma once

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../nn/activations.hpp"
#include "../nn/batchnorm.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/conv2d_transpose.hpp"
#include "../nn/dense.hpp"
#include "../nn/dropout.hpp"
#include "../nn/init.hpp"
#include "../nn/minibatch_std.hpp"
#include "../nn/reshape.hpp"
#include "../nn/sequential.hpp"
#include "../nn/spectral_norm.hpp"
#include "gan.hpp"

namespace tessera::models {

struct DcganConfig {
  std::size_t image_size = 64;  // 28, or a multiple of 8 from 16
  std::size_t channels = 3;     // 1 (gray) or 3 (RGB)
  std::size_t latent = 100;     // width of the noise vector z
  // The discriminator: BatchNorm after its inner layers (Radford et al.'s; SNGAN's has none);
  // spectral normalisation on every layer (Miyato et al. 2018); the minibatch standard
  // deviation as one more feature map before its last layer (Karras et al. 2018); dropout
  // before its last layer.
  bool batch_norm_in_d = true;
  bool spectral_norm = false;
  bool minibatch_std = false;
  double dropout = 0.5;
};

namespace detail {

/// Where G starts (and D ends): start × start after `ups` halvings of the image size.
struct DcganLayout {
  std::size_t start = 0, ups = 0;
};

inline DcganLayout dcgan_layout(const char* model, std::size_t image_size) {
  TESSERA_CHECK(image_size == 28 || (image_size >= 16 && image_size % 8 == 0),
                model << ": image size " << image_size << " is not supported (28, or a multiple of 8 from 16: 16, 32, 64, ...)");
  return image_size == 28 ? DcganLayout{7, 2} : DcganLayout{image_size / 8, 3};
}

inline void check_dcgan_config(const char* model, const DcganConfig& config) {
  TESSERA_CHECK(config.channels == 1 || config.channels == 3,
                model << ": channels must be 1 or 3, got " << config.channels);
  TESSERA_CHECK(config.latent > 0, model << ": latent size must be positive");
  TESSERA_CHECK(config.dropout >= 0 && config.dropout < 1, model << ": dropout must be in [0, 1), got " << config.dropout);
  dcgan_layout(model, config.image_size);
}

/// G from a vector of `in_features` to (out_channels, size, size): hidden channels 128, the last 64.
template <class T>
std::shared_ptr<nn::Sequential<T>> dcgan_generator_body(const char* model, std::size_t image_size,
                                                        std::size_t out_channels, std::size_t in_features) {
  const DcganLayout layout = dcgan_layout(model, image_size);
  const std::size_t s = layout.start;
  auto G = std::make_shared<nn::Sequential<T>>();
  G->template add<nn::Dense>(in_features, 128 * s * s);
  G->template add<nn::Reshape>(Shape{128, s, s});
  G->template add<nn::BatchNorm>(128);
  G->template add<nn::LeakyReLU>(0.2);
  std::size_t in = 128;
  for (std::size_t i = 0; i < layout.ups; ++i) {
    const bool last = i + 1 == layout.ups;
    const std::size_t out = last ? out_channels : i + 2 == layout.ups ? 64 : 128;
    G->template add<nn::Conv2DTranspose>(in, out, 4, 2, 1);  // doubles the size
    if (!last) {
      G->template add<nn::BatchNorm>(out);
      G->template add<nn::LeakyReLU>(0.2);
    }
    in = out;
  }
  G->template add<nn::Tanh>();
  return G;
}

/// D's features, (channels, size, size) → a flat vector (dcgan_feature_size): channels 64, then
/// 128, each layer halving the size; BatchNorm after all but the first if asked, the minibatch
/// spread if asked, Flatten, Dropout.
template <class T>
std::shared_ptr<nn::Sequential<T>> dcgan_discriminator_features(const char* model, const DcganConfig& config) {
  const DcganLayout layout = dcgan_layout(model, config.image_size);
  auto D = std::make_shared<nn::Sequential<T>>();
  std::size_t in = config.channels;
  for (std::size_t i = 0; i < layout.ups; ++i) {
    const std::size_t out = i == 0 ? 64 : 128;
    D->template add<nn::Conv2D>(in, out, 4, 2, 1);  // halves the size
    if (i > 0 && config.batch_norm_in_d) D->template add<nn::BatchNorm>(out);  // none on the input layer (Radford et al.)
    D->template add<nn::LeakyReLU>(0.2);
    in = out;
  }
  if (config.minibatch_std) D->template add<nn::MinibatchStd>();
  D->template add<nn::Flatten>();
  if (config.dropout > 0) D->template add<nn::Dropout>(config.dropout);
  return D;
}

/// Width of dcgan_discriminator_features' output.
inline std::size_t dcgan_feature_size(const char* model, const DcganConfig& config) {
  const DcganLayout layout = dcgan_layout(model, config.image_size);
  return (128 + (config.minibatch_std ? 1 : 0)) * layout.start * layout.start;
}

/// D from (channels, size, size) to one logit: the features, then Dense(features, 1).
template <class T>
std::shared_ptr<nn::Sequential<T>> dcgan_discriminator_body(const char* model, const DcganConfig& config) {
  auto D = dcgan_discriminator_features<T>(model, config);
  D->template add<nn::Dense>(dcgan_feature_size(model, config), 1);
  return D;
}

/// A child's multi-line repr indented to sit inside its parent's.
inline std::string indent(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '\n' ? std::string("\n  ") : std::string(1, c);
  return out;
}

}  // namespace detail

/// The generator: z (N, latent) → images (N, channels, image_size, image_size) in [−1, 1].
template <class T>
std::shared_ptr<nn::Sequential<T>> dcgan_generator(const DcganConfig& config) {
  detail::check_dcgan_config("dcgan_generator", config);
  return detail::dcgan_generator_body<T>("dcgan_generator", config.image_size, config.channels, config.latent);
}

/// The discriminator: images (N, channels, image_size, image_size) → logits (N, 1).
template <class T>
std::shared_ptr<nn::Sequential<T>> dcgan_discriminator(const DcganConfig& config) {
  detail::check_dcgan_config("dcgan_discriminator", config);
  return detail::dcgan_discriminator_body<T>("dcgan_discriminator", config);
}

/// Radford et al.'s initialisation: every convolution and Dense weight N(0, 0.02), BatchNorm
/// weight N(1, 0.02), biases 0 (embeddings keep their N(0, 1)). Draws from `rng` in module order.
template <class T>
void dcgan_init_(nn::Module<T>& model, Rng& rng = default_rng()) {
  auto weight_and_bias = [&rng](Var<T>& weight, Var<T>& bias, double mean) {
    nn::init::normal_(weight.value(), mean, 0.02, rng);
    if (bias.defined()) nn::init::zeros_(bias.value());
  };
  model.apply([&](nn::Module<T>& m) {
    if (auto* conv = dynamic_cast<nn::Conv2D<T>*>(&m)) weight_and_bias(conv->weight, conv->bias, 0.0);
    if (auto* deconv = dynamic_cast<nn::Conv2DTranspose<T>*>(&m)) weight_and_bias(deconv->weight, deconv->bias, 0.0);
    if (auto* dense = dynamic_cast<nn::Dense<T>*>(&m)) weight_and_bias(dense->weight, dense->bias, 0.0);
    if (auto* bn = dynamic_cast<nn::BatchNorm<T>*>(&m)) weight_and_bias(bn->weight, bn->bias, 1.0);
  });
}

/// Generator and discriminator, DCGAN-initialised, as children "generator" and "discriminator".
template <class T>
class Dcgan : public Gan<T> {
 public:
  std::shared_ptr<nn::Sequential<T>> G, D;

  explicit Dcgan(const DcganConfig& config = {}) : config_(config) {
    G = this->register_module("generator", dcgan_generator<T>(config));
    D = this->register_module("discriminator", dcgan_discriminator<T>(config));
    dcgan_init_(*this);
    if (config.spectral_norm) nn::spectral_norm_every_layer(*D);  // after the init: weight_orig takes it
  }

  /// `labels` are ignored: an unconditional GAN.
  Var<T> generate(const Var<T>& z, const std::vector<std::int64_t>& /*labels*/) override {
    TESSERA_CHECK(z.shape().size() == 2 && z.shape()[1] == config_.latent,
                  "Dcgan: noise z " << z.shape() << " must be (N, " << config_.latent << ")");
    ProfileScope scope("G");
    return G->forward(z);
  }
  Var<T> discriminate(const Var<T>& x, const std::vector<std::int64_t>& /*labels*/) override {
    const std::size_t c = config_.channels, s = config_.image_size;
    TESSERA_CHECK(x.shape().size() == 4 && x.shape()[1] == c && x.shape()[2] == s && x.shape()[3] == s,
                  "Dcgan: images " << x.shape() << " must be (N, " << c << ", " << s << ", " << s << ")");
    ProfileScope scope("D");
    return D->forward(x);
  }

  nn::Module<T>& generator() override { return *G; }
  nn::Module<T>& discriminator() override { return *D; }
  std::size_t latent() const override { return config_.latent; }
  const DcganConfig& config() const { return config_; }

  std::string repr() const override {
    return "Dcgan(\n  (generator): " + detail::indent(G->repr()) + "\n  (discriminator): " + detail::indent(D->repr()) + "\n)";
  }

 private:
  DcganConfig config_;
};

}  // namespace tessera::models
