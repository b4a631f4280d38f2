// dcgan.cpp — trains a DCGAN (Radford et al. 2016) to make textures: the built-in procedural
// textures by default, or your own images (--data DIR, one subfolder per class). Each epoch it
// writes a grid of samples from the same fixed noise (so you watch the same 64 textures take
// shape), metrics.csv, a loss plot and a checkpoint to continue from (--resume).
//
//   dcgan                     # 32x32 RGB procedural textures: 6 epochs, 2 minutes on 2 cores,
//                             # rough texture patches; --epochs 32: stripes, waves, bricks, clouds
//   dcgan --data textures/ --image-size 64 --epochs 50
//   dcgan --classifier tc32/classifier.tsr   # Fréchet distance, precision, recall (texture_classifier --image-size 32 --out tc32)
//   dcgan --recipe sngan      # spectral norm, hinge loss, TTUR, EMA (train/gan_flags.hpp)
//   dcgan --data faces/ --channels 1         # gray images: one channel in and out
#include <tessera/tessera.hpp>

#include <iostream>
#include <memory>
namespace ts = tessera;

int train(int argc, char** argv) {
  ts::train::Options opt;
  opt.image_size = 32;
  opt.epochs = 6;
  opt.batch = 16;  // more, smaller steps: what a GAN's first minutes need most
  opt.lr = 0;      // the recipe's
  std::size_t samples = 4096, latent = 100;
  ts::train::GanFlags gan_flags;
  std::string classifier;
  ts::train::Cli cli("dcgan", "Trains a DCGAN on textures and writes sample grids, metrics and checkpoints.", opt);
  cli.add("--samples", samples, "procedural textures to train on (without --data)", ts::train::Require::positive);
  cli.add("--latent", latent, "size of the noise vector z", ts::train::Require::positive);
  gan_flags.add_to(cli);  // --recipe, --loss, --lr-d, --diff-augment, ...; --lr 0: the recipe's
  cli.add("--classifier", classifier,
          "texture_classifier checkpoint (same data and --image-size): report the Fréchet distance, precision and "
          "recall of its features between samples and real images",
          "CHECKPOINT");
  cli.may_change_on_resume({"--classifier"});
  cli.parse(argc, argv);
  if (opt.help) return 0;
  ts::manual_seed(opt.seed);
  const ts::train::GanRecipe recipe = gan_flags.resolve(opt);

  // Data: images in [0, 1], (C, S, S)
  const auto data = ts::train::open_dataset(opt, samples);
  ts::data::DataLoader loader(*data, ts::train::training_batches(opt));

  // The model: G and D as in the Keras DCGAN example (SNGAN's D with --recipe sngan)
  ts::models::DcganConfig config{opt.image_size, ts::train::channels_of(*data), latent};
  config.batch_norm_in_d = recipe.batch_norm_in_d, config.spectral_norm = recipe.spectral_norm;
  config.minibatch_std = recipe.minibatch_std, config.dropout = recipe.dropout;
  ts::models::Dcgan<float> gan(config);
  ts::models::GanTrainer<float> trainer(gan, recipe.trainer);
  ts::Rng noise(opt.seed + 1);  // every step's z
  ts::Rng fixed_noise_rng(opt.seed + 2);
  const ts::Tensor<float> fixed_z = ts::Tensor<float>::randn({64, latent}, fixed_noise_rng);
  std::cout << gan.repr() << '\n';

  std::unique_ptr<ts::train::GanJudge> judge;  // a trained texture classifier's view of the samples
  if (!classifier.empty())
    judge = std::make_unique<ts::train::GanJudge>(
        ts::models::load_texture_classifier(classifier, data->classes().size(), config.channels), *data, /*conditional=*/false);

  // Everything a bit-identical continuation needs
  ts::io::Checkpoint<float> checkpoint;
  trainer.add_to(checkpoint);  // G, D, their optimizers, G's average
  checkpoint.add("noise", noise).add("dropout_rng", ts::default_rng());
  ts::train::EpochLoop<float> loop(checkpoint, opt);  // --resume, progress, Ctrl-C, metrics.csv, checkpoints
  loop.plot("loss.png", "DCGAN", {"loss_d", "loss_g"});
  if (judge) loop.plot("quality.png", "samples against real images", {"precision", "recall"});
  if (judge && loop.at_start())
    std::cout << "classifier Fréchet distance at initialisation " << judge->judge(trainer, opt.seed + 3)[0].second << '\n';

  const int status = loop.run(
      loader,
      [&](const ts::data::Batch& batch) -> ts::train::Values {
        const auto l = trainer.step(ts::models::to_tanh_range<float>(batch.images), batch.labels, noise);
        return {{"loss_d", l.loss_d}, {"loss_g", l.loss_g}, {"d_real", l.d_real}, {"d_fake", l.d_fake}};
      },
      [&](std::size_t epoch, ts::train::Values& row) {
        ts::train::save_epoch_samples(trainer.sample(fixed_z), opt.out, epoch, 8, {-1.f, 1.f});
        if (!judge) return;
        for (const auto& [name, value] : judge->judge(trainer, opt.seed + 3)) {
          row.emplace_back(name, value);
          std::cout << "  " << name << " " << value << '\n';
        }
      });
  if (status != 0 || !loop.trained()) return status;  // interrupted (checkpoint saved), or nothing to train
  std::cout << "samples: " << opt.out << "/samples.png (per epoch: samples_epoch_NNN.png), losses: " << opt.out
            << "/metrics.csv and loss.png, checkpoint: " << opt.out << "/checkpoint.tsr\n";
  return 0;
}

int main(int argc, char** argv) { return ts::train::run_example(argc, argv, train); }
