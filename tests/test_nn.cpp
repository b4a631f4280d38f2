// Layers, losses and optimizers: finite-difference gradient checks in double, known values from
// PyTorch, module naming, optimizer bookkeeping and shape errors.
//
// Every constant named k... that is not an input comes from tests/reference/nn_reference.py
// (PyTorch, float64), run on the same literal inputs that are written out here.
#include "gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/SVD>

using namespace tessera;
using tessera::testing::away_from_zero;
using tessera::testing::check_gradients;
using tessera::testing::error_of;
using tessera::testing::check_module_gradients;

namespace {


/// Every element equals the PyTorch float64 reference to ~1e-10 relative (exact zeros exactly).
void check_values(const Tensor<double>& actual, const std::vector<double>& expected, double rel = 1e-10) {
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("element " << i);
    CHECK(actual[i] == Approx(expected[i]).epsilon(rel));
  }
}

/// Values without ties in any pooling window (central differences cannot see a tie's choice).
Tensor<double> distinct_values(const Shape& s) {
  Tensor<double> t = Tensor<double>::empty(s);
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = std::sin(double(i) * 1.7) * 3 + double(i) * 1e-3;
  return t;
}

template <class Pairs>
std::vector<std::string> names_of(const Pairs& pairs) {
  std::vector<std::string> out;
  for (const auto& entry : pairs) out.push_back(entry.first);
  return out;
}

/// A fixed input, and a trainable leaf, with literal values.
Var<double> constant(const Shape& s, const std::vector<double>& values) {
  return Var<double>(Tensor<double>(s, values));
}
Var<double> leaf(const Shape& s, const std::vector<double>& values) {
  return Var<double>(Tensor<double>(s, values), true);
}

/// (sample) mean and standard deviation of a tensor's values.
std::pair<double, double> mean_and_std(const Tensor<double>& t) {
  double sum = 0, sq = 0;
  for (double v : t) sum += v;
  const double mean = sum / double(t.size());
  for (double v : t) sq += (v - mean) * (v - mean);
  return {mean, std::sqrt(sq / double(t.size() - 1))};
}

double max_abs(const Tensor<double>& t) {
  double m = 0;
  for (double v : t) m = std::max(m, std::abs(v));
  return m;
}

/// A module with its own parameter, buffer and child, registered by hand.
class ScaledDense : public nn::Module<double> {
 public:
  Var<double> scale;
  std::shared_ptr<nn::Dense<double>> proj;

  ScaledDense() {
    scale = register_parameter("scale", Tensor<double>::ones({3}));
    register_buffer("calls", Tensor<double>::zeros({1}));
    proj = register_module("proj", std::make_shared<nn::Dense<double>>(3, 2));
  }
  Var<double> forward(const Var<double>& x) override { return proj->forward(x * scale); }
  std::string repr() const override { return "ScaledDense()"; }
};

}  // namespace

// ==== layer gradients ===============================================================================

TEST_CASE("Dense: gradients with and without bias", "[nn][gradcheck]") {
  manual_seed(101);
  Rng rng(101);
  nn::Dense<double> dense(4, 3);
  check_module_gradients("Dense(4, 3)", dense, Tensor<double>::randn({5, 4}, rng));
  nn::Dense<double> no_bias(4, 3, false);
  REQUIRE(no_bias.parameters().size() == 1);
  check_module_gradients("Dense(4, 3, bias=false)", no_bias, Tensor<double>::randn({5, 4}, rng));
}

TEST_CASE("Conv2D: gradients with stride, padding and 'same'", "[nn][gradcheck]") {
  manual_seed(102);
  Rng rng(102);
  nn::Conv2D<double> strided(3, 2, 3, 2, 1);
  check_module_gradients("Conv2D(3, 2, k3, s2, p1) on 5x6", strided, Tensor<double>::randn({2, 3, 5, 6}, rng));
  nn::Conv2D<double> no_bias(2, 3, 3, 1, 0, false);
  check_module_gradients("Conv2D(2, 3, k3, bias=false)", no_bias, Tensor<double>::randn({1, 2, 4, 5}, rng));
  nn::Conv2D<double> same3(2, 3, 3, 1, "same");
  check_module_gradients("Conv2D(2, 3, k3, s1, same) on 4x5", same3, Tensor<double>::randn({2, 2, 4, 5}, rng));
  nn::Conv2D<double> same4(2, 3, 4, 2, "same");
  check_module_gradients("Conv2D(2, 3, k4, s2, same) on 6x4", same4, Tensor<double>::randn({1, 2, 6, 4}, rng));
}

TEST_CASE("Conv2DTranspose: gradients with output_padding and 'same'", "[nn][gradcheck]") {
  manual_seed(103);
  Rng rng(103);
  nn::Conv2DTranspose<double> up(3, 2, 3, 2, 1, 1);
  check_module_gradients("Conv2DTranspose(3, 2, k3, s2, p1, op1) on 3x4", up, Tensor<double>::randn({2, 3, 3, 4}, rng));
  nn::Conv2DTranspose<double> same3(2, 3, 3, 1, "same");
  check_module_gradients("Conv2DTranspose(2, 3, k3, s1, same)", same3, Tensor<double>::randn({1, 2, 4, 5}, rng));
  nn::Conv2DTranspose<double> same4(2, 3, 4, 2, "same");
  check_module_gradients("Conv2DTranspose(2, 3, k4, s2, same)", same4, Tensor<double>::randn({2, 2, 3, 4}, rng));
}

TEST_CASE("BatchNorm: gradients in training and eval mode on (N, F) and (N, C, H, W)", "[nn][gradcheck]") {
  Rng rng(104);
  for (const Shape& s : {Shape{5, 3}, Shape{3, 2, 3, 4}}) {
    std::ostringstream name;
    name << s;
    nn::BatchNorm<double> bn(s[1]);
    bn.weight.value() = Tensor<double>::uniform({s[1]}, rng, 0.5, 2.0);  // away from the default γ = 1, β = 0
    bn.bias.value() = Tensor<double>::randn({s[1]}, rng);
    const Tensor<double> x = Tensor<double>::randn(s, rng, 1.0, 2.0);
    check_module_gradients("BatchNorm train " + name.str(), bn, x);
    bn.running_mean.value() = Tensor<double>::randn({s[1]}, rng);
    bn.running_var.value() = Tensor<double>::uniform({s[1]}, rng, 0.5, 2.0);
    bn.train(false);
    check_module_gradients("BatchNorm eval " + name.str(), bn, x);
  }
}

TEST_CASE("activation layers: gradients", "[nn][gradcheck]") {
  Rng rng(105);
  const Tensor<double> x = away_from_zero({3, 2, 2, 3}, rng);  // ReLU and LeakyReLU have a kink at 0
  nn::ReLU<double> relu;
  nn::LeakyReLU<double> leaky(0.2);
  nn::LeakyReLU<double> leaky_default;
  nn::Tanh<double> tanh_layer;
  nn::Sigmoid<double> sigmoid_layer;
  check_module_gradients("ReLU", relu, x);
  check_module_gradients("LeakyReLU(0.2)", leaky, x);
  check_module_gradients("LeakyReLU()", leaky_default, x);
  check_module_gradients("Tanh", tanh_layer, x);
  check_module_gradients("Sigmoid", sigmoid_layer, x);
}

TEST_CASE("Flatten and Reshape: gradients and shapes", "[nn][gradcheck]") {
  Rng rng(106);
  nn::Flatten<double> flat;
  nn::Reshape<double> reshape_layer(Shape{3, 2, 2});
  const Tensor<double> image = Tensor<double>::randn({2, 3, 2, 2}, rng);
  CHECK(flat.forward(Var<double>(image)).shape() == Shape{2, 12});
  CHECK(reshape_layer.forward(Var<double>(Tensor<double>::zeros({2, 12}))).shape() == Shape{2, 3, 2, 2});
  check_module_gradients("Flatten", flat, image);
  check_module_gradients("Reshape(3, 2, 2)", reshape_layer, Tensor<double>::randn({2, 12}, rng));
}

TEST_CASE("pooling layers: gradients", "[nn][gradcheck]") {
  const Tensor<double> x = distinct_values({2, 2, 4, 6});
  nn::MaxPool2D<double> max2(2);
  nn::MaxPool2D<double> max3(3, 1);
  nn::AvgPool2D<double> avg2(2);
  nn::AvgPool2D<double> avg3(3, 2);
  nn::GlobalAvgPool2D<double> global;
  CHECK(max2.forward(Var<double>(x)).shape() == Shape{2, 2, 2, 3});  // stride defaults to the kernel
  CHECK(global.forward(Var<double>(x)).shape() == Shape{2, 2});
  check_module_gradients("MaxPool2D(2)", max2, x);
  check_module_gradients("MaxPool2D(3, stride 1)", max3, x);
  check_module_gradients("AvgPool2D(2)", avg2, x);
  check_module_gradients("AvgPool2D(3, stride 2)", avg3, x);
  check_module_gradients("GlobalAvgPool2D", global, x);
}

TEST_CASE("Embedding: forward on a label tensor picks rows; gradient wrt the weight", "[nn][gradcheck]") {
  manual_seed(107);
  nn::Embedding<double> emb(4, 3);
  const Var<double> labels = constant({2, 3}, {1, 0, 3, 3, 2, 1});  // repeated labels: gradients add up
  const Tensor<double> rows = emb.forward(labels).value();
  REQUIRE(rows.shape() == Shape{6, 3});
  CHECK(rows.at(2, 1) == emb.weight.value().at(3, 1));
  CHECK(rows.at(4, 0) == emb.weight.value().at(2, 0));
  check_gradients("Embedding(4, 3) weight", {emb.weight}, [&] { return emb.forward(labels); });
}

TEST_CASE("Dropout: gradients with a fixed mask in training, identity in eval", "[nn][gradcheck]") {
  Rng data(108);
  Var<double> x(Tensor<double>::randn({4, 5}, data), true);
  Rng rng(1108);
  nn::Dropout<double> drop(0.3, &rng);
  const RngState saved = rng.state();
  // each evaluation redraws the same mask
  check_gradients("Dropout(0.3) train", {x}, [&] {
    rng.set_state(saved);
    return drop.forward(x);
  });
  drop.train(false);
  check_gradients("Dropout(0.3) eval", {x}, [&] { return drop.forward(x); });
}

TEST_CASE("Sequential fuses BatchNorm + ReLU / LeakyReLU [+ MaxPool2D(k)]: the same values (and gradients to rounding) as the layers one by one", "[nn][batchnorm]") {
  // pool 0: none; 2: AVX-512's split of rows for floats (70 columns: several pieces), a
  // leftover row; 3: the generic window taps, leftover rows and columns
  for (std::size_t pool : {0, 2, 3})
  for (double alpha : {-1.0, 0.0, 0.2}) {  // -1: ReLU; LeakyReLU(0) and LeakyReLU(0.2)
    CAPTURE(pool, alpha);
    Rng rng(77);
    nn::Sequential<float> net;
    auto& norm = net.add<nn::BatchNorm>(3);
    if (alpha < 0)
      net.add<nn::ReLU>();
    else
      net.add<nn::LeakyReLU>(alpha);
    if (pool) net.add<nn::MaxPool2D>(pool);
    norm.weight.value() = Tensor<float>::uniform({3}, rng, 0.5f, 2.f);
    norm.weight.value()[1] = -norm.weight.value()[1];  // a negative γ: the window's largest z is at its smallest x
    norm.bias.value() = Tensor<float>::randn({3}, rng);
    const Shape shape = pool == 2 ? Shape{2, 3, 9, 70} : Shape{4, 3, 5, 7};
    const Tensor<float> input = Tensor<float>::randn(shape, rng);
    for (bool training : {true, false}) {
      net.train(training);
      Var<float> x(input, true);
      Var<float> fused = net.forward(x);
      const Tensor<float> upstream = Tensor<float>::randn(fused.shape(), rng);
      fused.backward(upstream);
      const Tensor<float> fused_grad = x.grad(), fused_dgamma = norm.weight.grad(), fused_dbeta = norm.bias.grad();
      const Tensor<float> fused_mean = norm.running_mean.value(), fused_var = norm.running_var.value();
      net.zero_grad();
      norm.running_mean.value() = Tensor<float>::zeros({3});
      norm.running_var.value() = Tensor<float>::ones({3});
      Var<float> x2(input, true);
      Var<float> separate = net[1].forward(net[0].forward(x2));  // the layers one by one
      if (pool) separate = net[2].forward(separate);
      separate.backward(upstream);
      CHECK(fused.value().to_vector() == separate.value().to_vector());
      // the gradients agree to rounding: the plane sums run over differently aligned memory
      for (std::size_t i = 0; i < input.size(); ++i) CHECK(fused_grad[i] == Approx(x2.grad()[i]).margin(1e-5));
      for (std::size_t c = 0; c < 3; ++c) {
        CHECK(fused_dgamma[c] == Approx(norm.weight.grad()[c]).margin(1e-4));
        CHECK(fused_dbeta[c] == Approx(norm.bias.grad()[c]).margin(1e-4));
      }
      CHECK(fused_mean.to_vector() == norm.running_mean.value().to_vector());
      CHECK(fused_var.to_vector() == norm.running_var.value().to_vector());
      net.zero_grad();
      norm.running_mean.value() = Tensor<float>::zeros({3});
      norm.running_var.value() = Tensor<float>::ones({3});
    }
  }
}

TEST_CASE("Sequential fuses Conv2D + ReLU / LeakyReLU: the same values and gradients as the layers one by one", "[nn][conv]") {
  for (double alpha : {-1.0, 0.0, 0.2}) {  // -1: ReLU; LeakyReLU(0) and LeakyReLU(0.2)
    CAPTURE(alpha);
    manual_seed(79);
    Rng rng(79);
    nn::Sequential<float> net;
    net.add<nn::Conv2D>(3, 5, 4, 2, 1);
    if (alpha < 0)
      net.add<nn::ReLU>();
    else
      net.add<nn::LeakyReLU>(alpha);
    const Tensor<float> input = Tensor<float>::randn({3, 3, 9, 11}, rng);
    Var<float> x(input, true);
    Var<float> fused = net.forward(x);
    const Tensor<float> upstream = Tensor<float>::randn(fused.shape(), rng);
    fused.backward(upstream);
    const Tensor<float> dx = x.grad(), dw = net.parameters()[0].grad(), db = net.parameters()[1].grad();
    net.zero_grad();
    Var<float> x2(input, true);
    Var<float> separate = net[1].forward(net[0].forward(x2));
    separate.backward(upstream);
    CHECK(fused.value().to_vector() == separate.value().to_vector());
    CHECK(dx.to_vector() == x2.grad().to_vector());  // the same products of the same dz
    CHECK(dw.to_vector() == net.parameters()[0].grad().to_vector());
    CHECK(db.to_vector() == net.parameters()[1].grad().to_vector());
  }
  Rng rng(80);  // and its gradients in double, through the rectifier
  Var<double> x(Tensor<double>::randn({2, 2, 5, 6}, rng), true), w(Tensor<double>::randn({3, 2, 3, 3}, rng), true);
  Var<double> b(Tensor<double>::randn({3}, rng), true);
  for (double slope : {0.0, 0.2})
    check_gradients("conv2d + rectifier " + std::to_string(slope), {x, w, b},
                    [&] { return conv2d(x, w, b, 2, 1, Rectifier{true, slope}); });
  // 3×3, stride 1, padding 1, 16 channels each way: forward and input gradient by Winograd
  Var<double> x16(Tensor<double>::randn({2, 16, 2, 4}, rng), true), w16(Tensor<double>::randn({16, 16, 3, 3}, rng), true);
  Var<double> b16(Tensor<double>::randn({16}, rng), true);
  check_gradients("conv2d 3x3 + rectifier, Winograd", {x16, w16, b16},
                  [&] { return conv2d(x16, w16, b16, 1, 1, Rectifier{true, 0.2}); });
}

TEST_CASE("Sequential at inference folds BatchNorm into the Conv2D before it [+ rectifier [+ MaxPool2D(k)]]: the layers' values to rounding", "[nn][conv][batchnorm]") {
  // 16 → 18 channels: the convolution by Winograd; 3 → 5: by im2col (and a 3×3 pool)
  struct Case {
    std::size_t in_ch, out_ch, tail, pool;  // tail: 0 nothing, 1 ReLU, 2 LeakyReLU(0.2)
    bool bias = true;
  };
  const Case cases[] = {{16, 18, 0, 0}, {16, 18, 1, 0}, {16, 18, 1, 2}, {16, 18, 2, 2},
                        {16, 18, 1, 2, false}, {3, 5, 1, 0}, {3, 5, 2, 3}, {3, 5, 1, 1, false}};
  for (const Case& t : cases) {
    CAPTURE(t.in_ch, t.out_ch, t.tail, t.pool, t.bias);
    manual_seed(81);
    Rng rng(81);
    nn::Sequential<float> net;
    net.add<nn::Conv2D>(t.in_ch, t.out_ch, 3, 1, 1, t.bias);
    auto& norm = net.add<nn::BatchNorm>(t.out_ch);
    if (t.tail == 1) net.add<nn::ReLU>();
    if (t.tail == 2) net.add<nn::LeakyReLU>(0.2);
    if (t.pool) net.add<nn::MaxPool2D>(t.pool);
    norm.weight.value() = Tensor<float>::uniform({t.out_ch}, rng, 0.5f, 2.f);
    norm.weight.value()[1] = -norm.weight.value()[1];  // a negative γ flips the window's order
    norm.bias.value() = Tensor<float>::randn({t.out_ch}, rng);
    norm.running_mean.value() = Tensor<float>::randn({t.out_ch}, rng);
    norm.running_var.value() = Tensor<float>::uniform({t.out_ch}, rng, 0.2f, 3.f);
    const Var<float> x(Tensor<float>::randn({3, t.in_ch, 8, 10}, rng));
    net.train(false);
    Tensor<float> folded, separate;
    {
      NoGradGuard no_graph;
      Profiler profile;
      folded = net.forward(x).value();
      REQUIRE(profile.rows().size() == 1);  // one op
      Var<float> h = x;
      for (std::size_t i = 0; i < net.size(); ++i) h = net[i].forward(h);  // the layers one by one
      separate = h.value();
    }
    REQUIRE(folded.shape() == separate.shape());
    double scale = 0;
    for (std::size_t i = 0; i < separate.size(); ++i) scale = std::max(scale, double(std::abs(separate[i])));
    for (std::size_t i = 0; i < separate.size(); ++i) CHECK(folded[i] == Approx(separate[i]).margin(2e-5 * scale));
    // with a graph, or in training mode, nothing is folded: the layers' own ops and gradients
    CHECK(net.forward(x).requires_grad());
    net.train(true);
    NoGradGuard no_graph;
    Profiler profile;
    net.forward(x);
    CHECK(profile.rows().size() > 1);
  }
  nn::Conv2D<float> conv(2, 3, 3, 1, 1);
  const std::string err = error_of([&] { conv.forward_folded(Var<float>(Tensor<float>::zeros({1, 2, 4, 4})), Tensor<float>::ones({3}), Tensor<float>::zeros({3})); });
  CHECK_THAT(err, Catch::Contains("Conv2D(2, 3") && Catch::Contains("NoGradGuard"));
  // bad layers report themselves at inference as they do with a graph
  nn::Sequential<float> mismatched;
  mismatched.add<nn::Conv2D>(2, 3, 3, 1, 1);
  mismatched.add<nn::BatchNorm>(4);  // not the convolution's 3 channels: not folded
  mismatched.train(false);
  NoGradGuard no_graph;
  CHECK_THAT(error_of([&] { mismatched.forward(Var<float>(Tensor<float>::zeros({1, 2, 4, 4}))); }), Catch::Contains("batch_norm"));
  nn::Sequential<float> big_pool;
  big_pool.add<nn::Conv2D>(2, 3, 3, 1, 1);
  big_pool.add<nn::BatchNorm>(3);
  big_pool.add<nn::ReLU>();
  big_pool.add<nn::MaxPool2D>(5);
  big_pool.train(false);
  CHECK_THAT(error_of([&] { big_pool.forward(Var<float>(Tensor<float>::zeros({1, 2, 4, 4}))); }),
             Catch::Contains("MaxPool2D(5)") && Catch::Contains("4x4"));
  nn::Sequential<float> bad_stats;  // a running statistic of the wrong size is named
  bad_stats.add<nn::Conv2D>(2, 3, 3, 1, 1);
  auto& stats = bad_stats.add<nn::BatchNorm>(3);
  stats.running_var.value() = Tensor<float>::ones({2});
  bad_stats.train(false);
  CHECK_THAT(error_of([&] { bad_stats.forward(Var<float>(Tensor<float>::zeros({1, 2, 4, 4}))); }),
             Catch::Contains("BatchNorm(3") && Catch::Contains("running_var (2)"));
}

namespace {
// A Conv2D with state of its own: it cannot change the convolution (forward is final), so the
// fusion pass, which asks what a layer is, fuses it as a Conv2D.
template <class T>
struct TaggedConv2D : nn::Conv2D<T> {
  using nn::Conv2D<T>::Conv2D;
  std::string tag = "mine";
};
// A wrapper by composition, 2·conv(x): it declares nothing, so the pass leaves it alone.
template <class T>
struct DoubledConv : nn::Module<T> {
  std::shared_ptr<nn::Conv2D<T>> conv;
  DoubledConv(std::size_t in, std::size_t out) { conv = this->register_module("conv", std::make_shared<nn::Conv2D<T>>(in, out, 3, 1, 1)); }
  Var<T> forward(const Var<T>& x) override { return conv->forward(x) * 2.0; }
  std::string repr() const override { return "DoubledConv"; }
};
// A wrapper that declares the epilogue it takes, by handing it to its convolution: it fuses.
template <class T>
struct ForwardingConv : nn::Module<T>, nn::EpilogueLayer<T> {
  std::shared_ptr<nn::Conv2D<T>> conv;
  ForwardingConv(std::size_t in, std::size_t out) { conv = this->register_module("conv", std::make_shared<nn::Conv2D<T>>(in, out, 3, 1, 1)); }
  Var<T> forward(const Var<T>& x) override { return conv->forward(x); }
  std::size_t largest_fused_pool() const override { return conv->largest_fused_pool(); }
  Var<T> forward_fused(const Var<T>& x, Rectifier r, std::size_t pool) override { return conv->forward_fused(x, r, pool); }
  std::string repr() const override { return "ForwardingConv"; }
};
// A LeakyReLU subclass: still a rectifier to the pass.
template <class T>
struct NamedLeakyReLU : nn::LeakyReLU<T> {
  NamedLeakyReLU() : nn::LeakyReLU<T>(0.2) {}
};

// The layers of `net` one by one, no fusion.
Var<float> one_by_one(nn::Sequential<float>& net, const Var<float>& x) {
  Var<float> h = x;
  for (std::size_t i = 0; i < net.size(); ++i) h = net[i].forward(h);
  return h;
}

// a and b agree: the same NaNs and infinities, finite values to rounding. Some values must be
// NaN or infinite (the inputs' reach the outputs).
void check_agree(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE(a.shape() == b.shape());
  std::size_t nan = 0, inf = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i, a[i], b[i]);
    CHECK(std::isnan(a[i]) == std::isnan(b[i]));
    if (std::isnan(a[i])) {
      ++nan;
      continue;
    }
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      ++inf;
      CHECK(a[i] == b[i]);
      continue;
    }
    CHECK(a[i] == Approx(b[i]).margin(1e-4));
  }
  CAPTURE(nan, inf);
  CHECK(nan + inf > 0);
}
}  // namespace

TEST_CASE("the fusion pass asks layers what they are: a subclass fuses exactly, a plain wrapper visibly does not, a declaring wrapper fuses",
          "[nn][fuse]") {
  Rng rng(90);
  const Tensor<float> input = Tensor<float>::randn({2, 3, 6, 6}, rng);
  auto compare = [&](nn::Sequential<float>& net, bool fused) {
    CAPTURE(net.fusion());
    CHECK((net.fusion().find("(fused)") != std::string::npos) == fused);
    Var<float> x(input, true), x2(input, true);
    Var<float> y = net.forward(x), y2 = one_by_one(net, x2);
    CHECK(y.value().to_vector() == y2.value().to_vector());
    const Tensor<float> up = Tensor<float>::randn(y.shape(), rng);
    y.backward(up);
    const Tensor<float> dx = x.grad();
    y2.backward(up);
    CHECK(dx.to_vector() == x2.grad().to_vector());
  };
  manual_seed(90);
  {
    nn::Sequential<float> net;  // a subclass of Conv2D and of LeakyReLU
    net.add<TaggedConv2D<float>>(3, 4, 3, 1, 1);
    net.add<NamedLeakyReLU<float>>();
    CHECK(net.fusion() == "0-1 Conv2D(3, 4, kernel=3, stride=1, padding=1) + LeakyReLU(0.2)  (fused)\n");
    compare(net, true);
  }
  {
    nn::Sequential<float> net;  // a wrapper that declares nothing: not fused, and says so
    net.add<DoubledConv<float>>(3, 4);
    net.add<nn::LeakyReLU>(0.2);
    CHECK(net.fusion() == "0 DoubledConv\n1 LeakyReLU(0.2)\n");
    compare(net, false);
  }
  {
    nn::Sequential<float> net;  // a wrapper that forwards the epilogue to its convolution
    net.add<ForwardingConv<float>>(3, 4);
    net.add<nn::ReLU>();
    compare(net, true);
  }
  {
    nn::Sequential<float> net;  // LeakyReLU with a negative slope is no fused rectifier
    net.add<nn::Conv2D>(3, 4, 3, 1, 1);
    net.add<nn::LeakyReLU>(-0.5);
    compare(net, false);
  }
  // at inference the subclass folds the BatchNorm after it
  nn::Sequential<float> net;
  net.add<TaggedConv2D<float>>(3, 4, 3, 1, 1);
  net.add<nn::BatchNorm>(4);
  net.add<nn::ReLU>();
  net.add<nn::MaxPool2D>(2);
  net.train(false);
  NoGradGuard no_graph;
  CHECK(net.fusion().find("0-3 Conv2D(3, 4, kernel=3, stride=1, padding=1) + BatchNorm(4") == 0);
  CHECK(net.fusion().find("(folded)") != std::string::npos);
  net.train(true);
  CHECK(net.fusion() == "0 Conv2D(3, 4, kernel=3, stride=1, padding=1)\n1-3 BatchNorm(4, eps=1e-05, momentum=0.1) + ReLU() + MaxPool2D(2, stride=2)  (fused)\n");
}

TEST_CASE("fused and unfused runs agree on NaN and ±inf inputs: Conv2D + LeakyReLU, BatchNorm + ReLU + MaxPool2D, the folded inference",
          "[nn][fuse]") {
  Rng rng(91);
  Tensor<float> input = Tensor<float>::randn({2, 16, 8, 8}, rng);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  input.at(0, 1, 2, 5) = nan;
  input.at(0, 2, 6, 1) = inf;
  input.at(1, 0, 0, 0) = -inf;
  input.at(1, 9, 4, 4) = inf;
  input.at(1, 9, 4, 5) = -inf;
  manual_seed(91);
  for (int tail : {0, 1}) {  // ReLU, LeakyReLU(0.2)
    CAPTURE(tail);
    for (std::size_t in : {3, 16}) {  // im2col (3 channels) and Winograd (16 each way)
      CAPTURE(in);
      nn::Sequential<float> conv_net;  // Conv2D + rectifier, training
      conv_net.add<nn::Conv2D>(in, 16, 3, 1, 1);
      if (tail) conv_net.add<nn::LeakyReLU>(0.2); else conv_net.add<nn::ReLU>();
      Tensor<float> first = Tensor<float>::empty({2, in, 8, 8});  // the input's first `in` channels
      for (std::size_t n = 0; n < 2; ++n) std::copy_n(input.data() + n * 16 * 64, in * 64, first.data() + n * in * 64);
      const Var<float> x(first);
      check_agree(conv_net.forward(x).value(), one_by_one(conv_net, x).value());
      // Conv2D + BatchNorm + rectifier + MaxPool2D: folded at inference
      nn::Sequential<float> net;
      net.add<nn::Conv2D>(in, 16, 3, 1, 1);
      auto& norm = net.add<nn::BatchNorm>(16);
      if (tail) net.add<nn::LeakyReLU>(0.2); else net.add<nn::ReLU>();
      net.add<nn::MaxPool2D>(2);
      norm.weight.value()[2] = -1.5f;  // a negative γ
      norm.running_mean.value() = Tensor<float>::randn({16}, rng);
      net.train(false);
      NoGradGuard no_graph;
      REQUIRE(net.fusion().find("(folded)") != std::string::npos);
      check_agree(net.forward(x).value(), one_by_one(net, x).value());
    }
    // BatchNorm + rectifier + MaxPool2D on the raw input, in training and eval mode
    for (bool training : {true, false}) {
      CAPTURE(training);
      nn::Sequential<float> net;
      net.add<nn::BatchNorm>(16);
      if (tail) net.add<nn::LeakyReLU>(0.2); else net.add<nn::ReLU>();
      net.add<nn::MaxPool2D>(2);
      net.train(training);
      REQUIRE(net.fusion().find("(fused)") != std::string::npos);
      const Var<float> x(input);
      const Tensor<float> fused = net.forward(x).value();
      for (auto& [name, buffer] : net.named_buffers()) buffer = name.find("mean") != std::string::npos ? Tensor<float>::zeros({16}) : Tensor<float>::ones({16});
      check_agree(fused, one_by_one(net, x).value());
    }
  }
}

TEST_CASE("batch_norm fused with a rectifier and a max-pool: gradients in training and eval mode", "[nn][batchnorm][gradcheck]") {
  Rng rng(78);
  Tensor<double> distinct = Tensor<double>::empty({2, 3, 5, 7});  // no ties inside a window
  for (std::size_t i = 0; i < distinct.size(); ++i) distinct[i] = std::sin(double(i) * 1.3) * 2 + double(i) * 1e-3;
  for (std::size_t pool : {2, 3})
    for (double slope : {0.0, 0.2})
      for (bool training : {true, false}) {
        Var<double> x(distinct, true), gamma(Tensor<double>({3}, {1.5, -0.7, 0.9}), true);
        Var<double> beta(Tensor<double>({3}, {0.1, -0.2, 0.3}), true);
        Tensor<double> running_mean = Tensor<double>::randn({3}, rng), running_var = Tensor<double>::uniform({3}, rng, 0.5, 2);
        std::ostringstream name;
        name << "batch_norm + rectifier " << slope << " + max_pool " << pool << (training ? " training" : " eval");
        check_gradients(name.str(), {x, gamma, beta}, [&] {
          Tensor<double> mean_copy = running_mean, var_copy = running_var;  // each evaluation from the same statistics
          return batch_norm(x, gamma, beta, mean_copy, var_copy, training, 0.1, 1e-5, Rectifier{true, slope}, pool);
        });
      }
}

TEST_CASE("Sequential: gradients through Conv2D, BatchNorm, LeakyReLU, Flatten, Dense", "[nn][gradcheck]") {
  manual_seed(109);
  Rng rng(109);
  nn::Sequential<double> net;
  net.add<nn::Conv2D>(2, 3, 3, 2, 1);  // (3, 2, 4, 5) → (3, 3, 2, 3)
  net.add<nn::BatchNorm>(3);
  net.add<nn::LeakyReLU>(0.2);
  net.add<nn::Flatten>();
  net.add<nn::Dense>(18, 4);
  const Tensor<double> x = Tensor<double>::randn({3, 2, 4, 5}, rng);
  check_module_gradients("Sequential train", net, x);
  net.eval();
  check_module_gradients("Sequential eval", net, x);
}

// ==== layer semantics ===============================================================================

TEST_CASE("Dense: weight (out, in), bias (out), forward matches F.linear", "[nn][dense]") {
  nn::Dense<double> dense(3, 2);
  REQUIRE(dense.weight.shape() == Shape{2, 3});
  REQUIRE(dense.bias.shape() == Shape{2});
  dense.weight.value() = Tensor<double>({2, 3}, {0.25, 0.44, 0.43, -0.01, -0.16, -0.32});
  dense.bias.value() = Tensor<double>({2}, {-0.35, -0.44});
  const Var<double> x = constant({2, 3}, {0.9, 0.3, -0.7, -0.4, 0.4, -0.6});
  // from tests/reference/nn_reference.py: F.linear
  const std::vector<double> kDenseOut{-0.29399999999999998, -0.27300000000000002, -0.53200000000000003, -0.308};
  check_values(dense.forward(x).value(), kDenseOut);
  CHECK(dense(x).value().to_vector() == dense.forward(x).value().to_vector());  // operator() is forward
}

TEST_CASE("Conv2D: weight (out, in, k, k), output size and padding 'same'", "[nn][conv]") {
  nn::Conv2D<double> conv(3, 5, 4, 2, 1);
  CHECK(conv.weight.shape() == Shape{5, 3, 4, 4});
  CHECK(conv.bias.shape() == Shape{5});
  CHECK(conv.forward(Var<double>(Tensor<double>::zeros({2, 3, 8, 6}))).shape() == Shape{2, 5, 4, 3});

  // "same": output H/stride, padding (k − s)/2
  const Var<double> odd(Tensor<double>::zeros({2, 3, 7, 5}));
  const Var<double> even(Tensor<double>::zeros({2, 3, 8, 6}));
  CHECK(nn::Conv2D<double>(3, 5, 3, 1, "same").forward(odd).shape() == Shape{2, 5, 7, 5});
  CHECK(nn::Conv2D<double>(3, 5, 5, 1, "same").forward(odd).shape() == Shape{2, 5, 7, 5});
  CHECK(nn::Conv2D<double>(3, 5, 4, 2, "same").forward(even).shape() == Shape{2, 5, 4, 3});
  CHECK(nn::Conv2D<double>(3, 5, 3, 1, "valid").forward(odd).shape() == Shape{2, 5, 5, 3});

  // "same" that would need asymmetric padding is refused at construction
  CHECK_THAT(error_of([] { nn::Conv2D<double>(3, 5, 3, 2, "same"); }), Catch::Contains("same"));
  CHECK_THROWS_AS(nn::Conv2D<double>(3, 5, 4, 1, "same"), Error);
  CHECK_THROWS_AS(nn::Conv2D<double>(3, 5, 3, 1, "full"), Error);
  // and an input not divisible by the stride at forward
  nn::Conv2D<double> halving(3, 5, 4, 2, "same");
  CHECK_THAT(error_of([&] { halving.forward(Var<double>(Tensor<double>::zeros({1, 3, 7, 6}))); }),
             Catch::Contains("same") && Catch::Contains("(1, 3, 7, 6)"));
  CHECK_THROWS_AS(halving.forward(Var<double>(Tensor<double>::zeros({1, 3, 8, 5}))), Error);
}

TEST_CASE("Conv2DTranspose: weight (in, out, k, k), output size and padding 'same'", "[nn][conv]") {
  nn::Conv2DTranspose<double> up(3, 5, 4, 2, 1);
  CHECK(up.weight.shape() == Shape{3, 5, 4, 4});
  CHECK(up.bias.shape() == Shape{5});
  const Var<double> x(Tensor<double>::zeros({2, 3, 5, 7}));
  // (H − 1)·s − 2p + k + op
  CHECK(up.forward(x).shape() == Shape{2, 5, (5 - 1) * 2 - 2 + 4, (7 - 1) * 2 - 2 + 4});
  CHECK(nn::Conv2DTranspose<double>(3, 5, 3, 2, 1, 1).forward(x).shape() == Shape{2, 5, 10, 14});
  CHECK(nn::Conv2DTranspose<double>(3, 5, 3, 3, 0, 2).forward(x).shape() == Shape{2, 5, 4 * 3 + 3 + 2, 6 * 3 + 3 + 2});

  // "same": output H·stride
  CHECK(nn::Conv2DTranspose<double>(3, 5, 4, 2, "same").forward(x).shape() == Shape{2, 5, 10, 14});
  CHECK(nn::Conv2DTranspose<double>(3, 5, 2, 2, "same").forward(x).shape() == Shape{2, 5, 10, 14});
  CHECK(nn::Conv2DTranspose<double>(3, 5, 3, 1, "same").forward(x).shape() == Shape{2, 5, 5, 7});
  CHECK(nn::Conv2DTranspose<double>(3, 5, 5, 1, "same").forward(x).shape() == Shape{2, 5, 5, 7});
  CHECK_THAT(error_of([] { nn::Conv2DTranspose<double>(3, 5, 3, 2, "same"); }),
             Catch::Contains("Conv2DTranspose") && Catch::Contains("same"));
  CHECK_THROWS_AS(nn::Conv2DTranspose<double>(3, 5, 4, 1, "same"), Error);
  CHECK_THROWS_AS(nn::Conv2DTranspose<double>(3, 5, 4, 2, 1, 2), Error);  // output_padding ≥ stride
}

TEST_CASE("Conv2D forward matches F.conv2d (stride 2, padding 1)", "[nn][conv][reference]") {
  nn::Conv2D<double> conv(2, 3, 3, 2, 1);
  conv.weight.value() = Tensor<double>({3, 2, 3, 3}, {-0.25, -0.32, 0.41, 0.05,  -0.13, 0.33,  -0.15, 0.18,  -0.27,
                                                      -0.48, 0.2,   -0.16, -0.16, -0.22, -0.25, 0.07,  -0.17, -0.07,
                                                      -0.3,  0.01,  0.09,  -0.08, -0.1,  0.44,  -0.45, -0.17, 0.02,
                                                      0.1,   -0.46, -0.26, -0.45, -0.49, -0.18, -0.09, 0.36,  -0.49,
                                                      0.22,  -0.04, 0.09,  -0.35, 0.3,   -0.12, -0.09, 0.07,  -0.24,
                                                      -0.06, -0.37, 0.2,   -0.4,  -0.22, -0.28, -0.37, 0.05,  -0.3});
  conv.bias.value() = Tensor<double>({3}, {0.25, -0.22, 0.47});
  const Var<double> x = constant({1, 2, 4, 5}, {0.4,  -0.6, -0.4, 0.6,  1.0,  -0.7, -0.8, -0.6, -0.3, -0.7,
                                                0.2,  0.2,  -0.8, 0.1,  -1.0, -0.1, 1.0,  0.6,  0.2,  -0.3,
                                                -0.6, -0.1, -0.4, 0.7,  -0.6, -0.5, 0.6,  -0.5, -0.5, -0.9,
                                                -0.1, -0.5, 0.8,  -0.4, 0.5,  0.0,  -0.1, 0.9,  0.8,  -0.8});
  // from tests/reference/nn_reference.py: F.conv2d(x, w, b, stride=2, padding=1)
  const std::vector<double> kConvOut{
      0.29000000000000004,  0.65400000000000003,  0.20700000000000005,  -0.14400000000000002,
      0.04999999999999992,  0.80599999999999983,  -0.58299999999999996, 0.71400000000000019,
      -0.41400000000000003, 0.068000000000000033, -0.18699999999999994, -0.14499999999999991,
      0.76000000000000001,  0.42499999999999982,  0.53000000000000003,  0.71200000000000008,
      -0.10000000000000003, 0.13499999999999998};
  const Tensor<double> y = conv.forward(x).value();
  REQUIRE(y.shape() == Shape{1, 3, 2, 3});
  check_values(y, kConvOut);
}

TEST_CASE("Conv2DTranspose forward matches F.conv_transpose2d (stride 2, padding 1, output_padding 1)",
          "[nn][conv][reference]") {
  nn::Conv2DTranspose<double> up(2, 2, 3, 2, 1, 1);
  up.weight.value() = Tensor<double>({2, 2, 3, 3}, {-0.01, -0.37, -0.12, 0.28,  -0.26, 0.34,  0.11,  0.13,  0.41,
                                                    0.01,  -0.36, 0.14,  0.13,  0.3,   -0.37, -0.28, 0.43,  0.06,
                                                    -0.3,  -0.08, -0.11, -0.37, 0.09,  -0.45, -0.44, -0.24, -0.13,
                                                    0.06,  0.41,  -0.27, -0.35, -0.37, -0.43, -0.35, -0.28, 0.45});
  up.bias.value() = Tensor<double>({2}, {0.37, -0.36});
  const Var<double> x = constant({1, 2, 2, 3}, {0.1, -0.8, 0.2, -0.6, -0.2, -0.6, -0.4, 0.2, 0.0, -1.0, 0.8, -0.5});
  // from tests/reference/nn_reference.py: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
  const std::vector<double> kConvTransposeOut{
      0.308,                0.28599999999999998,  0.59599999999999997,  0.063999999999999946,
      0.318,                0.438,                0.78099999999999992,  0.23099999999999998,
      0.22799999999999998,  0.12999999999999995,  0.65800000000000003,  0.57899999999999996,
      0.436,                0.26400000000000001,  0.49399999999999999,  -0.041000000000000036,
      0.48099999999999998,  0.39100000000000001,  0.53200000000000003,  -0.12,
      0.152,                0.33799999999999997,  0.41199999999999998,  0.18900000000000003,
      -0.182,               -0.39899999999999997, -0.67399999999999993, -0.12400000000000003,
      -0.29999999999999999, -0.434,               -0.39899999999999991, -0.14799999999999999,
      -0.35999999999999999, -0.65400000000000003, -0.26299999999999996, -0.29699999999999999,
      -0.16999999999999998, -0.013999999999999957, -0.71599999999999997, -0.53300000000000003,
      -0.35499999999999998, 0.077000000000000013, -0.33799999999999997, -1.0699999999999998,
      -0.67000000000000004, 0.33100000000000007,  -0.47799999999999998, -0.621};
  const Tensor<double> y = up.forward(x).value();
  REQUIRE(y.shape() == Shape{1, 2, 4, 6});
  check_values(y, kConvTransposeOut);
}

TEST_CASE("Dropout: the mask is the same at one and two threads; counter_bits is splitmix64", "[nn][dropout]") {
  // splitmix64 from state 0 starts 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4 (Vigna's reference code)
  CHECK(Rng::counter_bits(0, 1) == 0xe220a8397b1dcdafULL);
  CHECK(Rng::counter_bits(0, 2) == 0x6e789e6aa1b965f4ULL);
  const Var<float> ones(Tensor<float>::ones({64, 8192}));  // big enough to be split over threads
  auto mask_at = [&](int threads) {
    const int saved = num_threads();
    set_num_threads(threads);
    Rng rng(7);
    nn::Dropout<float> drop(0.5, &rng);
    std::vector<float> mask = drop.forward(ones).value().to_vector();
    set_num_threads(saved);
    return mask;
  };
  CHECK(mask_at(1) == mask_at(2));
}

TEST_CASE("Dropout: eval is the identity; training zeroes about `rate` and scales the rest", "[nn][dropout]") {
  Rng rng(110);
  nn::Dropout<double> drop(0.3, &rng);
  const Var<double> ones(Tensor<double>::ones({100, 100}));
  const Tensor<double> y = drop.forward(ones).value();
  std::size_t zeros = 0, scaled = 0;
  for (double v : y) {
    if (v == 0.0) ++zeros;
    if (v == 1.0 / (1.0 - 0.3)) ++scaled;
  }
  CHECK(zeros + scaled == y.size());                      // survivors are scaled by exactly 1/(1 − rate)
  CHECK(double(zeros) / double(y.size()) == Approx(0.3).margin(0.02));  // ±4σ at 10000 draws
  CHECK(mean_and_std(y).first == Approx(1.0).margin(0.03));               // so the mean is kept

  drop.eval();
  const Var<double> x(Tensor<double>::randn({3, 4}, rng));
  CHECK(drop.forward(x).value().to_vector() == x.value().to_vector());
  nn::Dropout<double> none(0.0);
  CHECK(none.forward(x).value().to_vector() == x.value().to_vector());  // rate 0 in training too

  CHECK_THROWS_AS(nn::Dropout<double>(1.0), Error);
  CHECK_THROWS_AS(nn::Dropout<double>(1.5), Error);
  CHECK_THROWS_AS(nn::Dropout<double>(-0.1), Error);
}

TEST_CASE("BatchNorm2d: running statistics after 3 training passes and eval output match PyTorch",
          "[nn][batchnorm][reference]") {
  nn::BatchNorm<double> bn(2);
  bn.weight.value() = Tensor<double>({2}, {1.5, -0.5});
  bn.bias.value() = Tensor<double>({2}, {0.1, 0.2});
  const std::vector<std::vector<double>> batches{
      {1.1, -2.0, 0.7, -0.7, -0.6, -1.1, 0.2, 1.7, 1.3, 1.3, 0.0, 1.9, 1.4, 0.5, 1.6, -1.6},
      {-1.1, 1.6, -1.3, -1.7, -0.4, 0.9, 0.4, 0.1, 1.0, 1.3, -1.9, 1.6, 0.4, 1.5, 0.0, -0.7},
      {-1.5, 0.9, -1.5, 1.3, -1.3, -1.7, 0.7, 0.1, -1.3, -1.8, -0.9, 1.5, -0.5, 1.1, 1.9, 1.3}};
  // from tests/reference/nn_reference.py: torch.nn.BatchNorm2d(2), momentum 0.1, unbiased running var
  const std::vector<double> kBn2dTrainOut3{
      -1.1497876563278959,  1.6083644128095298,  -1.1497876563278959,    2.068056424332434,
      0.82499782987241388,  0.99166391783839081, -0.0083326099574712303, 0.24166652199149427,
      -0.91994165056644395, -1.4945566649700743, -0.4602496390435396,    2.2979024300938864,
      0.4916656539404598,   -0.1749986979234483, -0.50833087385540221,   -0.25833174190643682};
  const std::vector<double> kBn2dRunningMean{-0.010424999999999993, 0.066012500000000002};
  const std::vector<double> kBn2dRunningVar{1.278331785714286, 1.0682469642857144};
  const std::vector<double> kBn2dEvalOut{
      2.6345318854586366,  -0.018837794543076741, 2.501863401458551,  -1.4781911185440189,
      0.81244928456615573, -0.15507557725970419,  -0.6872142512639271, -0.058323091077118167};

  Var<double> out;
  for (const auto& batch : batches) out = bn.forward(constant({2, 2, 2, 2}, batch));
  check_values(out.value(), kBn2dTrainOut3);
  check_values(bn.running_mean.value(), kBn2dRunningMean);
  check_values(bn.running_var.value(), kBn2dRunningVar);
  // the buffers a checkpoint sees are the same tensors
  check_values(bn.named_buffers()[0].second, kBn2dRunningMean);
  check_values(bn.named_buffers()[1].second, kBn2dRunningVar);

  bn.train(false);
  check_values(bn.forward(constant({1, 2, 2, 2}, {1.9, -0.1, 1.8, -1.2, -1.2, 0.8, 1.9, 0.6})).value(), kBn2dEvalOut);
  check_values(bn.running_mean.value(), kBn2dRunningMean);  // eval leaves the statistics alone
  check_values(bn.running_var.value(), kBn2dRunningVar);
}

TEST_CASE("BatchNorm1d: running statistics and eval output on (N, F) match PyTorch", "[nn][batchnorm][reference]") {
  nn::BatchNorm<double> bn(3);
  bn.forward(constant({4, 3}, {0.3, 1.5, -0.9, 1.5, -1.8, -1.1, 1.2, 0.2, 1.3, -0.5, -1.9, 0.3}));
  bn.forward(constant({4, 3}, {0.6, -1.5, 0.5, 1.0, 1.8, 0.7, 0.3, 0.6, -0.4, 0.2, -0.2, 0.2}));
  // from tests/reference/nn_reference.py: torch.nn.BatchNorm1d(3)
  const std::vector<double> kBn1dRunningMean{0.10875000000000001, -0.027500000000000007, 0.016};
  const std::vector<double> kBn1dRunningVar{0.89694166666666675, 1.2464500000000001, 0.94580000000000009};
  const std::vector<double> kBn1dEvalOut{0.51870214362089906,  0.56204948869808247, 1.4230958080832614,
                                         -1.4874740861596778,  -0.96063438506564702, -0.73622586603151385};
  check_values(bn.running_mean.value(), kBn1dRunningMean);
  check_values(bn.running_var.value(), kBn1dRunningVar);
  bn.eval();
  check_values(bn.forward(constant({2, 3}, {0.6, 0.6, 1.4, -1.3, -1.1, -0.7})).value(), kBn1dEvalOut);
}

TEST_CASE("recompute_batch_norm_statistics: the plain average of the batches' statistics; modes and momenta restored",
          "[nn][batchnorm]") {
  const std::vector<std::vector<double>> batches{{0.3, 1.5, -0.9, 1.5, -1.8, -1.1, 1.2, 0.2, 1.3, -0.5, -1.9, 0.3},
                                                 {0.6, -1.5, 0.5, 1.0, 1.8, 0.7, 0.3, 0.6, -0.4, 0.2, -0.2, 0.2}};
  nn::Sequential<double> net;
  auto& bn = net.add<nn::BatchNorm>(3, 1e-5, 0.3);
  bn.running_mean.value().fill(5.0);  // stale statistics, as after averaging weights
  net.eval();
  nn::recompute_batch_norm_statistics(net, 2, [&](std::size_t k) {
    CHECK(bn.is_training());
    CHECK_FALSE(grad_enabled());
    CHECK(bn.momentum() == 1.0 / double(k + 1));
    net.forward(constant({4, 3}, batches[k]));
  });
  for (std::size_t f = 0; f < 3; ++f) {  // by hand: each batch's mean and unbiased variance, averaged
    double mean = 0, var = 0;
    for (const auto& b : batches) {
      double m = 0, s = 0;
      for (std::size_t i = 0; i < 4; ++i) m += b[i * 3 + f] / 4;
      for (std::size_t i = 0; i < 4; ++i) s += (b[i * 3 + f] - m) * (b[i * 3 + f] - m) / 3;
      mean += m / 2;
      var += s / 2;
    }
    CHECK(bn.running_mean.value()[f] == Approx(mean).epsilon(1e-12));
    CHECK(bn.running_var.value()[f] == Approx(var).epsilon(1e-12));
  }
  CHECK_FALSE(bn.is_training());
  CHECK(bn.momentum() == 0.3);
  CHECK(grad_enabled());
}

// ==== optimizers against torch.optim ===============================================================

namespace {
// p0 and the three gradients of nn_reference.py's optimizer section
const std::vector<double> kOptP0{0.5, -1.0, 2.0, 0.0};
const std::vector<std::vector<double>> kOptGrads{{0.1, -0.2, 0.3, 0.0}, {-0.5, 0.4, 0.05, 1.0}, {0.2, 0.2, -0.1, -2.0}};

/// Three steps with kOptGrads set as the gradient; after step s the parameter must equal row s
/// of `expected` (3 rows of 4 values).
template <class Make>
void check_three_steps(Make make, const std::vector<double>& expected) {
  Var<double> p = leaf({4}, kOptP0);
  auto opt = make(std::vector<Var<double>>{p});
  for (std::size_t step = 0; step < 3; ++step) {
    p.set_grad(Tensor<double>({4}, kOptGrads[step]));
    opt.step();
    INFO("after step " << step + 1);
    check_values(p.value(), std::vector<double>(expected.begin() + 4 * step, expected.begin() + 4 * step + 4));
  }
}
}  // namespace

TEST_CASE("Adam: three steps match torch.optim.Adam, with and without weight decay", "[nn][optim][reference]") {
  // from tests/reference/nn_reference.py: Adam(lr=0.1, betas=(0.5, 0.999)), then weight_decay=0.1
  const std::vector<double> kAdamSteps{
      0.40000000999999896, -0.90000000499999977, 1.9000000033333333, 0,
      0.48318583301178203, -0.96323606676133644, 1.8379865911470075, -0.094257329652484401,
      0.48770314697564265, -1.0339467482784446,  1.8379865911470075, -0.027889887101793215};
  const std::vector<double> kAdamWeightDecaySteps{
      0.40000000666666624, -0.90000000333333319, 1.9000000020000001, 0,
      0.47500600905950507, -0.93496769462517504, 1.8166904885007871, -0.094257329652484401,
      0.4649901492713755,  -0.97651804611331106, 1.7589942540991601, -0.027723864464040987};
  check_three_steps([](std::vector<Var<double>> ps) { return optim::Adam<double>(ps, 0.1, 0.5, 0.999); }, kAdamSteps);
  check_three_steps([](std::vector<Var<double>> ps) { return optim::Adam<double>(ps, 0.1, 0.5, 0.999, 1e-8, 0.1); },
                    kAdamWeightDecaySteps);
}

TEST_CASE("AdamW: three steps match torch.optim.AdamW (decoupled weight decay)", "[nn][optim][reference]") {
  // from tests/reference/nn_reference.py: AdamW(lr=0.1, betas=(0.5, 0.999), weight_decay=0.1)
  const std::vector<double> kAdamWSteps{
      0.39500000999999896, -0.89000000499999976, 1.8800000033333333, 0,
      0.47423583291178201, -0.94433606671133641, 1.7991865911136742, -0.094257329652484401,
      0.47401078854652479, -1.0056033875613313,  1.7811947252025375, -0.026947313805268366};
  check_three_steps([](std::vector<Var<double>> ps) { return optim::AdamW<double>(ps, 0.1, 0.5, 0.999, 1e-8, 0.1); },
                    kAdamWSteps);
}

TEST_CASE("SGD: momentum, Nesterov, weight decay with dampening match torch.optim.SGD", "[nn][optim][reference]") {
  // from tests/reference/nn_reference.py: SGD(lr=0.1, momentum=0.9), + nesterov=True,
  // and momentum=0.9, dampening=0.5, weight_decay=0.1
  const std::vector<double> kSgdMomentumSteps{
      0.48999999999999999, -0.97999999999999998, 1.97,               0,
      0.53100000000000003, -1.002,               1.9379999999999999, -0.10000000000000001,
      0.54790000000000005, -1.0418000000000001,  1.9192,             0.010000000000000009};
  const std::vector<double> kSgdNesterovSteps{
      0.48099999999999998, -0.96199999999999997, 1.9430000000000001, 0,
      0.56789999999999996, -1.0218,              1.9092,             -0.19,
      0.56311,             -1.07762,             1.90228,            0.10900000000000004};
  const std::vector<double> kSgdDecayDampeningSteps{
      0.48499999999999999, -0.96999999999999997, 1.95,               0,
      0.49407499999999999, -0.95814999999999995, 1.8927499999999999, -0.050000000000000003,
      0.489772125,         -0.95269424999999996, 1.8367612499999999, 0.0052499999999999995};
  check_three_steps([](std::vector<Var<double>> ps) { return optim::SGD<double>(ps, 0.1, 0.9); }, kSgdMomentumSteps);
  check_three_steps([](std::vector<Var<double>> ps) { return optim::SGD<double>(ps, 0.1, 0.9, 0.0, 0.0, true); },
                    kSgdNesterovSteps);
  check_three_steps([](std::vector<Var<double>> ps) { return optim::SGD<double>(ps, 0.1, 0.9, 0.5, 0.1); },
                    kSgdDecayDampeningSteps);
}

// ==== losses against PyTorch ========================================================================

TEST_CASE("bce: value and gradient match F.binary_cross_entropy, also at p = 0 and 1", "[nn][loss][reference]") {
  Var<double> p = leaf({2, 3}, {0.1, 0.7, 0.95, 0.3, 0.5, 0.02});
  const Tensor<double> target({2, 3}, {0.0, 1.0, 1.0, 0.25, 0.5, 1.0});  // a Tensor target converts
  // from tests/reference/nn_reference.py
  const std::vector<double> kBce{0.94783305816795549};
  const std::vector<double> kBceGrad{0.18518518518518515, -0.23809523809523811, -0.17543859649122806,
                                     0.039682539682539673, 0, -8.3333333333333339};
  Var<double> loss = nn::bce(p, target);
  CHECK(loss.value().item() == Approx(kBce[0]).epsilon(1e-10));
  loss.backward();
  check_values(p.grad(), kBceGrad);

  // PyTorch clamps each log at −100: p = 0 with t = 1 costs 100, not infinity
  Var<double> saturated = leaf({5}, {0.0, 1.0, 0.0, 1.0, 0.5});
  const std::vector<double> kBceSaturated{40.138629436111991};
  const std::vector<double> kBceSaturatedGrad{-200000000799.16058, 200000000799.16058, 0, 0, 0};
  Var<double> sat_loss = nn::bce(saturated, constant({5}, {1.0, 0.0, 0.0, 1.0, 0.5}));
  CHECK(sat_loss.value().item() == Approx(kBceSaturated[0]).epsilon(1e-10));
  sat_loss.backward();
  // the gradient's denominator p(1 − p) is clamped at PyTorch's EPSILON, float32(1e-12)
  check_values(saturated.grad(), kBceSaturatedGrad);
}

TEST_CASE("bce_with_logits: value and gradient match PyTorch, finite at logits ±100", "[nn][loss][reference]") {
  Var<double> z = leaf({2, 3}, {-100.0, 100.0, 0.5, -2.0, 100.0, -100.0});
  // from tests/reference/nn_reference.py: F.binary_cross_entropy_with_logits
  const std::vector<double> kBceWithLogits{33.491834165870507};
  const std::vector<double> kBceWithLogitsGrad{-0.16666666666666666, 0.16666666666666666, 0.05374322186697577,
                                               0.019867153670352924, 0, 6.2001266267013923e-45};
  Var<double> loss = nn::bce_with_logits(z, constant({2, 3}, {1.0, 0.0, 0.3, 0.0, 1.0, 0.0}));
  CHECK(std::isfinite(loss.value().item()));
  CHECK(loss.value().item() == Approx(kBceWithLogits[0]).epsilon(1e-10));
  loss.backward();
  check_values(z.grad(), kBceWithLogitsGrad);
}

TEST_CASE("mse and l1: values and gradients match PyTorch", "[nn][loss][reference]") {
  const std::vector<double> x_values{0.7, -0.3, -0.5, 0.8, -0.7, -0.7};
  const Var<double> target = constant({2, 3}, {-0.5, 0.7, -0.8, -0.6, 0.9, 0.8});
  // from tests/reference/nn_reference.py: F.mse_loss, F.l1_loss
  const std::vector<double> kMse{1.5499999999999998};
  const std::vector<double> kMseGrad{0.39999999999999997, -0.33333333333333331, 0.10000000000000001,
                                     0.46666666666666662, -0.53333333333333333, -0.5};
  const std::vector<double> kL1{1.1666666666666667};
  const std::vector<double> kL1Grad{0.16666666666666666,  -0.16666666666666666, 0.16666666666666666,
                                    0.16666666666666666,  -0.16666666666666666, -0.16666666666666666};
  Var<double> x = leaf({2, 3}, x_values);
  Var<double> mse_loss = nn::mse(x, target);
  CHECK(mse_loss.value().item() == Approx(kMse[0]).epsilon(1e-10));
  mse_loss.backward();
  check_values(x.grad(), kMseGrad);

  Var<double> y = leaf({2, 3}, x_values);
  Var<double> l1_loss = nn::l1(y, target);
  CHECK(l1_loss.value().item() == Approx(kL1[0]).epsilon(1e-10));
  l1_loss.backward();
  check_values(y.grad(), kL1Grad);
}

TEST_CASE("cross_entropy: value and gradient match F.cross_entropy", "[nn][loss][reference]") {
  Var<double> z = leaf({3, 4}, {0.8, -1.4, 0.9, 2.0, 0.8, 0.2, 0.9, 1.6, -0.3, 0.8, 0.5, 0.4});
  // from tests/reference/nn_reference.py: F.cross_entropy(z, [2, 0, 3])
  const std::vector<double> kCrossEntropy{1.5352521138126269};
  const std::vector<double> kCrossEntropyGrad{
      0.060210956319727338, 0.0066715641282423183, -0.26678993545924751, 0.19990741501127784,
      -0.26502065187627527, 0.037490794476418079,  0.075497188882106103, 0.15203266851775113,
      0.040436096867731593, 0.12147674835104605,   0.089992188567622727, -0.25190503378640033};
  Var<double> loss = nn::cross_entropy(z, {2, 0, 3});
  CHECK(loss.value().item() == Approx(kCrossEntropy[0]).epsilon(1e-10));
  loss.backward();
  check_values(z.grad(), kCrossEntropyGrad);
}

TEST_CASE("kl_normal: value and gradients match -0.5·sum(1 + logvar − mu² − e^logvar)/N",
          "[nn][loss][reference]") {
  Var<double> mu = leaf({2, 3}, {-0.1, -0.2, -1.0, 0.6, 0.0, 0.3});
  Var<double> logvar = leaf({2, 3}, {-0.5, 0.1, -0.9, 0.0, 0.0, -0.4});
  // from tests/reference/nn_reference.py (the formula evaluated in torch)
  const std::vector<double> kKlNormal{0.49714782089112985};
  const std::vector<double> kKlNormalGradMu{-0.050000000000000003, -0.10000000000000001, -0.5,
                                            0.29999999999999999,   0,                    0.14999999999999999};
  const std::vector<double> kKlNormalGradLogvar{-0.098367335071841644, 0.026292729518911928, -0.14835758506485022,
                                                0,                     0,                    -0.082419988491090196};
  Var<double> loss = nn::kl_normal(mu, logvar);
  CHECK(loss.value().item() == Approx(kKlNormal[0]).epsilon(1e-10));
  loss.backward();
  check_values(mu.grad(), kKlNormalGradMu);
  check_values(logvar.grad(), kKlNormalGradLogvar);
}

// ==== initialisation =================================================================================

TEST_CASE("default init: Dense(100, 50) is U(±1/sqrt(100)) for weight and bias, as nn.Linear", "[nn][init]") {
  manual_seed(111);
  nn::Dense<double> dense(100, 50);
  const double bound = 1.0 / std::sqrt(100.0);
  const auto [mean, stddev] = mean_and_std(dense.weight.value());
  CHECK(max_abs(dense.weight.value()) <= bound);
  CHECK(max_abs(dense.weight.value()) > 0.99 * bound);  // 5000 draws reach the edge
  CHECK(mean == Approx(0.0).margin(0.01 * bound));
  CHECK(stddev == Approx(bound / std::sqrt(3.0)).epsilon(0.05));  // the std of U(−b, b)
  CHECK(max_abs(dense.bias.value()) <= bound);
  CHECK(max_abs(dense.bias.value()) > 0.0);
}

TEST_CASE("default init: Conv2DTranspose(128, 64, 4) uses fan_in = 64·16, as PyTorch", "[nn][init]") {
  manual_seed(112);
  nn::Conv2DTranspose<double> up(128, 64, 4);
  const double bound = 1.0 / std::sqrt(64.0 * 16);  // fan_in from weight.size(1) = out channels
  CHECK(max_abs(up.weight.value()) <= bound);
  CHECK(max_abs(up.weight.value()) > 0.99 * bound);  // so not the tighter 1/sqrt(128·16)
  CHECK(mean_and_std(up.weight.value()).second == Approx(bound / std::sqrt(3.0)).epsilon(0.05));
  CHECK(max_abs(up.bias.value()) <= bound);
  CHECK(max_abs(up.bias.value()) > 1.0 / std::sqrt(128.0 * 16));

  nn::Conv2D<double> conv(3, 64, 4);  // fan_in = 3·16
  CHECK(max_abs(conv.weight.value()) <= 1.0 / std::sqrt(48.0));
  CHECK(mean_and_std(conv.weight.value()).second == Approx(1.0 / std::sqrt(48.0 * 3)).epsilon(0.05));
}

TEST_CASE("default init: manual_seed makes layers reproducible", "[nn][init]") {
  manual_seed(7);
  nn::Dense<double> a(5, 4);
  nn::Conv2D<double> conv_a(2, 3, 3);
  manual_seed(7);
  nn::Dense<double> b(5, 4);
  nn::Conv2D<double> conv_b(2, 3, 3);
  manual_seed(8);
  nn::Dense<double> c(5, 4);
  CHECK(a.weight.value().to_vector() == b.weight.value().to_vector());
  CHECK(a.bias.value().to_vector() == b.bias.value().to_vector());
  CHECK(conv_a.weight.value().to_vector() == conv_b.weight.value().to_vector());
  CHECK(a.weight.value().to_vector() != c.weight.value().to_vector());
  CHECK(a.bias.value().to_vector() != c.bias.value().to_vector());
}

// ==== loss gradients and errors ======================================================================

TEST_CASE("losses: gradients with respect to input and target", "[nn][loss][gradcheck]") {
  Rng rng(113);
  Var<double> p(Tensor<double>::uniform({2, 3}, rng, 0.1, 0.9), true);
  Var<double> t(Tensor<double>::uniform({2, 3}, rng, 0.0, 1.0), true);
  check_gradients("bce", {p, t}, [&] { return nn::bce(p, t); });

  Var<double> z(Tensor<double>({2, 3}, {-30.0, -1.5, -0.2, 0.4, 2.0, 30.0}), true);
  check_gradients("bce_with_logits", {z, t}, [&] { return nn::bce_with_logits(z, t); });

  Var<double> x(Tensor<double>::randn({2, 3}, rng), true);
  Tensor<double> y_value = x.value();
  y_value += away_from_zero({2, 3}, rng, 0.1);  // l1 has a kink where input = target
  Var<double> y(y_value, true);
  check_gradients("mse", {x, y}, [&] { return nn::mse(x, y); });
  check_gradients("l1", {x, y}, [&] { return nn::l1(x, y); });

  Var<double> logits(Tensor<double>::randn({4, 5}, rng), true);
  check_gradients("cross_entropy", {logits}, [&] { return nn::cross_entropy(logits, {1, 0, 4, 4}); });

  Var<double> mu(Tensor<double>::randn({3, 4}, rng), true);
  Var<double> logvar(Tensor<double>::randn({3, 4}, rng), true);
  check_gradients("kl_normal", {mu, logvar}, [&] { return nn::kl_normal(mu, logvar); });
}

TEST_CASE("losses: mismatched shapes throw naming the loss and both shapes", "[nn][loss][errors]") {
  const Var<double> a(Tensor<double>::full({2, 3}, 0.5));
  const Var<double> b(Tensor<double>::full({3, 2}, 0.5));
  auto check_error = [](const std::string& loss, const std::string& error) {
    INFO(loss);
    CHECK_THAT(error, Catch::Contains(loss + ":") && Catch::Contains("(2, 3)") && Catch::Contains("(3, 2)"));
  };
  check_error("bce", error_of([&] { nn::bce(a, b); }));
  check_error("bce_with_logits", error_of([&] { nn::bce_with_logits(a, b); }));
  check_error("mse", error_of([&] { nn::mse(a, b); }));
  check_error("l1", error_of([&] { nn::l1(a, b); }));
  check_error("kl_normal", error_of([&] { nn::kl_normal(a, b); }));
  // same number of elements is not enough
  CHECK_THROWS_AS(nn::mse(a, Var<double>(Tensor<double>::zeros({6}))), Error);
}

TEST_CASE("cross_entropy: label and logit shape errors", "[nn][loss][errors]") {
  const Var<double> z(Tensor<double>::zeros({2, 4}));
  CHECK_THAT(error_of([&] { nn::cross_entropy(z, {0, 4}); }), Catch::Contains("cross_entropy") && Catch::Contains("4"));
  CHECK_THROWS_AS(nn::cross_entropy(z, {-1, 0}), Error);
  CHECK_THAT(error_of([&] { nn::cross_entropy(z, {0}); }), Catch::Contains("1 labels") && Catch::Contains("(2, 4)"));
  CHECK_THROWS_AS(nn::cross_entropy(z, {0, 1, 2}), Error);
  CHECK_THROWS_AS(nn::cross_entropy(Var<double>(Tensor<double>::zeros({4})), {0}), Error);
}

TEST_CASE("layers: wrong input shapes throw naming the layer and the shape", "[nn][errors]") {
  nn::Dense<double> dense(3, 2);
  CHECK_THAT(error_of([&] { dense.forward(Var<double>(Tensor<double>::zeros({2, 4}))); }),
             Catch::Contains("Dense(3, 2)") && Catch::Contains("(2, 4)"));
  CHECK_THROWS_AS(dense.forward(Var<double>(Tensor<double>::zeros({3}))), Error);
  nn::Conv2D<double> conv(3, 4, 3);
  CHECK_THAT(error_of([&] { conv.forward(Var<double>(Tensor<double>::zeros({1, 2, 5, 5}))); }),
             Catch::Contains("(1, 2, 5, 5)"));
  nn::Conv2DTranspose<double> up(3, 4, 3);
  CHECK_THROWS_AS(up.forward(Var<double>(Tensor<double>::zeros({1, 4, 5, 5}))), Error);
  nn::BatchNorm<double> bn(3);
  CHECK_THAT(error_of([&] { bn.forward(Var<double>(Tensor<double>::zeros({4, 2}))); }), Catch::Contains("(4, 2)"));
  nn::Reshape<double> reshape_layer(Shape{3, 2});
  CHECK_THAT(error_of([&] { reshape_layer.forward(Var<double>(Tensor<double>::zeros({2, 5}))); }),
             Catch::Contains("(2, 5)"));
  nn::GlobalAvgPool2D<double> global;
  CHECK_THROWS_AS(global.forward(Var<double>(Tensor<double>::zeros({2, 3}))), Error);
  nn::MaxPool2D<double> pool(3);
  CHECK_THROWS_AS(pool.forward(Var<double>(Tensor<double>::zeros({1, 1, 2, 2}))), Error);  // window larger than input
  nn::Embedding<double> emb(4, 2);
  CHECK_THROWS_AS(emb.forward(std::vector<std::int64_t>{4}), Error);
  CHECK_THROWS_AS(emb.forward(constant({1}, {-1.0})), Error);
}

TEST_CASE("Embedding: a label that is not a whole number throws", "[nn][errors]") {
  nn::Embedding<double> emb(4, 2);
  CHECK_THAT(error_of([&] { emb.forward(constant({3}, {0.0, 1.5, 2.0})); }),
             Catch::Contains("Embedding(4, 2)") && Catch::Contains("1.5"));
}

// ==== module tree and naming ==========================================================================

TEST_CASE("Sequential: parameter and buffer names follow nn.Sequential's state dict", "[nn][module]") {
  nn::Sequential<double> net;
  auto& first = net.add<nn::Dense>(4, 3);
  net.add<nn::LeakyReLU>(0.2);
  net.add<nn::BatchNorm>(3);
  net.add<nn::Dense>(3, 2);
  CHECK(names_of(net.named_parameters()) ==
        std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"});
  CHECK(names_of(net.named_buffers()) == std::vector<std::string>{"2.running_mean", "2.running_var"});
  CHECK(names_of(net.named_modules()) == std::vector<std::string>{"", "0", "1", "2", "3"});
  CHECK(net.parameters().size() == 6);
  CHECK(net.size() == 4);
  // the named handles are the layers' own parameters, not copies
  CHECK(net.named_parameters()[0].second.node() == first.weight.node());
  CHECK(net.parameters()[1].node() == first.bias.node());
  CHECK_THROWS_AS(net[4], Error);
}

TEST_CASE("Sequential: a nested Sequential's names get both prefixes", "[nn][module]") {
  nn::Sequential<double> outer;
  outer.add<nn::Dense>(2, 3);
  auto inner = std::make_shared<nn::Sequential<double>>();
  outer.add(inner);
  inner->add<nn::Dense>(3, 3);  // layers added after registration are still found
  inner->add<nn::BatchNorm>(3);
  CHECK(names_of(outer.named_parameters()) ==
        std::vector<std::string>{"0.weight", "0.bias", "1.0.weight", "1.0.bias", "1.1.weight", "1.1.bias"});
  CHECK(names_of(outer.named_buffers()) == std::vector<std::string>{"1.1.running_mean", "1.1.running_var"});
  CHECK(names_of(outer.named_modules()) == std::vector<std::string>{"", "0", "1", "1.0", "1.1"});
  CHECK(outer.forward(Var<double>(Tensor<double>::ones({4, 2}))).shape() == Shape{4, 3});
}

TEST_CASE("custom Module: register_parameter, register_buffer and register_module give dotted names",
          "[nn][module]") {
  ScaledDense block;
  CHECK(names_of(block.named_parameters()) == std::vector<std::string>{"scale", "proj.weight", "proj.bias"});
  CHECK(names_of(block.named_buffers()) == std::vector<std::string>{"calls"});
  CHECK(names_of(block.named_modules()) == std::vector<std::string>{"", "proj"});
  CHECK(block.named_children().size() == 1);

  nn::Sequential<double> net;
  net.add<nn::Dense>(4, 3);
  net.add<ScaledDense>();
  CHECK(names_of(net.named_parameters()) ==
        std::vector<std::string>{"0.weight", "0.bias", "1.scale", "1.proj.weight", "1.proj.bias"});
  CHECK(names_of(net.named_buffers()) == std::vector<std::string>{"1.calls"});
  CHECK(net.forward(Var<double>(Tensor<double>::ones({5, 4}))).shape() == Shape{5, 2});
}

TEST_CASE("Module: duplicate names, dotted names, empty names and null children throw", "[nn][module][errors]") {
  ScaledDense block;
  CHECK_THAT(error_of([&] { block.register_parameter("scale", Tensor<double>::ones({1})); }),
             Catch::Contains("scale") && Catch::Contains("already"));
  CHECK_THROWS_AS(block.register_buffer("scale", Tensor<double>::ones({1})), Error);  // taken by a parameter
  CHECK_THROWS_AS(block.register_parameter("calls", Tensor<double>::ones({1})), Error);  // taken by a buffer
  CHECK_THROWS_AS(block.register_buffer("proj", Tensor<double>::ones({1})), Error);   // taken by a child
  CHECK_THROWS_AS(block.register_module("proj", std::make_shared<nn::ReLU<double>>()), Error);
  CHECK_THAT(error_of([&] { block.register_parameter("a.b", Tensor<double>::ones({1})); }), Catch::Contains("a.b"));
  CHECK_THROWS_AS(block.register_module("x.y", std::make_shared<nn::ReLU<double>>()), Error);
  CHECK_THROWS_AS(block.register_buffer("", Tensor<double>::ones({1})), Error);
  CHECK_THROWS_AS(block.register_module("none", std::shared_ptr<nn::ReLU<double>>()), Error);
  CHECK(block.named_parameters().size() == 3);  // failed registrations leave nothing behind
}

TEST_CASE("Module: train(false) and eval() reach every descendant; train() restores", "[nn][module]") {
  nn::Sequential<double> net;
  net.add<nn::Dense>(4, 3);
  net.add<nn::Dropout>(0.5);
  auto inner = std::make_shared<nn::Sequential<double>>();
  inner->add<nn::BatchNorm>(3);
  inner->add<ScaledDense>();
  net.add(inner);
  REQUIRE(net.named_modules().size() == 7);  // "", 0, 1, 2, 2.0, 2.1 and 2.1.proj
  for (auto& [name, m] : net.named_modules()) CHECK(m->is_training());
  net.train(false);
  for (auto& [name, m] : net.named_modules()) {
    INFO(name);
    CHECK_FALSE(m->is_training());
  }
  net.train();
  for (auto& [name, m] : net.named_modules()) CHECK(m->is_training());
  net.eval();
  for (auto& [name, m] : net.named_modules()) {
    INFO(name);
    CHECK_FALSE(m->is_training());
  }
}

TEST_CASE("Profiler: forward and backward time per Sequential layer, nested scopes joined", "[nn][profile]") {
  nn::Sequential<double> net;
  net.add<nn::Dense>(3, 4);
  net.add<nn::LeakyReLU>(0.2);
  Rng rng(31);
  const Var<double> x(Tensor<double>::randn({5, 3}, rng));
  bool named = false;
  { ProfileScope unused([&] { named = true; return std::string("never"); }); }
  CHECK_FALSE(named);  // no Profiler: the name is not even built
  net(x);              // nor is anything recorded

  Profiler profile;
  CHECK_THROWS_WITH(Profiler(), Catch::Contains("another profiler"));
  {
    ProfileScope outer("net");
    Var<double> loss = sum(net(x));
    loss.backward();
    net(x);  // a second forward accumulates into the same rows
  }
  const auto& rows = profile.rows();
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].label == "net");
  CHECK(rows[1].label == "net/0 " + net[0].repr());
  CHECK(rows[2].label == "net/1 " + net[1].repr());
  for (const auto& row : rows) CHECK(row.forward_s >= 0);
  CHECK(rows[1].backward_s > 0);  // Dense's matmul and bias closures ran under its label
  CHECK(rows[2].backward_s > 0);
  CHECK(rows[0].backward_s > 0);  // sum() was recorded in the outer scope
}

TEST_CASE("Sequential::add: layer template, full type and shared_ptr", "[nn][module]") {
  nn::Sequential<double> net;
  nn::Dense<double>& a = net.add<nn::Dense>(4, 3);
  nn::Dense<double>& b = net.add<nn::Dense<double>>(3, 3, false);
  auto built = std::make_shared<nn::Dense<double>>(3, 2);
  nn::Dense<double>& c = net.add(built);
  CHECK(a.weight.shape() == Shape{3, 4});
  CHECK_FALSE(b.bias.defined());
  CHECK(&c == built.get());
  CHECK(net.size() == 3);
  CHECK(&net[2] == built.get());
  CHECK(net.parameters().size() == 5);
  CHECK(net.forward(Var<double>(Tensor<double>::ones({1, 4}))).shape() == Shape{1, 2});
}

TEST_CASE("Module: forward without a single-input forward throws", "[nn][module][errors]") {
  nn::Module<double> bare;
  const Var<double> x(Tensor<double>::ones({1, 2}));
  CHECK_THAT(error_of([&] { bare.forward(x); }), Catch::Contains("single-input forward"));
  CHECK_THROWS_AS(bare(x), Error);
  nn::Sequential<double> net;
  net.add(std::make_shared<nn::Module<double>>());
  CHECK_THROWS_AS(net.forward(x), Error);
}

// ==== optimizer behaviour ============================================================================

TEST_CASE("optimizers: zero_grad drops every gradient", "[nn][optim]") {
  Var<double> a = leaf({2}, {1.0, 2.0}), b = leaf({3}, {0.0, 0.0, 0.0});
  optim::Adam<double> opt({a, b});
  a.set_grad(Tensor<double>({2}, {0.5, 0.5}));
  b.set_grad(Tensor<double>({3}, {1.0, 1.0, 1.0}));
  opt.zero_grad();
  CHECK_FALSE(a.has_grad());
  CHECK_FALSE(b.has_grad());
}

TEST_CASE("optimizers: step skips parameters without a gradient", "[nn][optim]") {
  Var<double> a = leaf({2}, {1.0, 2.0}), b = leaf({2}, {3.0, 4.0});
  optim::Adam<double> opt({a, b}, 0.1);
  a.set_grad(Tensor<double>({2}, {0.5, -0.5}));
  opt.step();
  CHECK(b.value().to_vector() == std::vector<double>{3.0, 4.0});
  CHECK(opt.step_counts() == std::vector<std::uint64_t>{1, 0});
  CHECK(a.value()[0] == Approx(1.0 - 0.1).epsilon(1e-6));  // Adam's first step moves by about lr

  b.set_grad(Tensor<double>({2}, {2.0, -2.0}));
  opt.step();
  CHECK(opt.step_counts() == std::vector<std::uint64_t>{2, 1});
  // b's first update is bias-corrected as a first step: again about lr, whatever a's count is
  CHECK(b.value()[0] == Approx(3.0 - 0.1).epsilon(1e-6));
  CHECK(b.value()[1] == Approx(4.0 + 0.1).epsilon(1e-6));

  Var<double> c = leaf({1}, {5.0});
  optim::SGD<double> sgd({c}, 0.1, 0.9);
  sgd.step();
  CHECK(c.value()[0] == 5.0);
  CHECK(sgd.step_counts()[0] == 0);
}

TEST_CASE("optimizers: named_state names and shapes follow the parameters", "[nn][optim]") {
  Var<double> w(Tensor<double>::zeros({2, 3}), true), b(Tensor<double>::zeros({3}), true);
  optim::Adam<double> adam({w, b});
  CHECK(names_of(adam.named_state()) ==  // parameter by parameter, as PyTorch's state[i]
        std::vector<std::string>{"0.exp_avg", "0.exp_avg_sq", "1.exp_avg", "1.exp_avg_sq"});
  for (const auto& [name, state] : adam.named_state()) {
    INFO(name);
    CHECK(state->shape() == (name[0] == '0' ? w.shape() : b.shape()));
  }
  optim::AdamW<double> adamw({w, b});
  CHECK(names_of(adamw.named_state()) == names_of(adam.named_state()));

  optim::SGD<double> momentum({w, b}, 0.1, 0.9);
  CHECK(names_of(momentum.named_state()) == std::vector<std::string>{"0.momentum_buffer", "1.momentum_buffer"});
  CHECK(momentum.named_state()[0].second->shape() == w.shape());
  CHECK(momentum.named_state()[1].second->shape() == b.shape());
  optim::SGD<double> plain({w, b}, 0.1);
  CHECK(plain.named_state().empty());

  // the state is live: after one step exp_avg = (1 − β1)·g
  w.set_grad(Tensor<double>::full({2, 3}, 2.0));
  adam.step();
  for (const auto& [name, state] : adam.named_state())
    if (name == "0.exp_avg") CHECK((*state)[4] == Approx((1 - 0.9) * 2.0));
}

TEST_CASE("optimizers: invalid hyperparameters throw", "[nn][optim][errors]") {
  Var<double> p(Tensor<double>::zeros({2}), true);
  CHECK_THAT(error_of([&] { optim::SGD<double>({p}, -0.1); }), Catch::Contains("-0.1"));
  CHECK_THROWS_AS(optim::Adam<double>({p}, -1e-3), Error);
  CHECK_THROWS_AS(optim::AdamW<double>({p}, -1e-3), Error);
  CHECK_THROWS_AS(optim::Adam<double>({p}, 1e-3, 1.0), Error);         // beta1 must be < 1
  CHECK_THROWS_AS(optim::Adam<double>({p}, 1e-3, 0.9, -0.1), Error);   // beta2 ≥ 0
  CHECK_THROWS_AS(optim::SGD<double>({p}, 0.1, 0.0, 0.0, 0.0, true), Error);  // Nesterov needs momentum
  CHECK_THROWS_AS(optim::SGD<double>({p}, 0.1, 0.9, 0.5, 0.0, true), Error);  // ... and no dampening
  CHECK_THROWS_AS(optim::SGD<double>({Var<double>(Tensor<double>::zeros({2}))}, 0.1), Error);  // not trainable
}

TEST_CASE("learning-rate schedules: cosine and constant-then-linear decay", "[nn][optim]") {
  CHECK(optim::cosine_decay(0, 10) == Approx(1.0));
  CHECK(optim::cosine_decay(5, 10) == Approx(0.5));
  CHECK(optim::cosine_decay(9, 10) == Approx(0.5 * (1 + std::cos(0.9 * 3.14159265358979))));
  // 8 epochs, 4 constant: pix2pix's 1 − max(0, e + 1 − 4)/(4 + 1)
  const std::vector<double> expected{1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2};
  for (std::size_t e = 0; e < 8; ++e) CHECK(optim::linear_decay(e, 8, 4) == Approx(expected[e]));
  CHECK(optim::linear_decay(0, 3, 0) == Approx(0.75));
  CHECK_THROWS_WITH(optim::linear_decay(0, 4, 4), Catch::Contains("4 constant epochs of 4"));
  CHECK_THROWS_AS(optim::cosine_decay(0, 0), Error);
}

TEST_CASE("WeightAverage: warmed-up exponential average, swapped in for a scope, checkpointed", "[nn][optim]") {
  nn::Sequential<double> net;
  net.add<nn::Dense>(2, 1);
  net.add<nn::BatchNorm>(1);
  Tensor<double>& w = net.named_parameters()[0].second.value();
  Tensor<double>& running_mean = net.named_buffers()[0].second;
  w = Tensor<double>::full({1, 2}, 1.0);
  optim::WeightAverage<double> average(net, 0.5);
  w = Tensor<double>::full({1, 2}, 3.0);
  running_mean = Tensor<double>::full({1}, 2.0);
  average.update();  // d = min(0.5, 1/10): 0.1·1 + 0.9·3 = 2.8; buffers too: 0.1·0 + 0.9·2 = 1.8
  w = Tensor<double>::full({1, 2}, 5.0);
  average.update();  // d = min(0.5, 2/11) = 2/11: (2/11)·2.8 + (9/11)·5 = 4.6
  {
    const auto averaged = average.swap_in();
    CHECK(w[0] == Approx(2.0 / 11 * 2.8 + 9.0 / 11 * 5.0));
    CHECK(running_mean[0] == Approx(2.0 / 11 * 1.8 + 9.0 / 11 * 2.0));
  }
  CHECK(w[0] == 5.0);  // the module's own weights are back
  for (int i = 0; i < 20; ++i) average.update();  // d reaches 0.5 at update 8
  {
    const auto averaged = average.swap_in();
    CHECK(w[1] == Approx(5.0));
  }

  testing::TempDir dir;
  io::Checkpoint<double> saved;
  saved.add("average", average).save(dir / "average.tsr");
  optim::WeightAverage<double> restored(net, 0.5);
  io::Checkpoint<double> loader;
  loader.add("average", restored).load(dir / "average.tsr");
  CHECK(restored.updates() == 22);
  CHECK(restored.named_state()[0].second->at(0, 1) == average.named_state()[0].second->at(0, 1));
  CHECK_THROWS_WITH(optim::WeightAverage<double>(net, 1.0), Catch::Contains("WeightAverage: decay must be in [0, 1), got 1"));
}

TEST_CASE("clip_grad_norm_ and clip_grad_value_ as torch.nn.utils", "[nn][optim]") {
  Var<double> a(Tensor<double>::zeros({2}), true), b(Tensor<double>::zeros({1}), true), none(Tensor<double>::zeros({3}), true);
  auto set = [&] {
    a.set_grad(Tensor<double>(Shape{2}, std::vector<double>{3.0, -4.0}));
    b.set_grad(Tensor<double>(Shape{1}, std::vector<double>{12.0}));
  };
  set();
  // ‖(3, −4, 12)‖ = 13; scaled by 6.5 / (13 + 1e-6)
  CHECK(optim::clip_grad_norm_<double>({a, b, none}, 6.5) == Approx(13.0));
  CHECK(a.grad()[0] == Approx(1.5).epsilon(1e-6));
  CHECK(b.grad()[0] == Approx(6.0).epsilon(1e-6));
  CHECK_FALSE(none.has_grad());
  set();
  CHECK(optim::clip_grad_norm_<double>({a, b}, 100.0) == Approx(13.0));  // under the bound: unchanged
  CHECK(a.grad()[1] == -4.0);
  CHECK(optim::clip_grad_norm_<double>({a, b}, 6.0, std::numeric_limits<double>::infinity()) == Approx(12.0));
  CHECK(b.grad()[0] == Approx(6.0).epsilon(1e-6));
  set();
  CHECK(optim::clip_grad_norm_<double>({a, b}, 100.0, 1.0) == Approx(19.0));
  optim::clip_grad_value_<double>({a, b}, 3.5);
  CHECK(a.grad()[0] == 3.0);
  CHECK(a.grad()[1] == -3.5);
  CHECK(b.grad()[0] == 3.5);
  b.set_grad(Tensor<double>(Shape{1}, std::vector<double>{std::nan("")}));
  CHECK(error_of([&] { optim::clip_grad_norm_<double>({a, b}, 1.0); }) ==
        "clip_grad_norm_: the gradients' total norm is NaN; no gradient was clipped");
  CHECK(a.grad()[0] == 3.0);
  CHECK_THROWS_WITH(optim::clip_grad_value_<double>({a}, -1.0), Catch::Contains("clip_value must be non-negative"));
}

// ---- spectral normalisation, conditional BatchNorm, the minibatch spread ----------------------------

namespace {
/// The largest singular value of the (rows × cols) matrix `at(i, j)` reads, by Eigen's SVD.
template <class At>
double largest_singular_value(std::size_t rows, std::size_t cols, At at) {
  Eigen::MatrixXd m(rows, cols);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) m(Eigen::Index(i), Eigen::Index(j)) = at(i, j);
  return Eigen::JacobiSVD<Eigen::MatrixXd>(m).singularValues()(0);
}
/// σ the layer divides by now: weight_orig / weight, read off one entry.
template <class Layer>
double sigma_of(Layer& layer) {
  const auto orig = layer.named_parameters();
  for (const auto& [name, p] : orig)
    if (name == "weight_orig") return double(p.value()[0]) / double(layer.weight.value()[0]);
  return 0;
}
}  // namespace

TEST_CASE("spectral_norm: PyTorch's names, power iterations in training only, σ the largest singular value", "[nn][spectral_norm]") {
  manual_seed(31);
  nn::Dense<double> dense(5, 8);  // W (8, 5)
  const Tensor<double> w = dense.weight.value();
  nn::spectral_norm(dense);
  std::vector<std::string> names;
  for (const auto& [name, p] : dense.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"bias", "weight_orig"});
  std::vector<std::string> buffers;
  for (const auto& [name, b] : dense.named_buffers()) buffers.push_back(name + " " + std::to_string(b.size()));
  CHECK(buffers == std::vector<std::string>{"weight_u 8", "weight_v 5"});
  const double sigma = largest_singular_value(8, 5, [&](std::size_t i, std::size_t j) { return w[i * 5 + j]; });
  const Var<double> x(Tensor<double>::ones({2, 5}));
  for (int step = 0; step < 100; ++step) dense.forward(x);  // a power iteration per training forward
  CHECK(sigma_of(dense) == Approx(sigma).epsilon(1e-6));
  // eval: the stored estimate, u and v unchanged
  const Tensor<double> u = dense.named_buffers()[0].second;
  dense.eval();
  dense.forward(x);
  CHECK(dense.named_buffers()[0].second.to_vector() == u.to_vector());
  CHECK(sigma_of(dense) == Approx(sigma).epsilon(1e-6));

  // a transposed convolution's weight (in, out, k, k) read along its second axis (PyTorch's dim 1)
  nn::Conv2DTranspose<double> deconv(3, 4, 2, 2);
  const Tensor<double> wt = deconv.weight.value();
  nn::spectral_norm(deconv);
  CHECK(deconv.named_buffers()[0].second.size() == 4);   // u: the output channels
  CHECK(deconv.named_buffers()[1].second.size() == 12);  // v: input channels × 2 × 2
  for (int step = 0; step < 200; ++step) deconv.forward(Var<double>(Tensor<double>::ones({1, 3, 2, 2})));
  const double sigma_t = largest_singular_value(4, 12, [&](std::size_t o, std::size_t j) { return wt[((j / 4) * 4 + o) * 4 + j % 4]; });
  CHECK(sigma_of(deconv) == Approx(sigma_t).epsilon(1e-6));
}

TEST_CASE("spectral_norm: gradients through the normalisation, for Dense, Conv2D, Conv2DTranspose and Embedding", "[nn][spectral_norm][gradcheck]") {
  manual_seed(32);
  Rng rng(32);
  // in eval mode u and v stay as they are, so the layer is a function of weight_orig: the
  // gradient flows through W and through σ = uᵀ W v
  auto check = [&](const std::string& what, nn::Module<double>& layer, const Tensor<double>& input) {
    for (int i = 0; i < 3; ++i) layer.forward(Var<double>(input));  // some power iterations first
    layer.eval();
    check_module_gradients(what, layer, input);
  };
  nn::Dense<double> dense(4, 3);
  nn::spectral_norm(dense);
  check("Dense + spectral_norm", dense, Tensor<double>::randn({2, 4}, rng));
  nn::Conv2D<double> conv(2, 3, 3, 1, 1);
  nn::spectral_norm(conv);
  check("Conv2D + spectral_norm", conv, Tensor<double>::randn({2, 2, 4, 4}, rng));
  nn::Conv2DTranspose<double> deconv(2, 3, 4, 2, 1);
  nn::spectral_norm(deconv);
  check("Conv2DTranspose + spectral_norm", deconv, Tensor<double>::randn({1, 2, 3, 3}, rng));
  nn::Embedding<double> embed(5, 4);
  nn::spectral_norm(embed);
  embed.eval();
  check_gradients("Embedding + spectral_norm", {embed.named_parameters()[0].second}, [&] { return embed.forward(std::vector<std::int64_t>{1, 3, 3}); });
}

TEST_CASE("spectral_norm: fused and folded paths use the normalised weight", "[nn][spectral_norm][fuse]") {
  manual_seed(33);
  nn::Sequential<float> net;
  auto& conv = net.add<nn::Conv2D>(3, 4, 3, 1, 1);
  nn::spectral_norm(conv);
  net.add<nn::LeakyReLU>(0.2);
  CHECK(net.fusion().find("(fused)") != std::string::npos);
  Rng rng(33);
  const Var<float> x(Tensor<float>::randn({2, 3, 6, 6}, rng));
  net.eval();  // no power iteration: the two passes see the same σ
  const Tensor<float> fused = net.forward(x).value();
  const Tensor<float> separate = net[1].forward(net[0].forward(x)).value();
  CHECK(fused.to_vector() == separate.to_vector());
  const Tensor<float> plain = leaky_relu(conv2d(x, Var<float>(conv.weight.value()), conv.bias, 1, 1), 0.2).value();
  CHECK(fused.to_vector() == plain.to_vector());
}

TEST_CASE("ConditionalBatchNorm: with every label k it is BatchNorm with weight γ[k] and bias β[k]; gradients", "[nn][batchnorm][gradcheck]") {
  Rng rng(34);
  nn::ConditionalBatchNorm<double> cbn(3, 4);
  cbn.weight.value() = Tensor<double>::randn({4, 3}, rng);
  cbn.bias.value() = Tensor<double>::randn({4, 3}, rng);
  const Tensor<double> x = Tensor<double>::randn({5, 3, 2, 2}, rng);
  for (std::int64_t k = 0; k < 4; ++k) {
    nn::BatchNorm<double> bn(3);
    for (std::size_t c = 0; c < 3; ++c) bn.weight.value()[c] = cbn.weight.value().at(k, c), bn.bias.value()[c] = cbn.bias.value().at(k, c);
    cbn.running_mean.value() = Tensor<double>::zeros({3});
    cbn.running_var.value() = Tensor<double>::ones({3});
    const Tensor<double> got = cbn.forward(Var<double>(x), std::vector<std::int64_t>(5, k)).value();
    const Tensor<double> expected = bn.forward(Var<double>(x)).value();
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(got[i] == Approx(expected[i]).margin(1e-12));
    CHECK(cbn.running_mean.value().to_vector() == bn.running_mean.value().to_vector());
    CHECK(cbn.running_var.value().to_vector() == bn.running_var.value().to_vector());
  }
  const std::vector<std::int64_t> labels{0, 3, 1, 3, 2};
  Var<double> input(x, true);
  check_gradients("ConditionalBatchNorm", {input, cbn.weight, cbn.bias}, [&] { return cbn.forward(input, labels); });
  CHECK_THROWS_WITH(cbn.forward(input, {0, 1}), Catch::Contains("2 labels for a batch of 5"));
}

TEST_CASE("MinibatchStd: the batch's spread as one more feature map, by hand; gradients", "[nn][gradcheck]") {
  // two images of one channel, 1×2: values (0, 2) and (2, 4): per position the std over the
  // group of 2 is 1 (population std), so the feature is 1 everywhere
  nn::MinibatchStd<double> std_layer(2);
  const Var<double> x(Tensor<double>({2, 1, 1, 2}, {0, 2, 2, 4}));
  const Tensor<double> y = std_layer.forward(x).value();
  REQUIRE(y.shape() == Shape{2, 2, 1, 2});
  CHECK(y.at(0, 0, 0, 1) == 2);
  CHECK(y.at(0, 1, 0, 0) == Approx(1.0).margin(1e-7));
  CHECK(y.at(1, 1, 0, 1) == Approx(1.0).margin(1e-7));
  Rng rng(35);
  Var<double> input(Tensor<double>::randn({4, 3, 2, 2}, rng), true);
  nn::MinibatchStd<double> groups_of_two(2);
  check_gradients("MinibatchStd", {input}, [&] { return groups_of_two.forward(input); });
}
