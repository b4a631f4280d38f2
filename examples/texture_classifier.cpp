// texture_classifier.cpp — trains a texture classifier (Conv-BN-ReLU-MaxPool blocks, global
// average pooling, Dense) on random crops of the built-in procedural textures (8 classes) or
// of your images (--data DIR, one subfolder per class), holding out --val-fraction of them.
// Each epoch: metrics.csv, loss plot, checkpoint (--resume continues identically). At the end:
// the held-out confusion matrix (confusion.csv), the trained classifier (classifier.tsr, for
// the GAN examples' --classifier) and, as the last line, "test accuracy: <fraction>".
//
//   texture_classifier                              # 64x64, 5000 textures, 10 epochs
//   texture_classifier --data dtd/images --epochs 30 --crop 56
#include <tessera/tessera.hpp>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
namespace ts = tessera;

int train(int argc, char** argv) {
  ts::train::Options opt;
  opt.image_size = 64;
  opt.epochs = 10;
  opt.batch = 32;
  opt.lr = 2e-3;
  std::size_t samples = 5000, crop = 0;
  double val_fraction = 0.2;
  ts::train::Cli cli("texture_classifier", "Trains a CNN to tell textures apart and reports its held-out accuracy.", opt);
  cli.add("--samples", samples, "procedural textures (without --data), training and held out", ts::train::Require::positive);
  cli.add("--crop", crop, "side of the random training crops; 0: three quarters of --image-size");
  cli.add("--val-fraction", val_fraction, "share of the images held out for testing", ts::train::Require::positive);
  cli.parse(argc, argv);
  if (opt.help) return 0;
  ts::manual_seed(opt.seed);
  if (crop == 0) crop = std::max<std::size_t>(8, opt.image_size * 3 / 4);

  // Data: (C, S, S) images in [0, 1]; the split is a function of the seed
  const auto data = ts::train::open_dataset(opt, samples);
  const std::size_t classes = data->classes().size();
  TESSERA_CHECK(classes >= 2, "--data: " << opt.data << " has " << classes << " class folder; a classifier needs at least 2");
  TESSERA_CHECK(crop <= opt.image_size, "--crop " << crop << " is larger than --image-size " << opt.image_size);
  const ts::data::TrainValSplit split = ts::train::hold_out(*data, val_fraction, opt, 1);
  ts::data::LoaderOptions batches = ts::train::training_batches(opt, split.train);
  batches.augment.crop = crop;  // textures are stationary: any window, mirrored or turned, is the same class
  batches.augment.hflip = batches.augment.vflip = batches.augment.rot90 = true;
  ts::data::DataLoader loader(*data, batches);
  ts::data::DataLoader test_loader(*data, ts::train::in_order(split.val, 100));  // whole images: the model pools globally

  const std::size_t channels = ts::train::channels_of(*data);
  ts::models::TextureClassifier<float> model(classes, channels);
  ts::optim::Adam<float> optimizer(model.parameters(), opt.lr);
  std::cout << model.repr() << ", " << model.parameters().size() << " parameter tensors; training on " << split.train.size()
            << " images (" << crop << "x" << crop << " crops), testing on " << split.val.size() << '\n';

  ts::io::Checkpoint<float> checkpoint;
  checkpoint.add("classifier", model).add("optimizer", optimizer).add("dropout_rng", ts::default_rng());
  ts::train::EpochLoop<float> loop(checkpoint, opt);  // --resume, progress, Ctrl-C, metrics.csv, checkpoints
  loop.plot("loss.png", "texture classifier");

  ts::models::ClassifierEvaluation test;
  const int status = loop.run(
      loader,
      [&](const ts::data::Batch& batch) -> ts::train::Values {
        optimizer.set_lr(opt.lr * ts::optim::cosine_decay(loop.epoch(), opt.epochs));
        const ts::Var<float> logits = model(ts::Var<float>(batch.images));
        ts::Var<float> loss = ts::nn::cross_entropy(logits, batch.labels);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        return {{"loss", loss.value().item()},
                {"accuracy", ts::metrics::accuracy(ts::metrics::argmax_rows(logits.value()), batch.labels)}};
      },
      [&](std::size_t, ts::train::Values& row) {
        test = ts::models::evaluate_classifier(model, test_loader);
        std::cout << "  held-out accuracy " << test.accuracy << '\n';
        row.emplace_back("test_accuracy", test.accuracy);
      });
  if (status != 0 || !loop.trained()) return status;  // interrupted (checkpoint saved), or nothing to train
  if (test.labels.empty()) test = ts::models::evaluate_classifier(model, test_loader);  // nothing left to train

  test.confusion.write_csv(opt.out + "/confusion.csv", data->classes());
  ts::models::save_texture_classifier(model, opt.out + "/classifier.tsr", data->classes());
  const auto recall = test.confusion.recall();
  for (std::size_t k = 0; k < classes; ++k) std::cout << "  " << data->classes()[k] << ": recall " << recall[k] << '\n';
  std::cout << "confusion matrix: " << opt.out << "/confusion.csv, classifier: " << opt.out << "/classifier.tsr (load with "
            << "models::load_texture_classifier(path, " << classes << ", " << channels << ")), metrics: " << opt.out << "/metrics.csv\n";
  std::cout << "test accuracy: " << test.accuracy << std::endl;
  return 0;
}

int main(int argc, char** argv) { return ts::train::run_example(argc, argv, train); }
