// toy_cnn.cpp — train a small CNN to tell horizontal from vertical stripes, printing the loss
// as it falls. Images are generated on the fly: 1x16x16, random stripe period, phase,
// contrast and noise (as strong as the stripes).
#include <tessera/tessera.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

namespace ts = tessera;

struct Batch {
  ts::Tensor<float> images;           // (N, 1, 16, 16)
  std::vector<std::int64_t> labels;   // 0 = horizontal stripes, 1 = vertical
};

Batch make_stripes(std::size_t n, ts::Rng& rng) {
  constexpr double pi = 3.14159265358979323846;
  const std::size_t size = 16;
  Batch batch{ts::Tensor<float>::empty({n, 1, size, size}), {}};
  for (std::size_t i = 0; i < n; ++i) {
    const auto label = static_cast<std::int64_t>(rng.below(2));
    const double period = rng.uniform(3, 7), phase = rng.uniform(0, 6.3), contrast = rng.uniform(0.3, 1.0);
    for (std::size_t y = 0; y < size; ++y)
      for (std::size_t x = 0; x < size; ++x) {
        const double along = label == 0 ? double(y) : double(x);
        const double stripe = contrast * std::sin(2 * pi * along / period + phase);
        batch.images.at(i, 0, y, x) = float(stripe + rng.normal(0, 1.0));
      }
    batch.labels.push_back(label);
  }
  return batch;
}

int main() {
  ts::manual_seed(0);  // weight initialisation
  ts::Rng data_rng(1);

  ts::nn::Sequential<float> net;
  net.add<ts::nn::Conv2D>(1, 8, 3, 1, "same");    // 16x16
  net.add<ts::nn::BatchNorm>(8);
  net.add<ts::nn::ReLU>();
  net.add<ts::nn::MaxPool2D>(2);                  // 8x8
  net.add<ts::nn::Conv2D>(8, 16, 3, 1, "same");
  net.add<ts::nn::BatchNorm>(16);
  net.add<ts::nn::ReLU>();
  net.add<ts::nn::GlobalAvgPool2D>();             // (N, 16)
  net.add<ts::nn::Dense>(16, 2);
  std::printf("%s\n", net.repr().c_str());

  ts::optim::Adam<float> opt(net.parameters(), 3e-3);
  const int epochs = 8, steps_per_epoch = 20, batch_size = 32;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    double total = 0;
    for (int step = 0; step < steps_per_epoch; ++step) {
      Batch batch = make_stripes(batch_size, data_rng);
      ts::Var<float> loss = ts::nn::cross_entropy(net(ts::Var<float>(batch.images)), batch.labels);
      opt.zero_grad();
      loss.backward();
      opt.step();
      total += loss.value().item();
    }
    std::printf("epoch %d  loss %.4f\n", epoch, total / steps_per_epoch);
  }

  net.eval();  // BatchNorm now uses its running statistics
  ts::NoGradGuard no_grad;
  Batch test = make_stripes(500, data_rng);
  const ts::Tensor<float> logits = net(ts::Var<float>(test.images)).value();
  int correct = 0;
  for (std::size_t i = 0; i < test.labels.size(); ++i)
    correct += (logits.at(i, 1) > logits.at(i, 0)) == (test.labels[i] == 1);
  std::printf("held-out accuracy: %.3f\n", correct / double(test.labels.size()));
}
