// dcgan.cpp — trains a DCGAN (Radford et al. 2016) to make textures: the built-in procedural
// textures by default, or your own images (--data DIR, one subfolder per class). Each epoch it
// writes a grid of samples from the same fixed noise (so you watch the same 64 textures take
// shape), metrics.csv, a loss plot and a checkpoint to continue from (--resume).
//
//   dcgan                     # 32x32 RGB procedural textures: 6 epochs, 2 minutes on 2 cores,
//                             # rough texture patches; --epochs 32: stripes, waves, bricks, clouds
//   dcgan --data textures/ --image-size 64 --epochs 50
//   dcgan --classifier tc32/classifier.tsr   # a Fréchet distance (texture_classifier --image-size 32 --out tc32)
//   dcgan --samples 16384 --epochs 8 --diff-augment   # the README's measured run: distance 189 → 35
#include <tessera/tessera.hpp>

#include <iostream>
#include <memory>
namespace ts = tessera;

// The Fréchet distance between a trained texture classifier's features of 2048 real and 2048
// generated images (FID with a texture CNN in place of Inception; fewer images bias it upwards).
struct ClassifierFid {
  static constexpr std::size_t images = 2048, chunk = 256;
  std::shared_ptr<ts::models::TextureClassifier<float>> net;
  ts::metrics::FeatureStats real;
  // Features of images in [0, 1], `chunk` at a time, from next(k) for chunk k
  template <class Next>
  ts::metrics::FeatureStats stats(Next&& next) {
    ts::models::EvalMode<float> inference(*net);
    std::vector<ts::Var<float>> features;
    for (std::size_t k = 0; k < images / chunk; ++k) features.push_back(net->features(ts::Var<float>(next(k))));
    return ts::metrics::feature_stats(ts::concat(features, 0).value());
  }
  double of(ts::models::GanTrainer<float>& trainer, std::uint64_t seed) {
    ts::Rng z(seed);  // the same z every time, apart from the training noise
    return ts::metrics::frechet_distance(real, stats([&](std::size_t) {
      ts::Tensor<float> images = trainer.sample(chunk, {}, z);
      for (float& v : images) v = 0.5f * (v + 1);  // tanh range → the [0, 1] the classifier saw
      return images;
    }));
  }
};

int train(int argc, char** argv) {
  ts::train::Options opt;
  opt.image_size = 32;
  opt.epochs = 6;
  opt.batch = 16;  // more, smaller steps: what a GAN's first minutes need most
  opt.lr = 2e-4;
  std::size_t samples = 4096, latent = 100;
  ts::models::GanTrainerOptions settings;
  double lr_d = 0;
  std::string classifier;
  ts::train::Cli cli("dcgan", "Trains a DCGAN on textures and writes sample grids, metrics and checkpoints.", opt);
  cli.add("--samples", samples, "procedural textures to train on (without --data)", ts::train::Require::positive);
  cli.add("--latent", latent, "size of the noise vector z", ts::train::Require::positive);
  cli.add("--label-smoothing", settings.label_smoothing, "one-sided: the discriminator's target for real images is 0.9");
  cli.add("--lr-d", lr_d, "the discriminator's learning rate (0: --lr)", ts::train::Require::non_negative);
  cli.add("--clip-grad-norm", settings.clip_grad_norm, "clip each network's gradient norm to this (0: off)",
          ts::train::Require::non_negative);
  cli.add("--diff-augment", settings.diff_augment, "the discriminator sees real and fake images randomly shifted and cut out");
  cli.add("--average", settings.average_decay, "samples come from an exponential moving average of G with this decay (0: off)");
  cli.add("--classifier", classifier,
          "texture_classifier checkpoint (same data and --image-size): report the Fréchet distance of its features "
          "between samples and real images",
          "CHECKPOINT");
  cli.may_change_on_resume({"--label-smoothing", "--lr-d", "--clip-grad-norm", "--diff-augment", "--classifier"});
  cli.parse(argc, argv);
  if (opt.help) return 0;
  ts::manual_seed(opt.seed);

  // Data: images in [0, 1], (3, S, S)
  const auto data = ts::train::open_dataset(opt, samples);
  ts::data::DataLoader loader(*data, ts::train::training_batches(opt));

  // The model: G and D as in the Keras DCGAN example, trained as in the PyTorch tutorial
  ts::models::Dcgan<float> gan({opt.image_size, 3, latent});
  settings.lr_g = opt.lr;
  settings.lr_d = lr_d > 0 ? lr_d : opt.lr;
  ts::models::GanTrainer<float> trainer(gan, settings);
  ts::Rng noise(opt.seed + 1);  // every step's z
  ts::Rng fixed_noise_rng(opt.seed + 2);
  const ts::Tensor<float> fixed_z = ts::Tensor<float>::randn({64, latent}, fixed_noise_rng);
  std::cout << gan.repr() << '\n';

  ClassifierFid fid;
  if (!classifier.empty()) {
    fid.net = ts::models::load_texture_classifier(classifier, data->classes().size(), 3);
    ts::data::DataLoader first(*data, ts::train::in_order({}, ClassifierFid::chunk));  // the first 2048 images
    fid.real = fid.stats([&](std::size_t k) { return first.batch(0, k % first.batches_per_epoch()).images; });
  }

  // Everything a bit-identical continuation needs
  ts::io::Checkpoint<float> checkpoint;
  trainer.add_to(checkpoint);  // G, D, their optimizers, G's average
  checkpoint.add("noise", noise).add("dropout_rng", ts::default_rng());
  ts::train::EpochLoop<float> loop(checkpoint, opt);  // --resume, progress, Ctrl-C, metrics.csv, checkpoints
  loop.plot("loss.png", "DCGAN", {"loss_d", "loss_g"});
  if (fid.net && loop.at_start()) std::cout << "classifier Fréchet distance at initialisation " << fid.of(trainer, opt.seed + 3) << '\n';

  const int status = loop.run(
      loader,
      [&](const ts::data::Batch& batch) -> ts::train::Values {
        const auto l = trainer.step(ts::models::to_tanh_range<float>(batch.images), batch.labels, noise);
        return {{"loss_d", l.loss_d}, {"loss_g", l.loss_g}, {"d_real", l.d_real}, {"d_fake", l.d_fake}};
      },
      [&](std::size_t epoch, ts::train::Values& row) {
        ts::train::save_epoch_samples(trainer.sample(fixed_z), opt.out, epoch, 8, {-1.f, 1.f});
        if (!fid.net) return;
        row.emplace_back("classifier_fid", fid.of(trainer, opt.seed + 3));
        std::cout << "classifier Fréchet distance " << row.back().second << '\n';
      });
  if (status != 0 || !loop.trained()) return status;  // interrupted (checkpoint saved), or nothing to train
  std::cout << "samples: " << opt.out << "/samples.png (per epoch: samples_epoch_NNN.png), losses: " << opt.out
            << "/metrics.csv and loss.png, checkpoint: " << opt.out << "/checkpoint.tsr\n";
  return 0;
}

int main(int argc, char** argv) { return ts::train::run_example(argc, argv, train); }
