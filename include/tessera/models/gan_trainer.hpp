// tessera/models/gan_trainer.hpp — GanTrainer<T>: the alternating GAN update of the PyTorch
// DCGAN tutorial, for any Gan (Dcgan, ConditionalGan), with an Adam optimizer for each network.
// Each step, on a real batch and a fake batch G(z), z ~ N(0, 1), with D's outputs d:
//   D: loss_D = loss on D(real) + loss on D(fake.detach())
//   G: loss_G on D(fake), with D frozen (its parameters get no gradient)
// then G's weights are folded into their running average, which sample() draws from. The
// losses (GanLoss; target t = 1, or 0.9 with one-sided label smoothing):
//   non_saturating (Goodfellow et al. 2014): D bce(d_real, t) + bce(d_fake, 0), G bce(d_fake, 1)
//   hinge (Lim & Ye 2017; SNGAN): D mean relu(1 − d_real) + mean relu(1 + d_fake), G −mean d_fake
//   least_squares (Mao et al. 2017): D ½ mean (d_real − t)² + ½ mean d_fake², G ½ mean (d_fake − 1)²
// With diff_augment, D sees every batch, real and fake, through DiffAugment in both updates.
// Real images are expected in [−1, 1], the generator's tanh range (to_tanh_range).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "../autograd/var.hpp"
#include "../core/rng.hpp"
#include "../io/checkpoint.hpp"
#include "../nn/batchnorm.hpp"
#include "../nn/freeze.hpp"
#include "../nn/losses.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/reduce.hpp"
#include "../optim/adam.hpp"
#include "../optim/clip.hpp"
#include "../optim/weight_average.hpp"
#include "diff_augment.hpp"
#include "eval_mode.hpp"
#include "gan.hpp"

namespace tessera::models {

/// What the two networks minimise (the top of this file).
enum class GanLoss { non_saturating, hinge, least_squares };

struct GanTrainerOptions {
  GanLoss loss = GanLoss::non_saturating;
  double lr_g = 2e-4, lr_d = 2e-4;  // Radford et al.'s learning rate, for both networks
  double beta1 = 0.5, beta2 = 0.999;  // β1 = 0.5: the default 0.9 made their training oscillate
  bool label_smoothing = false;     // one-sided (Salimans et al. 2016): D's real target 0.9, fakes stay 0
  double smooth_real_label = 0.9;
  // sample() draws from an exponential moving average of G's weights with this decay (0: G's
  // own), its BatchNorm statistics recomputed for the averaged weights. Off by default: on the
  // procedural textures (32×32, batch 16, 16384 images) an average with 0.999 stayed further
  // from the data than G itself (classifier-feature Fréchet distance after 5 epochs 88.6 vs
  // 56.7); averaging G's weights across a moving GAN equilibrium blurs them.
  double average_decay = 0;
  // Gradient clipping between each backward and optimizer step, for both networks (0: off):
  // the joint 2-norm of a network's gradients to at most clip_grad_norm (a NaN/Inf norm is an
  // Error before that network's update), then each element into ±clip_grad_value.
  double clip_grad_norm = 0, clip_grad_value = 0;
  // DiffAugment (translation and cutout, diff_augment.hpp) on everything D sees, drawn from
  // default_rng(): keeps D from overpowering G on a finite training set.
  bool diff_augment = false;
};

/// D's loss on a batch of its outputs d for real or fake images (the top of this file); `target`
/// is the real images' (1, or 0.9 with one-sided label smoothing).
template <class T>
Var<T> gan_d_loss(GanLoss loss, const Var<T>& d, bool real, T target = T(1)) {
  const T aim = real ? target : T(0);
  switch (loss) {
    case GanLoss::hinge:
      return mean(relu(T(1) + (real ? -d : d)));
    case GanLoss::least_squares:
      return T(0.5) * mean(pow(d - aim, 2));
    case GanLoss::non_saturating:
      break;
  }
  return nn::bce_with_logits(d, Tensor<T>::full(d.shape(), aim));
}

/// G's loss on D's outputs d for its images.
template <class T>
Var<T> gan_g_loss(GanLoss loss, const Var<T>& d) {
  switch (loss) {
    case GanLoss::hinge:
      return -mean(d);
    case GanLoss::least_squares:
      return T(0.5) * mean(pow(d - T(1), 2));
    case GanLoss::non_saturating:
      break;
  }
  return nn::bce_with_logits(d, Tensor<T>::ones(d.shape()));
}

/// One step's numbers: the losses, and D's mean output on the real and fake batch (before D's
/// update): its probability "real" for the non-saturating loss (the tutorial's D(x) and
/// D(G(z))), its raw score for the others.
struct GanStepLosses {
  double loss_d = 0, loss_g = 0, d_real = 0, d_fake = 0;
};

/// Images in [0, 1] (a DataLoader batch) → [−1, 1], as type T.
template <class T>
Tensor<T> to_tanh_range(const Tensor<float>& images) {
  Tensor<T> out = Tensor<T>::empty(images.shape());
  for (std::size_t i = 0; i < images.size(); ++i) out[i] = T(2) * T(images[i]) - T(1);
  return out;
}

template <class T>
class GanTrainer {
 public:
  /// Keeps a reference to `gan`, which must outlive the trainer.
  explicit GanTrainer(Gan<T>& gan, GanTrainerOptions options = {})
      : gan_(gan), options_(options),
        opt_g_(gan.generator().parameters(), options.lr_g, options.beta1, options.beta2),
        opt_d_(gan.discriminator().parameters(), options.lr_d, options.beta1, options.beta2),
        average_g_(gan.generator(), options.average_decay) {
    TESSERA_CHECK(options.smooth_real_label > 0 && options.smooth_real_label <= 1,
                  "GanTrainer: smooth_real_label must be in (0, 1], got " << options.smooth_real_label);
    TESSERA_CHECK(options.clip_grad_norm >= 0 && options.clip_grad_value >= 0,
                  "GanTrainer: clip_grad_norm and clip_grad_value must be non-negative (0: off), got "
                      << options.clip_grad_norm << " and " << options.clip_grad_value);
  }

  /// One D update, then one G update, on `real` (N, C, H, W) in [−1, 1] with its labels (for a
  /// conditional GAN the fakes are asked for the same classes; empty for an unconditional one).
  /// Noise comes from `rng`; dropout and augmentation from default_rng().
  GanStepLosses step(const Tensor<T>& real, const std::vector<std::int64_t>& labels, Rng& rng) {
    TESSERA_CHECK(real.dim() == 4 && real.size(0) > 0, "GanTrainer::step: expected real images (N, C, H, W), got " << real.shape());
    const Var<T> z(Tensor<T>::randn({real.size(0), gan_.latent()}, rng));
    const Var<T> fake = gan_.generate(z, labels);  // G runs once; both updates use this batch
    GanStepLosses losses = d_step(real, fake, labels);
    losses.loss_g = g_step(fake, labels);
    average_g_.update();
    return losses;
  }

  /// The D half of step(): real and fake batches in separate forward passes (so BatchNorm
  /// normalises each on its own), the fakes detached so nothing flows into G. Each pass runs
  /// its backward before the next one starts: the gradients add up to those of the summed
  /// loss, and only one of D's graphs is alive at a time. Fills loss_d, d_real and d_fake.
  GanStepLosses d_step(const Tensor<T>& real, const Var<T>& fake, const std::vector<std::int64_t>& labels) {
    opt_d_.zero_grad();
    const Var<T> real_logits = discriminate(Var<T>(real), labels);
    Var<T> loss_real = d_loss(real_logits, /*real=*/true);
    require_finite("discriminator", loss_real);
    loss_real.backward();
    const Var<T> fake_logits = discriminate(fake.detach(), labels);
    Var<T> loss_fake = d_loss(fake_logits, /*real=*/false);
    require_finite("discriminator", loss_fake);
    loss_fake.backward();
    clip_gradients(gan_.discriminator());
    opt_d_.step();
    GanStepLosses out;
    out.loss_d = double(loss_real.value().item()) + double(loss_fake.value().item());
    out.d_real = mean_output(real_logits.value());
    out.d_fake = mean_output(fake_logits.value());
    return out;
  }

  /// The G half of step(): G is trained to make D say "real" for `fake` (still attached to G's
  /// graph). D's parameters are frozen meanwhile: their gradients and values stay as they were.
  double g_step(const Var<T>& fake, const std::vector<std::int64_t>& labels) {
    TESSERA_CHECK(fake.requires_grad(), "GanTrainer::g_step: the fake batch " << fake.shape()
                                                                               << " is not attached to the generator's graph");
    nn::FreezeGuard<T> frozen(gan_.discriminator());
    opt_g_.zero_grad();
    const Var<T> logits = discriminate(fake, labels);
    Var<T> loss = g_loss(logits);
    require_finite("generator", loss);
    loss.backward();
    clip_gradients(gan_.generator());
    opt_g_.step();
    return double(loss.value().item());
  }

  /// Generated images (N, C, H, W) in [−1, 1] for noise z (N, latent), from G's averaged
  /// weights in eval mode (BatchNorm's running statistics) and no graph; G's own weights and
  /// mode are restored after.
  Tensor<T> sample(const Tensor<T>& z, const std::vector<std::int64_t>& labels = {}) {
    const auto averaged = average_g_.swap_in();
    if (options_.average_decay > 0) recompute_average_batch_norm();
    EvalMode<T> inference(gan_.generator());
    return gan_.generate(Var<T>(z), labels).value();
  }
  /// The same for n fresh noise vectors from `rng`.
  Tensor<T> sample(std::size_t n, const std::vector<std::int64_t>& labels, Rng& rng) {
    return sample(Tensor<T>::randn({n, gan_.latent()}, rng), labels);
  }

  /// Adds what the trainer owns to `checkpoint`: "G", "D", "opt_g", "opt_d", "G_average". A
  /// bit-identical continuation also needs the noise Rng and default_rng() (dropout).
  void add_to(io::Checkpoint<T>& checkpoint) {
    checkpoint.add("G", gan_.generator()).add("D", gan_.discriminator());
    checkpoint.add("opt_g", opt_g_).add("opt_d", opt_d_).add("G_average", average_g_);
  }

  Gan<T>& gan() { return gan_; }
  optim::Adam<T>& optimizer_g() { return opt_g_; }  // for checkpoints
  optim::Adam<T>& optimizer_d() { return opt_d_; }
  optim::WeightAverage<T>& generator_average() { return average_g_; }
  const GanTrainerOptions& options() const { return options_; }

 private:
  // A NaN or Inf loss stops training before it reaches any weight: the last checkpoint stays
  // good. (set_detect_anomaly(true) then names the op that made it.)
  static void require_finite(const char* network, const Var<T>& loss) {
    const double value = double(loss.value().item());
    TESSERA_CHECK(std::isfinite(value), "GanTrainer: the " << network << "'s loss is " << number_text(value)
                                            << "; stopped before updating any weight (set_detect_anomaly(true) names the op)");
  }

  // The averaged weights' own BatchNorm statistics, from 8 batches of 64 fixed noise vectors
  // (and every class in turn): sample() stays a function of the weights.
  void recompute_average_batch_norm() {
    Rng rng(0xba7c4);
    const std::size_t batch = 64, classes = gan_.num_classes();
    nn::recompute_batch_norm_statistics(gan_.generator(), 8, [&](std::size_t k) {
      std::vector<std::int64_t> labels;
      for (std::size_t i = 0; classes > 0 && i < batch; ++i) labels.push_back(std::int64_t((k * batch + i) % classes));
      gan_.generate(Var<T>(Tensor<T>::randn({batch, gan_.latent()}, rng)), labels);
    });
  }

  Var<T> discriminate(const Var<T>& images, const std::vector<std::int64_t>& labels) {
    return gan_.discriminate(options_.diff_augment ? diff_augment(images, default_rng()) : images, labels);
  }

  void clip_gradients(nn::Module<T>& network) {
    if (options_.clip_grad_norm > 0) optim::clip_grad_norm_(network.parameters(), options_.clip_grad_norm);
    if (options_.clip_grad_value > 0) optim::clip_grad_value_(network.parameters(), options_.clip_grad_value);
  }

  Var<T> d_loss(const Var<T>& d, bool real) const {
    return gan_d_loss(options_.loss, d, real, options_.label_smoothing ? T(options_.smooth_real_label) : T(1));
  }
  Var<T> g_loss(const Var<T>& d) const { return gan_g_loss(options_.loss, d); }

  /// D's mean probability "real" (non-saturating), or its mean raw output.
  double mean_output(const Tensor<T>& logits) const {
    double sum = 0;
    for (T v : logits) sum += options_.loss == GanLoss::non_saturating ? 1.0 / (1.0 + std::exp(-double(v))) : double(v);
    return sum / double(logits.size());
  }

  Gan<T>& gan_;
  GanTrainerOptions options_;
  optim::Adam<T> opt_g_, opt_d_;
  optim::WeightAverage<T> average_g_;
};

}  // namespace tessera::models
