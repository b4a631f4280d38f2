// GANs: the DCGAN and conditional GAN builders (shapes, Keras-translated names, errors,
// initialisation), FreezeGuard, what one GanTrainer step may and may not change, label
// smoothing against a hand computation, short training runs on tiny textures, and resuming
// from a checkpoint bit for bit.
#include "gradcheck.hpp"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

using namespace tessera;
using tessera::testing::error_of;
using tessera::testing::TempDir;

namespace {

std::vector<Tensor<float>> values_of(const nn::Module<float>& m) {
  std::vector<Tensor<float>> out;
  for (const auto& p : m.parameters()) out.push_back(p.value());
  return out;
}
// Gradients, an undefined tensor where a parameter has none.
std::vector<Tensor<float>> grads_of(const nn::Module<float>& m) {
  std::vector<Tensor<float>> out;
  for (const auto& p : m.parameters()) out.push_back(p.has_grad() ? p.grad() : Tensor<float>());
  return out;
}
bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
  if (a.defined() != b.defined()) return false;
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
bool all_same_bits(const std::vector<Tensor<float>>& a, const std::vector<Tensor<float>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same_bits(a[i], b[i])) return false;
  return true;
}

/// n procedural textures (channels, size, size) in [−1, 1], the generator's range.
Tensor<float> real_batch(std::size_t n, std::size_t size, std::size_t channels, std::uint64_t seed = 0) {
  data::ProceduralTextures textures(n, size, channels, seed);
  Tensor<float> images = Tensor<float>::empty({n, channels, size, size});
  for (std::size_t i = 0; i < n; ++i) {
    const Tensor<float> image = textures.get(i).image;
    std::memcpy(images.data() + i * image.size(), image.data(), image.size() * sizeof(float));
  }
  return models::to_tanh_range<float>(images);
}

/// Per gray image (N, 1, S, S): pixel mean, pixel standard deviation, mean |horizontal step|,
/// mean |vertical step| — contrast and edge density, what a blob of noise gets wrong.
Tensor<double> pixel_statistics(const Tensor<float>& images) {
  const std::size_t n = images.size(0), s = images.size(2);
  Tensor<double> f({n, 4});
  for (std::size_t i = 0; i < n; ++i) {
    const float* p = images.data() + i * s * s;
    double sum = 0, squares = 0, dx = 0, dy = 0;
    for (std::size_t y = 0; y < s; ++y)
      for (std::size_t x = 0; x < s; ++x) {
        sum += p[y * s + x];
        squares += double(p[y * s + x]) * p[y * s + x];
        if (x + 1 < s) dx += std::abs(p[y * s + x + 1] - p[y * s + x]);
        if (y + 1 < s) dy += std::abs(p[(y + 1) * s + x] - p[y * s + x]);
      }
    const double mean = sum / double(s * s);
    f.at(i, 0) = mean;
    f.at(i, 1) = std::sqrt(std::max(0.0, squares / double(s * s) - mean * mean));
    f.at(i, 2) = dx / double(s * (s - 1));
    f.at(i, 3) = dy / double(s * (s - 1));
  }
  return f;
}

/// Gray 16x16 stripes in [−1, 1]: horizontal for label 0, vertical for label 1, with a random
/// period (4–8 pixels), phase and pair of gray levels.
Tensor<float> stripes(const std::vector<std::int64_t>& labels, Rng& rng) {
  const std::size_t s = 16;
  Tensor<float> out = Tensor<float>::empty({labels.size(), 1, s, s});
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const double period = rng.uniform(4, 8), phase = rng.uniform(0, 1), dark = rng.uniform(-1, -0.2), light = rng.uniform(0.2, 1);
    for (std::size_t y = 0; y < s; ++y)
      for (std::size_t x = 0; x < s; ++x) {
        const double t = double(labels[i] == 0 ? y : x) / period + phase;
        out[(i * s + y) * s + x] = float(t - std::floor(t) < 0.5 ? dark : light);
      }
  }
  return out;
}

/// The mean (|horizontal step|, |vertical step|) of a batch of gray images.
std::pair<double, double> mean_steps(const Tensor<float>& images) {
  const Tensor<double> f = pixel_statistics(images);
  double dx = 0, dy = 0;
  for (std::size_t i = 0; i < f.size(0); ++i) dx += f.at(i, 2), dy += f.at(i, 3);
  return {dx / double(f.size(0)), dy / double(f.size(0))};
}

double bce_logit(double x, double t) { return std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::abs(x))); }

}  // namespace

TEST_CASE("DCGAN builders: image sizes, output shapes and errors", "[models][gan]") {
  manual_seed(1);
  Rng rng(1);
  for (auto [size, channels] : std::vector<std::pair<std::size_t, std::size_t>>{{16, 1}, {28, 1}, {32, 3}, {64, 3}}) {
    INFO("image size " << size << ", channels " << channels);
    models::Dcgan<float> gan({size, channels, 100});
    const Var<float> images = gan.generate(Var<float>(Tensor<float>::randn({2, 100}, rng)), {});
    CHECK(images.shape() == Shape{2, channels, size, size});
    for (float v : images.value()) REQUIRE(std::abs(v) <= 1.0f);  // tanh
    CHECK(gan.discriminate(images, {}).shape() == Shape{2, 1});
  }
  // the start size and the number of (transposed) convolutions
  CHECK(models::detail::dcgan_layout("t", 64).start == 8);
  CHECK(models::detail::dcgan_layout("t", 64).ups == 3);
  CHECK(models::detail::dcgan_layout("t", 28).start == 7);
  CHECK(models::detail::dcgan_layout("t", 28).ups == 2);
  CHECK(models::detail::dcgan_layout("t", 32).start == 4);
  CHECK(models::detail::dcgan_layout("t", 16).start == 2);
  CHECK(models::detail::dcgan_layout("t", 16).ups == 3);
  CHECK(models::detail::dcgan_layout("t", 48).start == 6);
  CHECK(models::detail::dcgan_layout("t", 48).ups == 3);

  for (std::size_t bad : {20, 30, 8, 12, 0}) {
    INFO("image size " << bad);
    CHECK_THAT(error_of([&] { models::Dcgan<float>({bad, 3, 100}); }),
               Catch::Contains("image size " + std::to_string(bad) + " is not supported"));
  }
  CHECK_THAT(error_of([] { models::dcgan_generator<float>({32, 2, 100}); }),
             Catch::Contains("dcgan_generator: channels must be 1 or 3, got 2"));
  models::Dcgan<float> gan({32, 3, 100});
  CHECK_THAT(error_of([&] { gan.generate(Var<float>(Tensor<float>::zeros({2, 64})), {}); }),
             Catch::Contains("Dcgan: noise z (2, 64) must be (N, 100)"));
  CHECK_THAT(error_of([&] { gan.discriminate(Var<float>(Tensor<float>::zeros({2, 1, 32, 32})), {}); }),
             Catch::Contains("Dcgan: images (2, 1, 32, 32) must be (N, 3, 32, 32)"));
}

TEST_CASE("DCGAN state-dict names are the Keras model's, translated", "[models][gan]") {
  models::Dcgan<float> gan({64, 3, 100});
  const std::vector<std::pair<std::string, Shape>> expected{
      {"generator.0.weight", {8192, 100}},       {"generator.0.bias", {8192}},
      {"generator.2.weight", {128}},             {"generator.2.bias", {128}},
      {"generator.4.weight", {128, 128, 4, 4}},  {"generator.4.bias", {128}},
      {"generator.5.weight", {128}},             {"generator.5.bias", {128}},
      {"generator.7.weight", {128, 64, 4, 4}},   {"generator.7.bias", {64}},
      {"generator.8.weight", {64}},              {"generator.8.bias", {64}},
      {"generator.10.weight", {64, 3, 4, 4}},    {"generator.10.bias", {3}},
      {"discriminator.0.weight", {64, 3, 4, 4}}, {"discriminator.0.bias", {64}},
      {"discriminator.2.weight", {128, 64, 4, 4}}, {"discriminator.2.bias", {128}},
      {"discriminator.3.weight", {128}},         {"discriminator.3.bias", {128}},
      {"discriminator.5.weight", {128, 128, 4, 4}}, {"discriminator.5.bias", {128}},
      {"discriminator.6.weight", {128}},         {"discriminator.6.bias", {128}},
      {"discriminator.10.weight", {1, 8192}},    {"discriminator.10.bias", {1}}};
  const auto params = gan.named_parameters();
  REQUIRE(params.size() == expected.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    CHECK(params[i].first == expected[i].first);
    CHECK(params[i].second.shape() == expected[i].second);
  }
  std::vector<std::string> buffers;
  for (const auto& [name, b] : gan.named_buffers()) buffers.push_back(name);
  CHECK(buffers == std::vector<std::string>{"generator.2.running_mean", "generator.2.running_var", "generator.5.running_mean",
                                            "generator.5.running_var", "generator.8.running_mean", "generator.8.running_var",
                                            "discriminator.3.running_mean", "discriminator.3.running_var",
                                            "discriminator.6.running_mean", "discriminator.6.running_var"});
  CHECK_THAT(gan.repr(), Catch::Contains("(10): Conv2DTranspose(64, 3, kernel=4, stride=2, padding=1, output_padding=0)"));
  CHECK_THAT(gan.repr(), Catch::Contains("(9): Dropout(0.5)"));

  // 16x16 has the same three layers from 2x2: D ends in 128 channels of 2x2; 28x28 has two from 7x7
  models::Dcgan<float> small({16, 1, 100});
  const auto small_params = small.named_parameters();
  CHECK(small_params[small_params.size() - 2].first == "discriminator.10.weight");
  CHECK(small_params[small_params.size() - 2].second.shape() == Shape{1, 128 * 2 * 2});
  models::Dcgan<float> mnist({28, 1, 100});
  CHECK(mnist.named_parameters()[0].second.shape() == Shape{128 * 7 * 7, 100});
  CHECK(mnist.named_parameters().back().second.shape() == Shape{1});
  CHECK(mnist.named_parameters()[mnist.named_parameters().size() - 2].second.shape() == Shape{1, 128 * 7 * 7});
}

TEST_CASE("dcgan_init_ draws Radford et al.'s initial weights", "[models][gan]") {
  manual_seed(2);
  models::Dcgan<float> gan({64, 3, 100});
  auto moments = [](const Tensor<float>& t) {
    double sum = 0, squares = 0;
    for (float v : t) sum += v, squares += double(v) * v;
    const double mean = sum / double(t.size());
    return std::pair<double, double>{mean, std::sqrt(squares / double(t.size()) - mean * mean)};
  };
  for (const auto& [name, p] : gan.named_parameters()) {
    INFO(name);
    const auto [mean, stddev] = moments(p.value());
    const bool batchnorm = name == "generator.2.weight" || name == "generator.5.weight" || name == "generator.8.weight" ||
                           name == "discriminator.3.weight" || name == "discriminator.6.weight";
    if (name.size() > 5 && name.substr(name.size() - 5) == ".bias") {
      CHECK(mean == 0.0);
      CHECK(stddev == 0.0);
    } else if (batchnorm) {
      CHECK(mean == Approx(1.0).margin(0.01));
      CHECK(stddev == Approx(0.02).margin(0.006));
    } else {  // convolutions and Dense: N(0, 0.02), thousands of values
      CHECK(mean == Approx(0.0).margin(0.002));
      CHECK(stddev == Approx(0.02).margin(0.001));
    }
  }
}

TEST_CASE("FreezeGuard: no gradient reaches a frozen module, requires_grad comes back", "[models][gan]") {
  nn::Dense<float> layer(3, 2);
  layer.bias.set_requires_grad(false);  // frozen before: stays frozen after
  Var<float> x(Tensor<float>::ones({4, 3}), true);
  {
    nn::FreezeGuard<float> frozen(layer);
    CHECK_FALSE(layer.weight.requires_grad());
    sum(layer(x)).backward();
  }
  CHECK(x.has_grad());  // the gradient still flows through to the input
  CHECK_FALSE(layer.weight.has_grad());
  CHECK(layer.weight.requires_grad());
  CHECK_FALSE(layer.bias.requires_grad());
}

TEST_CASE("a GAN step: D changes by the D update only, G by the G update only", "[models][gan]") {
  models::GanTrainerOptions options;
  options.diff_augment = GENERATE(false, true);  // G's gradient also flows through the augmentation
  CAPTURE(options.diff_augment);
  manual_seed(3);
  models::Dcgan<float> gan({16, 1, 100});
  models::GanTrainer<float> trainer(gan, options);
  const Tensor<float> real = real_batch(8, 16, 1);
  Rng rng(4);
  const Var<float> fake = gan.generate(Var<float>(Tensor<float>::randn({8, 100}, rng)), {});
  const auto g0 = values_of(*gan.G), d0 = values_of(*gan.D);

  const models::GanStepLosses d_losses = trainer.d_step(real, fake, {});
  CHECK(all_same_bits(values_of(*gan.G), g0));  // the fakes were detached: nothing reached G
  for (const auto& p : gan.G->parameters()) CHECK_FALSE(p.has_grad());
  const auto d1 = values_of(*gan.D), d1_grads = grads_of(*gan.D);
  for (std::size_t i = 0; i < d1.size(); ++i) {
    CHECK_FALSE(same_bits(d1[i], d0[i]));  // every D parameter moved
    CHECK(d1_grads[i].defined());
  }
  for (auto count : trainer.optimizer_d().step_counts()) CHECK(count == 1);
  for (auto count : trainer.optimizer_g().step_counts()) CHECK(count == 0);
  CHECK(d_losses.loss_d > 0);
  CHECK(d_losses.d_real > 0);
  CHECK(d_losses.d_real < 1);

  const double loss_g = trainer.g_step(fake, {});
  CHECK(loss_g > 0);
  CHECK(all_same_bits(values_of(*gan.D), d1));       // D frozen: values untouched
  CHECK(all_same_bits(grads_of(*gan.D), d1_grads));  // and its gradients hold nothing of loss_G
  for (auto count : trainer.optimizer_d().step_counts()) CHECK(count == 1);
  for (auto count : trainer.optimizer_g().step_counts()) CHECK(count == 1);
  const auto g1 = values_of(*gan.G);
  for (std::size_t i = 0; i < g1.size(); ++i) CHECK_FALSE(same_bits(g1[i], g0[i]));  // every G parameter moved
  for (const auto& p : gan.D->parameters()) CHECK(p.requires_grad());               // unfrozen again

  // step() is exactly: z from the rng, G once, the D half, the G half
  auto run = [&](bool whole) {
    manual_seed(5);
    models::Dcgan<float> g({16, 1, 100});
    models::GanTrainer<float> t(g, options);
    Rng noise(6);
    if (whole) {
      t.step(real, {}, noise);
    } else {
      const Var<float> f = g.generate(Var<float>(Tensor<float>::randn({8, 100}, noise)), {});
      t.d_step(real, f, {});
      t.g_step(f, {});
    }
    return values_of(g);
  };
  CHECK(all_same_bits(run(true), run(false)));
  CHECK_THAT(error_of([&] { trainer.g_step(fake.detach(), {}); }), Catch::Contains("not attached to the generator"));
}

TEST_CASE("DiffAugment: a random shift and cutout per image, differentiable", "[models][gan][gradcheck]") {
  const Tensor<double> ones = Tensor<double>::ones({6, 2, 16, 16});
  Rng rng(21);
  models::DiffAugmentOptions shift_only{0.125, 0};
  const Tensor<double> shifted = models::diff_augment(Var<double>(ones), rng, shift_only).value();
  models::DiffAugmentOptions cutout_only{0, 0.5};
  const Tensor<double> cut = models::diff_augment(Var<double>(ones), rng, cutout_only).value();
  std::set<double> kept_fractions;
  for (std::size_t n = 0; n < 6; ++n) {
    double kept = 0, cut_kept = 0;
    for (std::size_t c = 0; c < 2; ++c)
      for (std::size_t h = 0; h < 16; ++h)
        for (std::size_t w = 0; w < 16; ++w) {
          kept += shifted.at(n, c, h, w), cut_kept += cut.at(n, c, h, w);
          CHECK(cut.at(n, c, h, w) == cut.at(n, 0, h, w));  // one mask for all channels
        }
    // a shift of at most ±2 pixels keeps (16 − |dy|)(16 − |dx|) of each channel's 256 pixels
    CHECK(kept / 2 >= 14 * 14);
    kept_fractions.insert(kept);
    // an 8×8 square, clipped where it sticks out of the image: between a quarter of it and all of it
    CHECK(256 - cut_kept / 2 >= 16);
    CHECK(256 - cut_kept / 2 <= 64);
  }
  CHECK(kept_fractions.size() > 1);  // each image draws its own shift

  Var<double> x(Tensor<double>::randn({2, 3, 8, 8}, rng), true);
  tessera::testing::check_gradients("diff_augment", {x}, [&] {
    Rng same(22);  // the same shifts and cutouts at every evaluation
    return models::diff_augment(x, same);
  });
  CHECK_THROWS_AS(models::diff_augment(Var<double>(Tensor<double>::ones({2, 8})), rng), Error);
}

TEST_CASE("one-sided label smoothing: D's target for real images is 0.9", "[models][gan]") {
  const Tensor<float> real = real_batch(8, 16, 1, 1);
  auto check = [&](bool smoothing) {
    manual_seed(7);
    models::Dcgan<float> gan({16, 1, 100});
    models::GanTrainerOptions options;
    options.label_smoothing = smoothing;
    models::GanTrainer<float> trainer(gan, options);
    Rng rng(8);
    const Var<float> fake = gan.generate(Var<float>(Tensor<float>::randn({8, 100}, rng)), {});
    // D's logits as d_step will see them: the same dropout masks (default_rng rewound)
    const RngState dropout = default_rng().state();
    Tensor<float> real_logits, fake_logits;
    {
      NoGradGuard no_grad;
      real_logits = gan.discriminate(Var<float>(real), {}).value();
      fake_logits = gan.discriminate(fake.detach(), {}).value();
    }
    default_rng().set_state(dropout);
    double by_hand = 0, unsmoothed = 0, mean_real_logit = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      by_hand += (bce_logit(real_logits[i], smoothing ? 0.9 : 1.0) + bce_logit(fake_logits[i], 0.0)) / 8;
      unsmoothed += (bce_logit(real_logits[i], 1.0) + bce_logit(fake_logits[i], 0.0)) / 8;
      mean_real_logit += real_logits[i] / 8.0;
    }
    const double loss_d = trainer.d_step(real, fake, {}).loss_d;
    CHECK(loss_d == Approx(by_hand).epsilon(1e-5));
    if (smoothing) {  // −x·t with t = 0.9 instead of 1: the loss grows by 0.1·mean(x_real)
      REQUIRE(std::abs(mean_real_logit) > 1e-3);
      CHECK(loss_d - unsmoothed == Approx(0.1 * mean_real_logit).margin(1e-6));
    }
  };
  check(false);
  check(true);
  CHECK_THAT(error_of([] {
               models::Dcgan<float> gan({16, 1, 100});
               models::GanTrainerOptions options;
               options.smooth_real_label = 1.5;
               models::GanTrainer<float> trainer(gan, options);
             }),
             Catch::Contains("smooth_real_label must be in (0, 1]"));
}

TEST_CASE("GanTrainer clips each network's gradients by norm and by value before its step", "[models][gan]") {
  const Tensor<float> real = real_batch(8, 16, 1);
  auto gradients_after_step = [&](double max_norm, double max_value) {
    manual_seed(9);
    models::Dcgan<float> gan({16, 1, 32});
    models::GanTrainerOptions options;
    options.clip_grad_norm = max_norm;
    options.clip_grad_value = max_value;
    models::GanTrainer<float> trainer(gan, options);
    Rng noise(2);
    trainer.step(real, {}, noise);
    return std::pair(grads_of(*gan.D), grads_of(*gan.G));  // what each optimizer stepped with
  };
  auto norm = [](const std::vector<Tensor<float>>& grads) {
    double sum = 0;
    for (const auto& g : grads)
      for (float v : g) sum += double(v) * double(v);
    return std::sqrt(sum);
  };
  auto largest = [](const std::vector<Tensor<float>>& grads) {
    double m = 0;
    for (const auto& g : grads)
      for (float v : g) m = std::max(m, double(std::abs(v)));
    return m;
  };
  const auto [d_free, g_free] = gradients_after_step(0, 0);
  REQUIRE(norm(d_free) > 0.02);
  REQUIRE(norm(g_free) > 0.02);
  const auto [d_norm, g_norm] = gradients_after_step(0.02, 0);
  CHECK(norm(d_norm) == Approx(0.02).epsilon(1e-3));
  CHECK(norm(g_norm) == Approx(0.02).epsilon(1e-3));
  const double bound = 0.5 * std::min(largest(d_free), largest(g_free));
  const auto [d_value, g_value] = gradients_after_step(0, bound);
  CHECK(largest(d_value) == Approx(bound));
  CHECK(largest(g_value) == Approx(bound));
  CHECK_THAT(error_of([] {
               models::Dcgan<float> gan({16, 1, 32});
               models::GanTrainerOptions options;
               options.clip_grad_norm = -1;
               models::GanTrainer<float> trainer(gan, options);
             }),
             Catch::Contains("clip_grad_norm and clip_grad_value must be non-negative"));
}

TEST_CASE("a DCGAN learns the contrast and edges of 16x16 gray textures", "[models][gan][training]") {
  manual_seed(1);
  models::Dcgan<float> gan({16, 1, 32});
  models::GanTrainer<float> trainer(gan);
  data::ProceduralTextures textures(1024, 16, 1, 7);
  data::LoaderOptions options;
  options.batch_size = 16;
  options.seed = 3;
  data::DataLoader loader(textures, options);
  const auto real = metrics::feature_stats(pixel_statistics(real_batch(256, 16, 1, 7)));
  Rng noise(5), eval_noise(9);
  const Tensor<float> z = Tensor<float>::randn({256, 32}, eval_noise);
  auto distance = [&] { return metrics::frechet_distance(real, metrics::feature_stats(pixel_statistics(trainer.sample(z)))); };

  const double initial = distance();
  std::size_t step = 0;
  for (std::size_t epoch = 0; step < 600; ++epoch)
    for (const data::Batch& b : loader.epoch(epoch))
      if (step++ < 600) trainer.step(models::to_tanh_range<float>(b.images), b.labels, noise);
  const double trained = distance();
  // Fréchet distance of (mean, std, |dx|, |dy|) per image, 256 samples against 256 real images.
  // Measured after 600 steps of 16: 0.38 → 0.092 (24 %); with manual_seed 2 to 5 instead of 1:
  // 0.099, 0.135, 0.064, 0.086 (at most 35 %; after 400 steps one of the five was still at 65 %).
  // The untrained G draws faint fine-grained noise; the trained one has the textures' contrast
  // and edge density, though not yet their shapes.
  INFO("Fréchet distance of pixel statistics: " << initial << " → " << trained);
  CHECK(trained <= 0.5 * initial);
}

TEST_CASE("conditional GAN: a sample per requested label, names, errors", "[models][gan]") {
  manual_seed(4);
  models::ConditionalGan<float> gan({16, 1, 32, 4, 8});  // 4 classes, embeddings of 8
  models::GanTrainer<float> trainer(gan);
  Rng rng(1);
  const Tensor<float> z = Tensor<float>::randn({5, 32}, rng);
  const Tensor<float> images = trainer.sample(z, {0, 1, 2, 3, 0});
  CHECK(images.shape() == Shape{5, 1, 16, 16});
  CHECK(gan.discriminate(Var<float>(images), {0, 1, 2, 3, 0}).shape() == Shape{5, 1});
  // the same noise for another class gives another image
  const Tensor<float> other = trainer.sample(z, {1, 1, 2, 3, 0});
  double first_difference = 0, rest_difference = 0;
  for (std::size_t i = 0; i < 256; ++i) first_difference += std::abs(images[i] - other[i]);
  for (std::size_t i = 256; i < images.size(); ++i) rest_difference += std::abs(images[i] - other[i]);
  CHECK(first_difference > 0);
  CHECK(rest_difference == 0);  // eval mode: samples do not depend on each other

  std::vector<std::pair<std::string, Shape>> names;
  for (const auto& [name, p] : gan.named_parameters()) names.emplace_back(name, p.shape());
  CHECK(names.front() == std::pair<std::string, Shape>{"generator.embed.weight", {4, 8}});
  CHECK(names[1] == std::pair<std::string, Shape>{"generator.body.0.weight", {128 * 2 * 2, 32 + 8}});
  const auto d_names = gan.D->named_parameters();
  CHECK(d_names[0].first == "body.0.weight");
  CHECK(d_names[0].second.shape() == Shape{64, 1, 4, 4});
  CHECK(d_names[d_names.size() - 3].first == "head.weight");
  CHECK(d_names[d_names.size() - 3].second.shape() == Shape{1, 128 * 2 * 2});
  CHECK(d_names.back().first == "embed.weight");
  CHECK(d_names.back().second.shape() == Shape{4, 128 * 2 * 2});  // a direction in feature space per class
  // the projection: D(x, y) − D(x, y') = ⟨embed(y) − embed(y'), φ(x)⟩, so the head cancels
  {
    models::EvalMode<float> inference(*gan.D);
    const Tensor<float> phi = gan.D->body->forward(Var<float>(images)).value();
    const Tensor<float> as_0 = gan.discriminate(Var<float>(images), {0, 0, 0, 0, 0}).value();
    const Tensor<float> as_2 = gan.discriminate(Var<float>(images), {2, 2, 2, 2, 2}).value();
    const Tensor<float>& e = gan.D->embed->weight.value();
    for (std::size_t n = 0; n < 5; ++n) {
      double expected = 0;
      for (std::size_t f = 0; f < 512; ++f) expected += double(e.at(0, f) - e.at(2, f)) * phi.at(n, f);
      CHECK(double(as_0[n] - as_2[n]) == Approx(expected).margin(1e-4));
    }
  }

  CHECK_THAT(error_of([&] { trainer.sample(z, {0, 1}); }), Catch::Contains("ConditionalGenerator: 2 labels for a batch of 5"));
  CHECK_THAT(error_of([&] { trainer.sample(z, {0, 1, 2, 3, 4}); }),
             Catch::Contains("ConditionalGenerator: label 4 out of range for 4 classes"));
  CHECK_THAT(error_of([&] { gan.discriminate(Var<float>(images), {}); }),
             Catch::Contains("ConditionalDiscriminator: 0 labels for a batch of 5"));

  // a training step reaches both embeddings
  const auto g_embed = gan.G->embed->weight.value(), d_embed = gan.D->embed->weight.value();
  trainer.step(real_batch(8, 16, 1), {0, 1, 2, 3, 0, 1, 2, 3}, rng);
  CHECK_FALSE(same_bits(gan.G->embed->weight.value(), g_embed));
  CHECK_FALSE(same_bits(gan.D->embed->weight.value(), d_embed));
}

TEST_CASE("a conditional GAN learns to draw the class it is asked for", "[models][gan][training]") {
  manual_seed(3);
  models::ConditionalGan<float> gan({16, 1, 32, 2, 8});  // horizontal (0) or vertical (1) stripes
  models::GanTrainerOptions options;
  options.lr_g = options.lr_d = 1e-3;  // 2e-4 needs about three times as many steps
  models::GanTrainer<float> trainer(gan, options);
  Rng data(103), noise(203), eval_noise(3);
  for (std::size_t step = 0; step < 800; ++step) {
    std::vector<std::int64_t> labels(16);
    for (auto& label : labels) label = std::int64_t(data.below(2));
    trainer.step(stripes(labels, data), labels, noise);
  }
  // Mean (|dx|, |dy|) of 128 samples per class against the real classes' means. Measured after
  // 800 steps: class 0 samples (0.09, 0.47), class 1 samples (0.38, 0.08), real (0, 0.42) and
  // (0.43, 0); with manual_seed 1, 2, 4: (0.33, 0.42) / (0.53, 0.17), (0.10, 0.48) / (0.42, 0.15),
  // (0.13, 0.52) / (0.43, 0.15). At 400 steps the classes were not yet told apart.
  const Tensor<float> z = Tensor<float>::randn({128, 32}, eval_noise);
  std::pair<double, double> real[2], generated[2];
  for (std::int64_t k = 0; k < 2; ++k) {
    const std::vector<std::int64_t> labels(128, k);
    real[k] = mean_steps(stripes(labels, data));
    generated[k] = mean_steps(trainer.sample(z, labels));
  }
  auto distance = [](std::pair<double, double> a, std::pair<double, double> b) { return std::hypot(a.first - b.first, a.second - b.second); };
  for (int k = 0; k < 2; ++k) {
    INFO("class " << k << ": samples (" << generated[k].first << ", " << generated[k].second << "), real (" << real[k].first
                  << ", " << real[k].second << "), other class (" << real[1 - k].first << ", " << real[1 - k].second << ")");
    CHECK(distance(generated[k], real[k]) < distance(generated[k], real[1 - k]));
  }
  CHECK(generated[0].second > generated[0].first);  // horizontal stripes: steps going down
  CHECK(generated[1].first > generated[1].second);  // vertical: steps going across
}

TEST_CASE("a conditional GAN with the sngan recipe draws varied images of each class: diversity above a floor a collapsed G fails",
          "[models][gan][training]") {
  manual_seed(5);
  models::CganConfig config{16, 1, 32, 2, 8};
  config.conditional_batch_norm = true, config.spectral_norm = true, config.batch_norm_in_d = false, config.dropout = 0;
  models::ConditionalGan<float> gan(config);
  models::GanTrainerOptions options;  // the sngan recipe (train/gan_flags.hpp), at a higher learning rate
  options.loss = models::GanLoss::hinge;
  options.beta1 = 0, options.beta2 = 0.9;
  options.lr_g = options.lr_d = 1e-3;
  models::GanTrainer<float> trainer(gan, options);
  Rng data(105), noise(205), eval_noise(5);
  for (std::size_t step = 0; step < 800; ++step) {
    std::vector<std::int64_t> labels(16);
    for (auto& label : labels) label = std::int64_t(data.below(2));
    trainer.step(stripes(labels, data), labels, noise);
  }
  // Features: each image's mean, spread and mean steps across and down (pixel_statistics).
  // Measured: diversity 0.85 of the real images' (1.00 after 1000 steps; 0.72 with the label
  // embedding beside z in place of conditional BatchNorm), 0 for one image per class.
  std::vector<std::int64_t> labels(256);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = std::int64_t(i % 2);
  const Tensor<double> real = pixel_statistics(stripes(labels, data));
  const Tensor<double> generated = pixel_statistics(trainer.sample(Tensor<float>::randn({256, 32}, eval_noise), labels));
  const double diversity = metrics::intra_class_diversity(real, labels, generated, labels);
  // one image per class (the same z for all): what per-class mode collapse looks like
  const Tensor<float> one_z = Tensor<float>::randn({1, 32}, eval_noise);
  Tensor<float> same_z = Tensor<float>::empty({256, 32});
  for (std::size_t i = 0; i < same_z.size(); ++i) same_z[i] = one_z[i % 32];
  const double collapsed = metrics::intra_class_diversity(real, labels, pixel_statistics(trainer.sample(same_z, labels)), labels);
  const auto steps0 = mean_steps(trainer.sample(Tensor<float>::randn({128, 32}, eval_noise), std::vector<std::int64_t>(128, 0)));
  const auto steps1 = mean_steps(trainer.sample(Tensor<float>::randn({128, 32}, eval_noise), std::vector<std::int64_t>(128, 1)));
  INFO("diversity " << diversity << ", collapsed " << collapsed << "; class 0 steps (" << steps0.first << ", " << steps0.second
                    << "), class 1 (" << steps1.first << ", " << steps1.second << ")");
  CHECK(diversity > 0.5);
  CHECK(collapsed < 0.01);
  CHECK(steps0.second > steps0.first);  // and each class drawn as itself
  CHECK(steps1.first > steps1.second);
}

TEST_CASE("GanTrainer resumes from a checkpoint bit for bit", "[models][gan]") {
  std::vector<Tensor<float>> batches;
  for (std::uint64_t b = 0; b < 4; ++b) batches.push_back(real_batch(8, 16, 1, b));
  struct Run {
    models::Dcgan<float> gan{{16, 1, 32}};
    models::GanTrainer<float> trainer{gan, [] {
                                        models::GanTrainerOptions averaged;
                                        averaged.average_decay = 0.9;  // so the average differs from G
                                        return averaged;
                                      }()};
    Rng noise{21};
    io::Checkpoint<float> checkpoint;
    Run() {
      trainer.add_to(checkpoint);
      checkpoint.add("noise", noise).add("dropout_rng", default_rng());
    }
    void steps(const std::vector<Tensor<float>>& batches, std::size_t from, std::size_t to) {
      for (std::size_t i = from; i < to; ++i) trainer.step(batches[i], {}, noise);
    }
  };
  manual_seed(11);
  Run straight;
  straight.steps(batches, 0, 4);

  TempDir dir;
  manual_seed(11);
  {
    Run first;
    first.steps(batches, 0, 2);
    first.checkpoint.save(dir / "gan.tsr");
  }
  manual_seed(12);  // another initialisation and dropout stream, all replaced by the checkpoint
  Run resumed;
  resumed.noise = Rng(99);
  resumed.checkpoint.load(dir / "gan.tsr");
  resumed.steps(batches, 2, 4);

  CHECK(all_same_bits(values_of(resumed.gan), values_of(straight.gan)));
  const auto a = resumed.gan.named_buffers(), b = straight.gan.named_buffers();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(same_bits(a[i].second, b[i].second));
  CHECK(resumed.trainer.optimizer_g().step_counts() == straight.trainer.optimizer_g().step_counts());
  Rng z(3);
  const Tensor<float> noise_for_samples = Tensor<float>::randn({4, 32}, z);
  CHECK(same_bits(resumed.trainer.sample(noise_for_samples), straight.trainer.sample(noise_for_samples)));  // the average too
  Tensor<float> own;  // G's own weights draw something else than their average
  {
    models::EvalMode<float> inference(straight.gan.generator());
    own = straight.gan.generate(Var<float>(noise_for_samples), {}).value();
  }
  CHECK_FALSE(same_bits(own, straight.trainer.sample(noise_for_samples)));
}

TEST_CASE("GanTrainer stops on a non-finite loss before any weight changes", "[models][gan][errors]") {
  manual_seed(8);
  models::Dcgan<float> gan({16, 1, 32});
  models::GanTrainer<float> trainer(gan);
  Tensor<float> real = real_batch(8, 16, 1);
  real[5] = std::nanf("");  // a corrupt image
  const auto before = values_of(gan);
  Rng noise(1);
  CHECK_THAT(error_of([&] { trainer.step(real, {}, noise); }),
             Catch::Contains("GanTrainer: the discriminator's loss is NaN; stopped before updating any weight"));
  CHECK(all_same_bits(values_of(gan), before));
  CHECK(trainer.optimizer_d().step_counts()[0] == 0);
}

namespace {
// This process's resident memory in MB, open file descriptors and threads, from /proc.
struct ProcessUsage {
  double rss_mb = 0;
  std::size_t open_files = 0, threads = 0;
};
ProcessUsage process_usage() {
  ProcessUsage usage;
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  usage.rss_mb = double(resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
  for ([[maybe_unused]] const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) ++usage.open_files;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) ++usage.threads;
  return usage;
}
}  // namespace

// Hidden (run with `ctest -L soak`, or tessera_tests "[soak]"): 2000 GAN steps, with a
// checkpoint every 100, keep memory, files and threads flat after warm-up.
TEST_CASE("soak: 2000 GAN steps keep memory, open files and threads flat", "[.soak]") {
  manual_seed(9);
  models::Dcgan<float> gan({16, 1, 16});
  models::GanTrainer<float> trainer(gan);
  Rng noise(3);
  testing::TempDir dir;
  io::Checkpoint<float> checkpoint;
  trainer.add_to(checkpoint);
  data::ProceduralTextures textures(256, 16, 1, 0);
  data::LoaderOptions batches;
  batches.batch_size = 8;
  batches.drop_last = true;
  batches.prefetch = true;  // a worker thread per epoch, joined at its end
  data::DataLoader loader(textures, batches);
  ProcessUsage warm;
  std::size_t step = 0;
  for (std::size_t epoch = 0; step < 2000; ++epoch)
    for (const data::Batch& batch : loader.epoch(epoch)) {
      trainer.step(models::to_tanh_range<float>(batch.images), batch.labels, noise);
      if (++step % 100 == 0) checkpoint.save(dir / "soak.tsr");
      if (step == 200) warm = process_usage();
      if (step == 2000) break;
    }
  const ProcessUsage end = process_usage();
  INFO("RSS after 200 steps " << warm.rss_mb << " MB, after 2000 " << end.rss_mb << " MB; open files " << warm.open_files
                              << " → " << end.open_files << "; threads " << warm.threads << " → " << end.threads);
  WARN("RSS after 200 steps " << warm.rss_mb << " MB, after 2000 " << end.rss_mb << " MB");
  CHECK(end.rss_mb <= warm.rss_mb * 1.05 + 2.0);
  CHECK(end.open_files == warm.open_files);
  CHECK(end.threads <= warm.threads);
}
