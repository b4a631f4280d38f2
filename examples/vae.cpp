// vae.cpp — trains a convolutional variational autoencoder on the built-in procedural textures
// or your images (--data DIR), holding out --val-fraction of them. Each epoch: held-out
// reconstruction error and KL, metrics.csv, a loss plot, a checkpoint (--resume continues
// identically), reconstructions.png (rows of originals, each above its reconstruction) and
// samples.png (the same 64 draws from the prior every epoch); at the end interpolation.png.
//
//   vae                                       # 32x32, 4096 textures, 10 epochs
//   vae --data textures/ --image-size 64 --beta 0.5 --mse
#include <tessera/tessera.hpp>

#include <algorithm>
#include <iostream>
#include <memory>
#include <vector>
namespace ts = tessera;

// Per-image loss terms of the held-out images, with z drawn from a fixed generator.
ts::train::MetricsLog::Values evaluate(ts::models::ConvVae<float>& vae, const ts::data::DataLoader& loader, std::uint64_t seed) {
  ts::models::EvalMode<float> inference(vae);
  ts::Rng rng(seed);
  double reconstruction = 0, kl = 0, squared_error = 0, images = 0;
  for (const ts::data::Batch& batch : loader.epoch(0)) {
    const ts::Var<float> x(batch.images);
    const auto loss = vae.loss(x, rng);
    const double n = double(batch.labels.size());
    reconstruction += loss.reconstruction.value().item() * n;
    kl += loss.kl.value().item() * n;
    squared_error += ts::nn::mse(ts::Var<float>(vae.reconstruct(batch.images)), x).value().item() * n;  // from the mean z
    images += n;
  }
  return {{"val_reconstruction", reconstruction / images}, {"val_kl", kl / images}, {"val_pixel_mse", squared_error / images}};
}

int train(int argc, char** argv) {
  ts::train::Options opt;
  opt.image_size = 32;
  opt.epochs = 10;
  opt.batch = 64;
  opt.lr = 5e-4;  // higher rates make the 8192-input logvar head jump (e^logvar overflows at 64x64)
  std::size_t samples = 4096, latent = 100;
  double beta = 1.0, val_fraction = 0.1;
  bool mse = false;
  ts::train::Cli cli("vae", "Trains a convolutional VAE on textures and reports held-out reconstruction error and KL.", opt);
  cli.add("--samples", samples, "procedural textures (without --data)", ts::train::Require::positive);
  cli.add("--latent", latent, "size of the latent code z", ts::train::Require::positive);
  cli.add("--beta", beta, "weight of the KL term (beta-VAE)", ts::train::Require::non_negative);
  cli.add("--mse", mse, "Gaussian reconstruction loss (squared error) instead of binary cross-entropy");
  cli.add("--val-fraction", val_fraction, "share of the images held out", ts::train::Require::positive);
  cli.may_change_on_resume({"--beta", "--mse"});
  cli.parse(argc, argv);
  if (opt.help) return 0;
  ts::manual_seed(opt.seed);

  const auto data = ts::train::open_dataset(opt, samples);
  const ts::data::TrainValSplit split = ts::train::hold_out(*data, val_fraction, opt, 2);
  ts::data::DataLoader loader(*data, ts::train::training_batches(opt, split.train));
  ts::data::DataLoader val_loader(*data, ts::train::in_order(split.val, 100));
  const ts::Tensor<float> shown = val_loader.batch(0, 0).images;  // the first held-out images

  ts::models::VaeConfig config;
  config.image_size = opt.image_size;
  config.channels = ts::train::channels_of(*data);
  config.latent = latent;
  config.beta = beta;
  config.reconstruction = mse ? ts::models::Reconstruction::mse : ts::models::Reconstruction::bce;
  ts::models::ConvVae<float> vae(config);
  ts::optim::Adam<float> optimizer(vae.parameters(), opt.lr);
  ts::Rng rng(opt.seed + 1);  // the reparameterisation's ε
  std::cout << vae.repr() << '\n';

  ts::io::Checkpoint<float> checkpoint;
  checkpoint.add("vae", vae).add("optimizer", optimizer).add("rng", rng).add("dropout_rng", ts::default_rng());
  ts::train::EpochLoop<float> loop(checkpoint, opt);  // --resume, progress, Ctrl-C, metrics.csv, checkpoints
  loop.plot("loss.png", "VAE reconstruction", {"reconstruction", "val_reconstruction"});
  loop.plot("kl.png", "VAE KL divergence", {"kl", "val_kl"});

  ts::train::Values held_out_loss;
  const int status = loop.run(
      loader,
      [&](const ts::data::Batch& batch) -> ts::train::Values {
        ts::models::VaeLoss<float> loss = vae.loss(ts::Var<float>(batch.images), rng);
        optimizer.zero_grad();
        loss.total.backward();
        optimizer.step();
        return {{"loss", loss.total.value().item()}, {"reconstruction", loss.reconstruction.value().item()},
                {"kl", loss.kl.value().item()}};
      },
      [&](std::size_t, ts::train::Values& row) {
        held_out_loss = evaluate(vae, val_loader, opt.seed + 2);
        row.insert(row.end(), held_out_loss.begin(), held_out_loss.end());
        // pictures: pairs of rows (up to 8 originals, then their reconstructions), 64 prior samples
        const ts::Var<float> originals(shown), recon(vae.reconstruct(shown));
        const std::size_t cols = std::min<std::size_t>(8, shown.size(0));
        std::vector<ts::Var<float>> rows;
        for (std::size_t first = 0; first + cols <= std::min<std::size_t>(32, shown.size(0)); first += cols) {
          rows.push_back(ts::slice(originals, first, first + cols));
          rows.push_back(ts::slice(recon, first, first + cols));
        }
        ts::io::save_image_grid(ts::concat(rows, 0).value(), opt.out + "/reconstructions.png", cols);
        ts::Rng prior(opt.seed + 3);  // the same z every epoch
        ts::io::save_image_grid(vae.sample(64, prior), opt.out + "/samples.png", 8);
      });
  if (status != 0 || !loop.trained()) return status;  // interrupted (checkpoint saved), or nothing to train
  if (held_out_loss.empty()) held_out_loss = evaluate(vae, val_loader, opt.seed + 2);

  // a walk through latent space between the posterior means of two held-out images
  const ts::Var<float> originals(shown);
  ts::io::save_image_grid(vae.interpolate(ts::slice(originals, 0, 1).value(), ts::slice(originals, 1, 2).value(), 10),
                          opt.out + "/interpolation.png", 10);
  std::cout << "pictures: " << opt.out << "/reconstructions.png, samples.png, interpolation.png; metrics: " << opt.out
            << "/metrics.csv, loss.png; checkpoint: " << opt.out << "/checkpoint.tsr\n";
  std::cout << "held-out reconstruction error: " << held_out_loss[0].second << " per image ("
            << (mse ? "squared error" : "binary cross-entropy") << " summed over pixels), " << held_out_loss[2].second
            << " mean squared error per pixel\n";
  std::cout << "held-out KL: " << held_out_loss[1].second << " per image" << std::endl;
  return 0;
}

int main(int argc, char** argv) { return ts::train::run_example(argc, argv, train); }
