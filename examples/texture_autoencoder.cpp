// texture_autoencoder.cpp — trains a convolutional autoencoder on defect-free textures (the
// built-in procedural ones, or your images with --data DIR, all taken as defect-free) and
// detects defects by reconstruction error: held-out images are scored as they are and with a
// scratch or blob painted in (data::inject_defect; the same defects every epoch), giving the
// anomaly AUROC. Each epoch: metrics.csv, loss plot, checkpoint (--resume continues
// identically), anomaly_maps.png (rows: images, with a defect, the defects' anomaly maps).
// At the end: texture retrieval by descriptor, then "anomaly AUROC: <value>" as the last line.
//
//   texture_autoencoder                          # 64x64, 4000 textures, 10 epochs
//   texture_autoencoder --data textures/ --image-size 128 --epochs 30
#include <tessera/tessera.hpp>

#include <algorithm>
#include <iostream>
#include <memory>
#include <vector>
namespace ts = tessera;

// Held-out images (N, C, H, W), each also with a defect painted in.
struct TestSet {
  ts::Tensor<float> clean, defective;
  std::vector<std::int64_t> labels;
};

TestSet make_test_set(const ts::data::DataLoader& loader, std::uint64_t seed) {
  const ts::data::Batch all = loader.batch(0, 0);  // one batch: all of them
  const ts::Var<float> images(all.images);
  const std::size_t C = all.images.size(1), H = all.images.size(2), W = all.images.size(3);
  ts::Rng rng(seed);
  std::vector<ts::Var<float>> painted;
  for (std::size_t i = 0; i < all.labels.size(); ++i) {
    const ts::Tensor<float> image = ts::slice(images, i, i + 1).value().reshape({C, H, W});
    painted.emplace_back(ts::data::inject_defect(image, rng).image.reshape({1, C, H, W}));
  }
  return {all.images, ts::concat(painted, 0).value(), all.labels};
}

// (N, 1, H, W) → (N, 3, H, W): black → red → yellow → white at the largest value (grids clamp to [0, 1])
ts::Tensor<float> heat(const ts::Tensor<float>& maps) {
  const ts::Var<float> t = ts::Var<float>(maps) * (3 / std::max(1e-6f, *std::max_element(maps.begin(), maps.end())));
  return ts::concat<float>({t, t - 1.f, t - 2.f}, 1).value();
}

int train(int argc, char** argv) {
  ts::train::Options opt;
  opt.image_size = 64;
  opt.epochs = 10;
  opt.batch = 32;
  opt.lr = 2e-3;
  std::size_t samples = 4000, bottleneck = 64, smoothing = 3, test_images = 400;
  ts::train::Cli cli("texture_autoencoder", "Trains a texture autoencoder; detects injected defects by reconstruction error.", opt);
  cli.add("--samples", samples, "procedural textures (without --data), training and held out", ts::train::Require::positive);
  cli.add("--bottleneck", bottleneck, "channels of the code at 1/8 resolution", ts::train::Require::positive);
  cli.add("--smoothing", smoothing, "anomaly maps average errors over (2·N + 1)² windows");
  cli.add("--test-images", test_images, "images held out for the AUROC", ts::train::Require::positive);
  cli.may_change_on_resume({"--smoothing"});
  cli.parse(argc, argv);
  if (opt.help) return 0;
  ts::manual_seed(opt.seed);

  const auto data = ts::train::open_dataset(opt, samples);
  const double held_out = double(std::min(test_images, data->size() / 2)) / double(data->size());
  const ts::data::TrainValSplit split = ts::train::hold_out(*data, held_out, opt, 2);
  ts::data::LoaderOptions batches = ts::train::training_batches(opt, split.train);
  batches.augment.hflip = batches.augment.vflip = batches.augment.rot90 = true;
  ts::data::DataLoader loader(*data, batches);
  const TestSet test = make_test_set(ts::data::DataLoader(*data, ts::train::in_order(split.val, split.val.size())), opt.seed + 1);

  const std::size_t channels = ts::train::channels_of(*data);
  ts::models::TextureAutoencoder<float> model(channels, opt.image_size, bottleneck);
  ts::optim::Adam<float> optimizer(model.parameters(), opt.lr);
  std::cout << model.repr() << "; training on " << split.train.size() << " images, testing on " << split.val.size() << '\n';

  ts::io::Checkpoint<float> checkpoint;
  checkpoint.add("autoencoder", model).add("optimizer", optimizer).add("dropout_rng", ts::default_rng());

  auto auroc = [&] {
    std::vector<double> scores = ts::models::anomaly_scores(model.anomaly_map(test.clean, smoothing));
    const std::vector<double> defects = ts::models::anomaly_scores(model.anomaly_map(test.defective, smoothing));
    std::vector<bool> positive(scores.size(), false);
    positive.resize(scores.size() + defects.size(), true);  // the defective images are the positives
    scores.insert(scores.end(), defects.begin(), defects.end());
    return ts::metrics::roc_auc(scores, positive);
  };
  ts::train::EpochLoop<float> loop(checkpoint, opt);  // --resume, progress, Ctrl-C, metrics.csv, checkpoints
  loop.plot("loss.png", "texture autoencoder", {"loss"});
  const int status = loop.run(
      loader,
      [&](const ts::data::Batch& batch) -> ts::train::Values {
        const ts::Var<float> x(batch.images);
        ts::Var<float> loss = ts::nn::mse(model(x), x);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        return {{"loss", loss.value().item()}};
      },
      [&](std::size_t, ts::train::Values& row) {
        row.emplace_back("anomaly_auroc", auroc());
        std::cout << "  anomaly AUROC " << row.back().second << '\n';
        // 8 held-out images, the same with defects, and the defects' anomaly maps
        const std::size_t n = std::min<std::size_t>(8, test.clean.size(0));
        auto rgb = [](const ts::Var<float>& x) { return x.shape()[1] == 1 ? ts::concat<float>({x, x, x}, 1) : x; };  // beside the heat maps
        const ts::Var<float> clean = rgb(ts::slice(ts::Var<float>(test.clean), 0, n));
        const ts::Var<float> defective = rgb(ts::slice(ts::Var<float>(test.defective), 0, n));
        const ts::Var<float> colored(heat(model.anomaly_map(ts::slice(ts::Var<float>(test.defective), 0, n).value(), smoothing)));
        ts::io::save_image_grid(ts::concat<float>({clean, defective, colored}, 0).value(), opt.out + "/anomaly_maps.png", n);
      });
  if (status != 0 || !loop.trained()) return status;  // interrupted (checkpoint saved), or nothing to train

  // retrieval: the nearest other held-out image by descriptor, of the same class?
  const ts::Tensor<float> descriptors = model.descriptor(test.clean);
  const auto nearest = ts::models::nearest_neighbours(descriptors, descriptors, 1, /*exclude_same_index=*/true);
  double same = 0;
  for (std::size_t i = 0; i < nearest.size(); ++i) same += test.labels[nearest[i][0]] == test.labels[i];
  std::cout << "nearest neighbour by texture descriptor of the same class: " << same / double(nearest.size()) << '\n';
  std::cout << "anomaly maps: " << opt.out << "/anomaly_maps.png; metrics: " << opt.out << "/metrics.csv, loss.png; checkpoint: "
            << opt.out << "/checkpoint.tsr\n";
  std::cout << "anomaly AUROC: " << auroc() << std::endl;
  return 0;
}

int main(int argc, char** argv) { return ts::train::run_example(argc, argv, train); }
