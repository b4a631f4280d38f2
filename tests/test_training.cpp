// End-to-end training: small models must reach a stated loss or accuracy.
#include <catch2/catch.hpp>
#include <tessera/tessera.hpp>

#include <thread>
#include <vector>

using namespace tessera;

TEST_CASE("an MLP learns XOR", "[training]") {
  manual_seed(1);
  nn::Sequential<float> net;
  net.add<nn::Dense>(2, 8);
  net.add<nn::Tanh>();
  net.add<nn::Dense>(8, 1);
  optim::Adam<float> opt(net.parameters(), 0.05);
  const Tensor<float> x({4, 2}, {0, 0, 0, 1, 1, 0, 1, 1});
  const Tensor<float> y({4, 1}, {0, 1, 1, 0});
  float loss_value = 1;
  for (int step = 0; step < 400; ++step) {
    Var<float> loss = nn::bce_with_logits(net(Var<float>(x)), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    loss_value = loss.value().item();
  }
  CHECK(loss_value < 0.02f);
  const Tensor<float> logits = net(Var<float>(x)).value();
  for (std::size_t i = 0; i < 4; ++i) CHECK((logits[i] > 0) == (y[i] > 0.5f));
}

namespace {
// Two classes of 1x12x12 images: a bright disc or a bright ring, at a random place and
// brightness, with noise. Neither class differs in mean brightness by much, so the network has
// to see shape.
struct Batch {
  Tensor<float> images;
  std::vector<std::int64_t> labels;
};
Batch discs_and_rings(std::size_t n, Rng& rng) {
  const std::size_t size = 12;
  Batch b{Tensor<float>::empty({n, 1, size, size}), {}};
  for (std::size_t i = 0; i < n; ++i) {
    const auto label = static_cast<std::int64_t>(rng.below(2));
    const double cy = rng.uniform(4, 8), cx = rng.uniform(4, 8), level = rng.uniform(0.6, 1.0);
    for (std::size_t y = 0; y < size; ++y)
      for (std::size_t x = 0; x < size; ++x) {
        const double r = std::hypot(double(y) - cy, double(x) - cx);
        const bool on = label == 0 ? r < 2.5 : (r > 2.0 && r < 3.5);
        b.images.at(i, 0, y, x) = float((on ? level : 0.0) + rng.normal(0, 0.1));
      }
    b.labels.push_back(label);
  }
  return b;
}
}  // namespace

TEST_CASE("a small CNN separates discs from rings", "[training]") {
  manual_seed(2);
  Rng data_rng(3);
  nn::Sequential<float> net;
  net.add<nn::Conv2D>(1, 8, 3, 1, 1);
  net.add<nn::BatchNorm>(8);
  net.add<nn::ReLU>();
  net.add<nn::MaxPool2D>(2);
  net.add<nn::Conv2D>(8, 16, 3, 1, 1);
  net.add<nn::ReLU>();
  net.add<nn::GlobalAvgPool2D>();
  net.add<nn::Dense>(16, 2);
  optim::Adam<float> opt(net.parameters(), 0.01);
  for (int step = 0; step < 300; ++step) {  // reaches ≥ 0.99 for several seeds
    Batch b = discs_and_rings(32, data_rng);
    Var<float> loss = nn::cross_entropy(net(Var<float>(b.images)), b.labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  net.eval();
  Batch test = discs_and_rings(400, data_rng);
  NoGradGuard no_grad;
  const Tensor<float> logits = net(Var<float>(test.images)).value();
  std::size_t correct = 0;
  for (std::size_t i = 0; i < 400; ++i)
    correct += (logits.at(i, 1) > logits.at(i, 0)) == (test.labels[i] == 1);
  const double accuracy = double(correct) / 400;
  INFO("held-out accuracy " << accuracy);
  CHECK(accuracy >= 0.95);
}

namespace {
// A small CNN with BatchNorm and Dropout trained 5 Adam steps from `seed` on random data; its
// parameters and buffers, flattened.
std::vector<float> train_small_cnn(std::uint64_t seed) {
  manual_seed(seed);  // this thread's default_rng: initialisation and dropout
  Rng rng(seed + 1);
  nn::Sequential<float> net;
  net.add<nn::Conv2D>(1, 4, 3, 2, 1);
  net.add<nn::BatchNorm>(4);
  net.add<nn::LeakyReLU>(0.2);
  net.add<nn::Flatten>();
  net.add<nn::Dropout>(0.3);
  net.add<nn::Dense>(4 * 4 * 4, 1);
  optim::Adam<float> opt(net.parameters(), 1e-2, 0.5, 0.999);
  for (int step = 0; step < 5; ++step) {
    Var<float> loss = nn::bce_with_logits(net(Var<float>(Tensor<float>::randn({8, 1, 8, 8}, rng))),
                                          Tensor<float>::uniform({8, 1}, rng));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  std::vector<float> all;
  for (auto& [name, p] : net.named_parameters()) all.insert(all.end(), p.value().begin(), p.value().end());
  for (auto& [name, b] : net.named_buffers()) all.insert(all.end(), b.begin(), b.end());
  return all;
}
}  // namespace

TEST_CASE("the same seed gives bit-identical training", "[training]") {
  CHECK(train_small_cnn(11) == train_small_cnn(11));
  CHECK(train_small_cnn(11) != train_small_cnn(12));
}

TEST_CASE("two models trained in two threads at once match each trained alone", "[training][threads]") {
  const std::vector<float> alone_a = train_small_cnn(11), alone_b = train_small_cnn(21);
  std::vector<float> together_a, together_b;
  {
    // each thread has its own default_rng, grad mode and anomaly mode: nothing is shared
    std::thread first([&] { together_a = train_small_cnn(11); });
    std::thread second([&] { together_b = train_small_cnn(21); });
    first.join();
    second.join();
  }
  CHECK(together_a == alone_a);
  CHECK(together_b == alone_b);
}
