// cgan.cpp — trains a conditional DCGAN (Mirza & Osindero 2014) on textures: the built-in
// procedural textures (8 classes) by default, or your images (--data DIR, one subfolder per
// class). Asked for a class, the generator draws a texture of that class. Each epoch it writes
// a sample grid with one row per class (the same noise in every column, so a column shows one
// z drawn as each class), metrics.csv, a loss plot and a checkpoint (--resume continues it).
//
//   cgan                      # 32x32 RGB procedural textures, 6 epochs, 2 minutes on 2 cores
//   cgan --epochs 32 --label-smoothing --classifier tc32/classifier.tsr   # how often samples get their class
#include <tessera/tessera.hpp>

#include <iostream>
#include <memory>
namespace ts = tessera;

int train(int argc, char** argv) {
  ts::train::Options opt;
  opt.image_size = 32;
  opt.epochs = 6;
  opt.batch = 16;  // more, smaller steps: what a GAN's first minutes need most
  opt.lr = 2e-4;
  std::size_t samples = 4096, latent = 100, embed_dim = 50;
  ts::models::GanTrainerOptions settings;
  double lr_d = 0;
  std::string classifier;
  ts::train::Cli cli("cgan", "Trains a class-conditional DCGAN on textures; samples one row per class.", opt);
  cli.add("--samples", samples, "procedural textures to train on (without --data)", ts::train::Require::positive);
  cli.add("--latent", latent, "size of the noise vector z", ts::train::Require::positive);
  cli.add("--embed-dim", embed_dim, "size of each class's learned embedding", ts::train::Require::positive);
  cli.add("--label-smoothing", settings.label_smoothing, "one-sided: the discriminator's target for real images is 0.9");
  cli.add("--lr-d", lr_d, "the discriminator's learning rate (0: --lr)", ts::train::Require::non_negative);
  cli.add("--clip-grad-norm", settings.clip_grad_norm, "clip each network's gradient norm to this (0: off)",
          ts::train::Require::non_negative);
  cli.add("--diff-augment", settings.diff_augment, "the discriminator sees real and fake images randomly shifted and cut out");
  cli.add("--average", settings.average_decay, "samples come from an exponential moving average of G with this decay (0: off)");
  cli.add("--classifier", classifier,
          "texture_classifier checkpoint (same data and --image-size): report how many samples it gives their class",
          "CHECKPOINT");
  cli.may_change_on_resume({"--label-smoothing", "--lr-d", "--clip-grad-norm", "--diff-augment", "--classifier"});
  cli.parse(argc, argv);
  if (opt.help) return 0;
  ts::manual_seed(opt.seed);

  // Data: images in [0, 1], (3, S, S), with their class labels
  const auto data = ts::train::open_dataset(opt, samples);
  const std::size_t classes = data->classes().size();
  ts::data::DataLoader loader(*data, ts::train::training_batches(opt));

  ts::models::ConditionalGan<float> gan({opt.image_size, 3, latent, classes, embed_dim});
  settings.lr_g = opt.lr;
  settings.lr_d = lr_d > 0 ? lr_d : opt.lr;
  ts::models::GanTrainer<float> trainer(gan, settings);
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

  std::shared_ptr<ts::models::TextureClassifier<float>> judge;
  if (!classifier.empty()) judge = ts::models::load_texture_classifier(classifier, classes, 3);

  // Everything a bit-identical continuation needs
  ts::io::Checkpoint<float> checkpoint;
  trainer.add_to(checkpoint);  // G, D, their optimizers, G's average
  checkpoint.add("noise", noise).add("dropout_rng", ts::default_rng());
  ts::train::EpochLoop<float> loop(checkpoint, opt);  // --resume, progress, Ctrl-C, metrics.csv, checkpoints
  loop.plot("loss.png", "conditional GAN", {"loss_d", "loss_g"});

  const int status = loop.run(
      loader,
      [&](const ts::data::Batch& batch) -> ts::train::Values {  // fakes are asked for the batch's classes
        const auto l = trainer.step(ts::models::to_tanh_range<float>(batch.images), batch.labels, noise);
        return {{"loss_d", l.loss_d}, {"loss_g", l.loss_g}, {"d_real", l.d_real}, {"d_fake", l.d_fake}};
      },
      [&](std::size_t epoch, ts::train::Values& row) {
        ts::train::save_epoch_samples(trainer.sample(grid_z, grid_labels), opt.out, epoch, columns, {-1.f, 1.f});
        if (!judge) return;
        // 64 samples per class, classified: the share that gets the class asked for
        std::vector<std::int64_t> asked;
        for (std::size_t i = 0; i < 64 * classes; ++i) asked.push_back(std::int64_t(i % classes));
        ts::Rng judge_noise(opt.seed + 3);  // the same z every epoch, apart from the training noise
        ts::Tensor<float> images = trainer.sample(asked.size(), asked, judge_noise);
        for (float& v : images) v = 0.5f * (v + 1);  // tanh range → the [0, 1] the classifier saw
        ts::models::EvalMode<float> inference(*judge);
        const auto predicted = ts::metrics::argmax_rows((*judge)(ts::Var<float>(images)).value());
        row.emplace_back("class_accuracy", ts::metrics::accuracy(predicted, asked));
        std::cout << "samples classified as the class asked for: " << row.back().second << '\n';
      });
  if (status != 0 || !loop.trained()) return status;  // interrupted (checkpoint saved), or nothing to train
  std::cout << "samples (one row per class): " << opt.out << "/samples.png (per epoch: samples_epoch_NNN.png), losses: "
            << opt.out << "/metrics.csv and loss.png, checkpoint: " << opt.out << "/checkpoint.tsr\n";
  return 0;
}

int main(int argc, char** argv) { return ts::train::run_example(argc, argv, train); }
