// cgan.cpp — trains a conditional DCGAN (Mirza & Osindero 2014) on textures: the built-in
// procedural textures (8 classes) by default, or your images (--data DIR, one subfolder per
// class). Asked for a class, the generator draws a texture of that class. Each epoch it writes
// a sample grid with one row per class (the same noise in every column, so a column shows one
// z drawn as each class), metrics.csv, a loss plot and a checkpoint (--resume continues it).
//
//   cgan                      # 32x32 RGB procedural textures, 6 epochs, 2 minutes on 2 cores
//   cgan --recipe sngan --classifier tc32/classifier.tsr   # class accuracy, diversity, precision, recall
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
  std::size_t samples = 4096, latent = 100, embed_dim = 50;
  bool conditional_bn = false;
  ts::train::GanFlags gan_flags;
  std::string classifier;
  ts::train::Cli cli("cgan", "Trains a class-conditional DCGAN on textures; samples one row per class.", opt);
  cli.add("--samples", samples, "procedural textures to train on (without --data)", ts::train::Require::positive);
  cli.add("--latent", latent, "size of the noise vector z", ts::train::Require::positive);
  cli.add("--embed-dim", embed_dim, "size of each class's learned embedding beside z", ts::train::Require::positive);
  cli.add("--conditional-bn", conditional_bn, "G learns each class's BatchNorm γ and β instead of an embedding beside z"
          " (default: with --recipe sngan)");
  gan_flags.add_to(cli);  // --recipe, --loss, --lr-d, --diff-augment, ...; --lr 0: the recipe's
  cli.add("--classifier", classifier,
          "texture_classifier checkpoint (same data and --image-size): report how many samples it gives their class, "
          "how varied each class's samples are, and the Fréchet distance, precision and recall of its features",
          "CHECKPOINT");
  cli.may_change_on_resume({"--classifier"});
  cli.parse(argc, argv);
  if (opt.help) return 0;
  ts::manual_seed(opt.seed);
  const ts::train::GanRecipe recipe = gan_flags.resolve(opt);

  // Data: images in [0, 1], (C, S, S), with their class labels
  const auto data = ts::train::open_dataset(opt, samples);
  const std::size_t classes = data->classes().size();
  ts::data::DataLoader loader(*data, ts::train::training_batches(opt));

  // G told the class by an embedding beside z, or by class-conditional BatchNorm (sngan); D a
  // projection discriminator
  ts::models::CganConfig config{opt.image_size, ts::train::channels_of(*data), latent, classes, embed_dim};
  config.conditional_batch_norm = conditional_bn || gan_flags.recipe == "sngan";
  config.batch_norm_in_d = recipe.batch_norm_in_d, config.spectral_norm = recipe.spectral_norm;
  config.minibatch_std = recipe.minibatch_std, config.dropout = recipe.dropout;
  ts::models::ConditionalGan<float> gan(config);
  ts::models::GanTrainer<float> trainer(gan, recipe.trainer);
  ts::Rng noise(opt.seed + 1);  // every step's z
  std::cout << gan.repr() << '\n';

  // The sample grid: row k is class k, column j the same z_j in every row
  const std::size_t columns = 8;
  ts::Rng fixed_noise_rng(opt.seed + 2);
  const ts::Tensor<float> column_z = ts::Tensor<float>::randn({columns, latent}, fixed_noise_rng);
  ts::Tensor<float> grid_z = ts::Tensor<float>::empty({classes * columns, latent});
  std::vector<std::int64_t> grid_labels;
  for (std::size_t i = 0; i < classes * columns; ++i) {
    for (std::size_t d = 0; d < latent; ++d) grid_z[i * latent + d] = column_z[(i % columns) * latent + d];
    grid_labels.push_back(std::int64_t(i / columns));
  }

  std::unique_ptr<ts::train::GanJudge> judge;  // a trained texture classifier's view of the samples
  if (!classifier.empty())
    judge = std::make_unique<ts::train::GanJudge>(
        ts::models::load_texture_classifier(classifier, classes, config.channels), *data, /*conditional=*/true);

  // Everything a bit-identical continuation needs
  ts::io::Checkpoint<float> checkpoint;
  trainer.add_to(checkpoint);  // G, D, their optimizers, G's average
  checkpoint.add("noise", noise).add("dropout_rng", ts::default_rng());
  ts::train::EpochLoop<float> loop(checkpoint, opt);  // --resume, progress, Ctrl-C, metrics.csv, checkpoints
  loop.plot("loss.png", "conditional GAN", {"loss_d", "loss_g"});
  if (judge) loop.plot("quality.png", "samples against real images", {"class_accuracy", "diversity", "precision", "recall"});

  const int status = loop.run(
      loader,
      [&](const ts::data::Batch& batch) -> ts::train::Values {  // fakes are asked for the batch's classes
        const auto l = trainer.step(ts::models::to_tanh_range<float>(batch.images), batch.labels, noise);
        return {{"loss_d", l.loss_d}, {"loss_g", l.loss_g}, {"d_real", l.d_real}, {"d_fake", l.d_fake}};
      },
      [&](std::size_t epoch, ts::train::Values& row) {
        ts::train::save_epoch_samples(trainer.sample(grid_z, grid_labels), opt.out, epoch, columns, {-1.f, 1.f});
        if (!judge) return;
        for (const auto& [name, value] : judge->judge(trainer, opt.seed + 3)) {
          row.emplace_back(name, value);
          std::cout << "  " << name << " " << value << '\n';
        }
      });
  if (status != 0 || !loop.trained()) return status;  // interrupted (checkpoint saved), or nothing to train
  std::cout << "samples (one row per class): " << opt.out << "/samples.png (per epoch: samples_epoch_NNN.png), losses: "
            << opt.out << "/metrics.csv and loss.png, checkpoint: " << opt.out << "/checkpoint.tsr\n";
  return 0;
}

int main(int argc, char** argv) { return ts::train::run_example(argc, argv, train); }
