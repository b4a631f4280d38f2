// Autograd mechanics and every op: gradient checks in double, hand-computed values, errors.
#include "gradcheck.hpp"

#include <climits>
#include <cstdint>
#include <cstring>
#include <limits>

using namespace tessera;
using tessera::testing::away_from_zero;
using tessera::testing::check_gradients;
using tessera::testing::error_of;

namespace {
Var<double> leaf(const Shape& s, Rng& rng) { return Var<double>(Tensor<double>::randn(s, rng), true); }
Var<double> positive_leaf(const Shape& s, Rng& rng) {
  return Var<double>(Tensor<double>::uniform(s, rng, 0.5, 2.0), true);
}
}  // namespace

// ---- autograd mechanics -----------------------------------------------------------------------

TEST_CASE("backward of mean(a*a) gives 2a/n", "[autograd]") {
  Rng rng(42);
  Var<double> a(Tensor<double>::randn({3, 4}, rng), true);
  Var<double> loss = mean(a * a);
  loss.backward();
  for (std::size_t i = 0; i < 12; ++i) CHECK(a.grad()[i] == Approx(a.value()[i] * 2 / 12));
}

TEST_CASE("gradients accumulate over backward calls until zero_grad", "[autograd]") {
  Var<double> x(Tensor<double>({2}, {1.0, -2.0}), true);
  sum(x * 3.0).backward();
  sum(x * x).backward();
  CHECK(x.grad()[0] == Approx(3 + 2 * 1.0));
  CHECK(x.grad()[1] == Approx(3 + 2 * -2.0));
  x.zero_grad();
  CHECK_FALSE(x.has_grad());
  CHECK(x.grad()[0] == 0.0);  // an absent gradient reads as zeros
}

TEST_CASE("a shared subexpression receives the sum of its uses", "[autograd]") {
  Var<double> x(Tensor<double>::full({3}, 1.5), true);
  Var<double> y = x * x;
  sum(y + y * x + x).backward();  // d/dx (x² + x³ + x) = 2x + 3x² + 1
  CHECK(x.grad()[0] == Approx(2 * 1.5 + 3 * 1.5 * 1.5 + 1));
}

TEST_CASE("NoGradGuard records no graph; detach cuts it", "[autograd]") {
  Var<double> x(Tensor<double>::ones({2}), true);
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_enabled());
    Var<double> y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK_THROWS_AS(sum(y).backward(), Error);
  }
  CHECK(grad_enabled());
  Var<double> z = x.detach() * x;  // only the second factor carries gradient
  sum(z).backward();
  CHECK(x.grad()[0] == Approx(1.0));
}

TEST_CASE("backward needs a scalar or an upstream gradient of the result's shape", "[autograd][errors]") {
  Var<double> x(Tensor<double>::ones({2, 3}), true);
  Var<double> y = x * 2.0;
  CHECK_THAT(error_of([&] { y.backward(); }), Catch::Contains("(2, 3)"));
  CHECK_THAT(error_of([&] { y.backward(Tensor<double>::ones({3, 2})); }), Catch::Contains("(3, 2)"));
  y.backward(Tensor<double>::full({2, 3}, 0.5));
  CHECK(x.grad()[4] == Approx(1.0));
}

TEST_CASE("the graph is freed after backward unless retained", "[autograd]") {
  Var<double> x(Tensor<double>::ones({1}), true);
  Var<double> y = exp(x);
  y.backward(/*retain_graph=*/true);
  y.backward();
  CHECK(x.grad()[0] == Approx(2 * std::exp(1.0)));
  CHECK_THROWS_AS(y.backward(), Error);  // freed: a second pass has nothing to walk
}

TEST_CASE("a very deep graph backpropagates without exhausting the stack", "[autograd]") {
  Var<double> x(Tensor<double>::ones({1}), true);
  Var<double> y = x;
  for (int i = 0; i < 20000; ++i) y = y * 1.0001;
  y.backward();
  CHECK(x.grad()[0] == Approx(std::pow(1.0001, 20000)));
}

// ---- elementwise and broadcasting ---------------------------------------------------------------

TEST_CASE("binary ops: gradients with equal shapes and with broadcasting", "[ops][gradcheck]") {
  Rng rng(1);
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases{{{2, 3}, {2, 3}},       {{2, 3}, {}},      {{}, {2, 3}},      {{4, 3}, {3}},
                                {{2, 3, 4, 5}, {3, 1, 1}}, {{3, 1}, {1, 4}}, {{2, 1, 4}, {3, 1}}};
  for (const auto& c : cases) {
    Var<double> a = leaf(c.a, rng), b = positive_leaf(c.b, rng);
    std::ostringstream shapes;
    shapes << c.a << " with " << c.b;
    check_gradients("add " + shapes.str(), {a, b}, [&] { return a + b; });
    check_gradients("sub " + shapes.str(), {a, b}, [&] { return a - b; });
    check_gradients("mul " + shapes.str(), {a, b}, [&] { return a * b; });
    check_gradients("div " + shapes.str(), {a, b}, [&] { return a / b; });
  }
}

TEST_CASE("broadcast values follow NumPy rules", "[ops]") {
  Var<double> a(Tensor<double>({2, 1}, {1, 2}));
  Var<double> b(Tensor<double>({3}, {10, 20, 30}));
  const Tensor<double> c = (a + b).value();
  REQUIRE(c.shape() == Shape{2, 3});
  CHECK(c.to_vector() == std::vector<double>{11, 21, 31, 12, 22, 32});
  Var<double> image(Tensor<double>::ones({2, 3, 2, 2}));
  Var<double> per_channel(Tensor<double>({3, 1, 1}, {1, 2, 3}));
  const Tensor<double> scaled = (image * per_channel).value();
  CHECK(scaled.at(1, 2, 1, 1) == 3.0);
  CHECK(scaled.at(0, 1, 0, 1) == 2.0);
}

TEST_CASE("scalar operators on both sides", "[ops][gradcheck]") {
  Rng rng(2);
  Var<double> a = positive_leaf({3, 2}, rng);
  check_gradients("a * 2 + 1", {a}, [&] { return a * 2.0 + 1.0; });
  check_gradients("3 - a", {a}, [&] { return 3.0 - a; });
  check_gradients("1 / a", {a}, [&] { return 1.0 / a; });
  check_gradients("a / 4 - 1", {a}, [&] { return a / 4.0 - 1.0; });
  check_gradients("-a", {a}, [&] { return -a; });
  CHECK((2.0 - a).value()[0] == Approx(2.0 - a.value()[0]));
}

TEST_CASE("pointwise functions: gradients", "[ops][gradcheck]") {
  Rng rng(3);
  Var<double> x(away_from_zero({4, 5}, rng), true);
  Var<double> pos = positive_leaf({4, 5}, rng);
  check_gradients("exp", {x}, [&] { return exp(x); });
  check_gradients("log", {pos}, [&] { return log(pos); });
  check_gradients("sqrt", {pos}, [&] { return sqrt(pos); });
  check_gradients("pow 3", {x}, [&] { return pow(x, 3.0); });
  check_gradients("pow 0.5", {pos}, [&] { return pow(pos, 0.5); });
  check_gradients("pow -1.5", {pos}, [&] { return pow(pos, -1.5); });
  check_gradients("abs", {x}, [&] { return abs(x); });
  check_gradients("tanh", {x}, [&] { return tanh(x); });
  check_gradients("sigmoid", {x}, [&] { return sigmoid(x); });
  check_gradients("relu", {x}, [&] { return relu(x); });
  check_gradients("leaky_relu", {x}, [&] { return leaky_relu(x, 0.2); });
  check_gradients("softplus", {x}, [&] { return softplus(x); });
  Var<double> big(Tensor<double>({4}, {-800.0, -30.0, 30.0, 800.0}), true);
  check_gradients("sigmoid, large |x|", {big}, [&] { return sigmoid(big); });
  check_gradients("softplus, large |x|", {big}, [&] { return softplus(big); });
}

TEST_CASE("pointwise functions: values", "[ops]") {
  Var<double> x(Tensor<double>({4}, {-2.0, -0.5, 0.0, 3.0}));
  CHECK(relu(x).value().to_vector() == std::vector<double>{0, 0, 0, 3});
  CHECK(leaky_relu(x, 0.2).value()[0] == Approx(-0.4));
  CHECK(leaky_relu(x).value()[1] == Approx(-0.005));  // PyTorch's default slope 0.01
  CHECK(sigmoid(x).value()[2] == Approx(0.5));
  CHECK(softplus(x).value()[3] == Approx(std::log1p(std::exp(3.0))));
  CHECK(abs(x).value()[0] == 2.0);
  const Var<double> huge(Tensor<double>({2}, {-1000.0, 1000.0}));
  CHECK(sigmoid(huge).value()[0] == 0.0);
  CHECK(softplus(huge).value()[1] == 1000.0);  // no overflow
}

TEST_CASE("float tanh (vectorisable) is within 2 ulp of the correctly rounded tanh", "[ops]") {
  // distance in representable floats, across zero too
  auto ulps = [](float a, float b) {
    std::int32_t ia, ib;
    std::memcpy(&ia, &a, sizeof a);
    std::memcpy(&ib, &b, sizeof b);
    const std::int64_t oa = ia < 0 ? std::int64_t(INT32_MIN) - ia : ia, ob = ib < 0 ? std::int64_t(INT32_MIN) - ib : ib;
    return oa > ob ? oa - ob : ob - oa;
  };
  auto check_bits = [&](std::uint32_t bits) {
    float x;
    std::memcpy(&x, &bits, sizeof x);
    for (const float v : {x, -x}) {
      const std::int64_t error = ulps(kernels::tanh_float(v), float(std::tanh(double(v))));
      if (error > 2) FAIL_CHECK("tanh_float(" << v << ") is " << error << " ulp off");
    }
  };
  for (std::uint32_t bits = 0; bits < 0x7f800000u; bits += 1021) check_bits(bits);  // a 1 in 1021 sweep of the finite floats
  const float edges[] = {0.55f, 10.f, 9.01f, 1e-20f, 1e-45f};  // the switch, the clamp, where it rounds to 1, tiny
  for (const float edge : edges) {
    std::uint32_t bits;
    std::memcpy(&bits, &edge, sizeof bits);
    for (std::uint32_t b = bits - std::min<std::uint32_t>(bits, 2000); b < bits + 2000; ++b) check_bits(b);
  }
  CHECK(kernels::tanh_float(INFINITY) == 1.f);
  CHECK(kernels::tanh_float(-INFINITY) == -1.f);
  CHECK(std::isnan(kernels::tanh_float(NAN)));
  CHECK(std::signbit(kernels::tanh_float(-0.f)));
  const Var<float> x(Tensor<float>({3}, {-0.3f, 0.7f, 4.f}));  // the op uses it for float
  for (std::size_t i = 0; i < 3; ++i) CHECK(tanh(x).value()[i] == kernels::tanh_float(x.value()[i]));
}

TEMPLATE_TEST_CASE("sqrt_in_place: std::sqrt's numbers bit for bit, vectors and the tail", "[ops][vector_math]", float, double) {
  Rng rng(12);
  std::vector<TestType> values;
  for (int i = 0; i < 1000; ++i) values.push_back(TestType(std::exp(20.0 * rng.uniform() - 10.0)));
  for (TestType edge : {TestType(0), TestType(-0.0), TestType(-1), std::numeric_limits<TestType>::infinity(),
                        std::numeric_limits<TestType>::denorm_min(), std::numeric_limits<TestType>::quiet_NaN()})
    values.push_back(edge);
  for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(7), std::size_t(17), values.size()}) {  // tails of every length
    std::vector<TestType> roots(values.begin(), values.begin() + std::ptrdiff_t(n));
    kernels::sqrt_in_place(roots.data(), n);
    std::vector<TestType> portable(values.begin(), values.begin() + std::ptrdiff_t(n));
    kernels::arch::generic::sqrt_in_place(portable.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      const TestType expected = std::sqrt(values[i]);
      if (std::isnan(expected)) {
        CHECK(std::isnan(roots[i]));
        CHECK(std::isnan(portable[i]));
      } else {
        CHECK(std::memcmp(&roots[i], &expected, sizeof expected) == 0);
        CHECK(std::memcmp(&portable[i], &expected, sizeof expected) == 0);
      }
    }
  }
}

TEMPLATE_TEST_CASE("rectify and rectified_gradient as blends: the select z > 0 ? z : slope·z and its gradient, edge values included",
                   "[ops][rectifier]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const T tiny = std::numeric_limits<T>::denorm_min();
  const std::vector<T> inputs{T(-3), T(-0.5), T(-0.0), T(0), T(0.25), T(7), -inf, inf, -tiny, tiny, nan};
  for (T slope : {T(0), T(0.2), T(1), T(3), inf}) {  // ReLU, LeakyReLU, identity, a slope above 1, no bound
    CAPTURE(slope);
    std::vector<T> values = inputs, dz(inputs.size());
    kernels::rectify_in_place(values.data(), values.size(), slope);
    kernels::gradients_through_rectifier(std::vector<T>(inputs.size(), T(2)).data(), inputs.data(), inputs.size(), slope,
                                        dz.data());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const T z = inputs[i];
      CAPTURE(z);
      // z (NaN too) where z > 0, else slope·z; +0 for −0, underflows and ReLU's −∞
      const T leaky = slope * z, expected = !(z <= 0) ? z : slope == 0 || leaky == 0 ? T(0) : leaky;
      if (std::isnan(expected))
        CHECK(std::isnan(values[i]));
      else
        CHECK(std::memcmp(&values[i], &expected, sizeof expected) == 0);
      CHECK(dz[i] == (z > 0 ? T(2) : T(2) * slope));
    }
  }
}

// ---- reductions, matmul, shape ops ------------------------------------------------------------------

TEST_CASE("sum and mean: all and over axes", "[ops][gradcheck]") {
  Rng rng(4);
  Var<double> x = leaf({2, 3, 4}, rng);
  check_gradients("sum", {x}, [&] { return sum(x); });
  check_gradients("mean", {x}, [&] { return mean(x); });
  check_gradients("sum axis 1", {x}, [&] { return sum(x, {1}); });
  check_gradients("sum axes 0,2 keepdim", {x}, [&] { return sum(x, {0, 2}, true); });
  check_gradients("mean axis -1", {x}, [&] { return mean(x, {-1}); });
  check_gradients("mean axes 1,2", {x}, [&] { return mean(x, {1, 2}); });

  Var<double> t(Tensor<double>({2, 3}, {1, 2, 3, 4, 5, 6}));
  CHECK(sum(t).value().item() == 21.0);
  CHECK(sum(t).shape().size() == 0);
  CHECK(sum(t, {0}).value().to_vector() == std::vector<double>{5, 7, 9});
  CHECK(mean(t, {1}).value().to_vector() == std::vector<double>{2, 5});
  CHECK(mean(t, {1}, true).shape() == Shape{2, 1});
  CHECK_THROWS_AS(sum(t, {2}), Error);
  CHECK_THROWS_AS(sum(t, {0, 0}), Error);
}

TEST_CASE("matmul and linear", "[ops][gradcheck]") {
  Rng rng(5);
  Var<double> a = leaf({3, 4}, rng), b = leaf({4, 5}, rng);
  check_gradients("matmul", {a, b}, [&] { return matmul(a, b); });
  Var<double> x = leaf({6, 4}, rng), w = leaf({3, 4}, rng), bias = leaf({3}, rng);
  check_gradients("linear", {x, w, bias}, [&] { return linear(x, w, bias); });
  check_gradients("linear without bias", {x, w}, [&] { return linear(x, w); });

  Var<double> m(Tensor<double>({2, 2}, {1, 2, 3, 4})), n(Tensor<double>({2, 1}, {5, 6}));
  CHECK(matmul(m, n).value().to_vector() == std::vector<double>{17, 39});
  const std::string err = error_of([&] { matmul(a, a); });
  CHECK_THAT(err, Catch::Contains("matmul") && Catch::Contains("(3, 4)"));
}

TEST_CASE("reshape, flatten, concat and slice", "[ops][gradcheck]") {
  Rng rng(6);
  Var<double> x = leaf({2, 3, 4}, rng);
  check_gradients("reshape", {x}, [&] { return reshape(x, Shape{4, 6}); });
  check_gradients("flatten", {x}, [&] { return flatten(x); });
  Var<double> y = leaf({2, 5, 4}, rng), z = leaf({2, 1, 4}, rng);
  check_gradients("concat axis 1", {x, y, z}, [&] { return concat<double>({x, y, z}, 1); });
  Var<double> u = leaf({1, 3, 4}, rng);
  check_gradients("concat axis 0", {x, u}, [&] { return concat<double>({x, u}, 0); });
  Var<double> v = leaf({2, 3, 2}, rng);
  check_gradients("concat last axis", {x, v}, [&] { return concat<double>({x, v}, -1); });
  check_gradients("slice batch", {x}, [&] { return slice(x, 1, 2); });
  check_gradients("slice axis 2", {x}, [&] { return slice(x, 1, 3, 2); });

  Var<double> p(Tensor<double>({2, 2}, {1, 2, 3, 4})), q(Tensor<double>({2, 1}, {9, 8}));
  CHECK(concat<double>({p, q}, 1).value().to_vector() == std::vector<double>{1, 2, 9, 3, 4, 8});
  CHECK(slice(p, 1, 2).value().to_vector() == std::vector<double>{3, 4});
  CHECK_THAT(error_of([&] { concat<double>({p, q}, 0); }), Catch::Contains("(2, 2)") && Catch::Contains("(2, 1)"));
  CHECK_THROWS_AS(slice(p, 1, 3), Error);
  CHECK_THROWS_AS(reshape(p, Shape{3}), Error);
}

TEST_CASE("translate shifts each image by its own offset, zeros shifted in", "[ops][gradcheck]") {
  Rng rng(8);
  Var<double> x = leaf({3, 2, 4, 5}, rng);  // batch 3: down-right, up-left, and out of the image entirely
  const std::vector<std::array<int, 2>> shifts{{{1, 2}}, {{-2, -1}}, {{0, 6}}};
  check_gradients("translate", {x}, [&] { return translate(x, shifts); });
  const Tensor<double> moved = translate(x, shifts).value();
  CHECK(moved.at(0, 1, 3, 4) == x.value().at(0, 1, 2, 2));
  CHECK(moved.at(0, 1, 0, 4) == 0);  // row 0 came from above the image
  CHECK(moved.at(0, 0, 2, 1) == 0);  // column 1 came from the left of it
  CHECK(moved.at(1, 0, 0, 0) == x.value().at(1, 0, 2, 1));
  CHECK(moved.at(1, 0, 3, 0) == 0);
  for (std::size_t i = 0; i < 40; ++i) CHECK(moved[80 + i] == 0);
  CHECK_THAT(error_of([&] { translate(x, {{{0, 0}}}); }), Catch::Contains("translate") && Catch::Contains("(3, 2, 4, 5)"));
}

TEST_CASE("embedding gathers rows and scatter-adds repeated indices", "[ops][gradcheck]") {
  Rng rng(7);
  Var<double> w = leaf({5, 3}, rng);
  const std::vector<std::int64_t> idx{4, 0, 4, 2};
  check_gradients("embedding", {w}, [&] { return embedding(w, idx); });
  const Tensor<double> rows = embedding(w, idx).value();
  CHECK(rows.at(2, 1) == w.value().at(4, 1));
  CHECK_THROWS_AS(embedding(w, {5}), Error);
}

// ---- convolution ------------------------------------------------------------------------------------

TEST_CASE("conv2d: hand-computed values", "[ops][conv]") {
  Var<double> x(Tensor<double>({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}));
  Var<double> w(Tensor<double>({1, 1, 2, 2}, {1, 0, 0, -1}));
  Var<double> b(Tensor<double>({1}, {0.5}));
  // y[i][j] = x[i][j] − x[i+1][j+1] = −4 everywhere, plus bias
  CHECK(conv2d(x, w, b).value().to_vector() == std::vector<double>{-3.5, -3.5, -3.5, -3.5});
  // stride 2, padding 1: windows start at (−1, −1), (−1, 1), (1, −1), (1, 1)
  CHECK(conv2d(x, w, Var<double>(), 2, 1).value().to_vector() == std::vector<double>{-1, -3, -7, -4});
  // two output channels, two input channels: each output sums its input channels
  Var<double> x2(Tensor<double>({1, 2, 1, 1}, {2, 3}));
  Var<double> w2(Tensor<double>({2, 2, 1, 1}, {1, 1, 10, -1}));
  CHECK(conv2d(x2, w2, Var<double>()).value().to_vector() == std::vector<double>{5, 17});
}

TEST_CASE("conv2d_transpose: hand-computed values and output size", "[ops][conv]") {
  Var<double> x(Tensor<double>({1, 1, 2, 2}, {1, 2, 3, 4}));
  Var<double> ones(Tensor<double>::ones({1, 1, 2, 2}));
  // stride 1: every input spreads over a 2x2 block; overlaps add
  CHECK(conv2d_transpose(x, ones, Var<double>()).value().to_vector() ==
        std::vector<double>{1, 3, 2, 4, 10, 6, 3, 7, 4});
  // stride 2: blocks do not overlap, each input value is replicated 2x2
  const Tensor<double> up = conv2d_transpose(x, ones, Var<double>(), 2).value();
  REQUIRE(up.shape() == Shape{1, 1, 4, 4});
  CHECK(up.at(0, 0, 0, 1) == 1.0);
  CHECK(up.at(0, 0, 3, 2) == 4.0);
  CHECK(up.at(0, 0, 1, 2) == 2.0);
  // (H − 1)·s − 2p + k + output_padding
  Rng rng(8);
  Var<double> w = leaf({1, 2, 4, 4}, rng);
  Var<double> in = leaf({1, 1, 5, 7}, rng);
  CHECK(conv2d_transpose(in, w, Var<double>(), 2, 1).shape() == Shape{1, 2, 10, 14});
  CHECK(conv2d_transpose(in, w, Var<double>(), 3, 0, 2).shape() == Shape{1, 2, 18, 24});
  CHECK_THROWS_AS(conv2d_transpose(in, w, Var<double>(), 2, 1, 2), Error);  // output_padding ≥ stride
}

namespace {
// Direct-loop convolution in double, the definition itself: every (input pixel, kernel tap,
// output pixel) triple of y[n, o, oh, ow] += w[o, c, ki, kj] · x[n, c, oh·s − p + ki, ow·s − p + kj].
// `visit(n, c, ih, iw, o, oh, ow, ki, kj)` is called for each triple inside the image.
template <class Visit>
void for_each_conv_tap(std::size_t batch, std::size_t in_ch, std::size_t h, std::size_t w, std::size_t out_ch,
                       std::size_t oh_size, std::size_t ow_size, std::size_t k, std::size_t s, std::size_t p, Visit visit) {
  for (std::size_t n = 0; n < batch; ++n)
    for (std::size_t o = 0; o < out_ch; ++o)
      for (std::size_t oh = 0; oh < oh_size; ++oh)
        for (std::size_t ow = 0; ow < ow_size; ++ow)
          for (std::size_t c = 0; c < in_ch; ++c)
            for (std::size_t ki = 0; ki < k; ++ki)
              for (std::size_t kj = 0; kj < k; ++kj) {
                const long ih = long(oh * s + ki) - long(p), iw = long(ow * s + kj) - long(p);
                if (ih >= 0 && iw >= 0 && ih < long(h) && iw < long(w)) visit(n, c, std::size_t(ih), std::size_t(iw), o, oh, ow, ki, kj);
              }
}

// Largest |a − b| relative to the largest |b|, a in float against b in double.
double relative_difference(const Tensor<float>& a, const Tensor<double>& b) {
  REQUIRE(a.shape() == b.shape());
  double diff = 0, scale = 1e-12;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / scale;
}
}  // namespace

TEST_CASE("im2col + packed GEMM convolutions match direct loops on odd shapes, forward and backward, at 1 and 2 threads", "[ops][conv][reference]") {
  struct Case {
    std::size_t batch, in_ch, out_ch, h, w, k, stride, padding;
  };
  // batch 1, 3 and 5; channels not multiples of the vector width; non-square images; strides
  // 1-3; images up to 18×20 (several per product) and 40×36 (one per product, 1440 positions);
  // 272 rows of columns (over the GEMM's 256-deep block); stride 2 over 70 columns (the
  // split into phases in several 32-wide pieces); 13 output channels (GEMM panels of 12 and
  // 4 rows); 640 rows of 256 positions (the weight gradient's columns in two products);
  // 8×8 outputs; at 1 thread (one run of the batch) and 2 (a run per thread, or the GEMM's
  // threads over its panels for batch 1)
  // The next four run conv2d's forward by Winograd's F(2×2, 3×3) (3×3, stride 1, padding 1,
  // even sizes, ≥ 16 channels each way): one 2×2 image (one tile); 17 → 19 channels over 6×10
  // (rows of 5 tiles, panels of 32 tiles crossing image rows); 33 → 16 over 4×36 (rows of 18
  // tiles crossing panels, groups of 4 images and 1); 40 → 28 over 12×12, batch 3.
  // The 32×32 and 16×16 cases above and the last six are the DCGAN geometry (kernel 4,
  // stride 2, padding 1, even sizes: stride2.hpp), whose col2im adds straight into the image
  // rows: one output row of 3 (many images per product); 17 output columns (a 16-lane piece
  // and a 1-lane one); 17 channels over 12×8. Where Wo divides 16 or is a multiple of it, im2col
  // also reads the image rows directly: 8 and 16 above, 4 (17 channels over 12×8), 32, 48
  // (three 16-lane pieces) and 1 (one output column, many images per product).
  const Case cases[] = {{1, 3, 5, 7, 9, 3, 1, 1},   {3, 17, 7, 11, 9, 4, 2, 1}, {3, 5, 3, 10, 13, 3, 3, 2},
                        {1, 1, 33, 6, 6, 5, 2, 0},  {5, 4, 6, 18, 20, 3, 1, 1}, {3, 2, 3, 40, 36, 3, 1, 1},
                        {3, 6, 13, 9, 70, 4, 2, 1}, {2, 40, 5, 32, 32, 4, 2, 1}, {5, 3, 4, 16, 16, 4, 2, 1},
                        {1, 16, 16, 2, 2, 3, 1, 1}, {3, 17, 19, 6, 10, 3, 1, 1}, {5, 33, 16, 4, 36, 3, 1, 1},
                        {3, 40, 28, 12, 12, 3, 1, 1}, {3, 5, 7, 2, 6, 4, 2, 1},   {3, 3, 6, 8, 34, 4, 2, 1},
                        {1, 17, 3, 12, 8, 4, 2, 1}, {2, 3, 5, 4, 64, 4, 2, 1},   {1, 2, 3, 2, 96, 4, 2, 1},
                        {3, 4, 2, 6, 2, 4, 2, 1}};
  const int saved_threads = num_threads();
  for (int threads : {1, 2})
  for (const Case& t : cases) {
    set_num_threads(threads);
    CAPTURE(threads, t.batch, t.in_ch, t.out_ch, t.h, t.w, t.k, t.stride, t.padding);
    Rng rng(41);
    const std::size_t oh = (t.h + 2 * t.padding - t.k) / t.stride + 1, ow = (t.w + 2 * t.padding - t.k) / t.stride + 1;
    const Tensor<double> x = Tensor<double>::randn({t.batch, t.in_ch, t.h, t.w}, rng);
    const Tensor<double> w = Tensor<double>::randn({t.out_ch, t.in_ch, t.k, t.k}, rng);
    const Tensor<double> b = Tensor<double>::randn({t.out_ch}, rng);
    const Tensor<double> gy = Tensor<double>::randn({t.batch, t.out_ch, oh, ow}, rng);

    // conv2d: y = conv(x), and the three gradients for upstream gy
    Tensor<double> y(Shape{t.batch, t.out_ch, oh, ow}), dx(x.shape()), dw(w.shape()), db(b.shape());
    for (std::size_t n = 0; n < t.batch; ++n)
      for (std::size_t o = 0; o < t.out_ch; ++o)
        for (std::size_t i = 0; i < oh * ow; ++i) {
          y.at(n, o, i / ow, i % ow) = b[o];
          db[o] += gy.at(n, o, i / ow, i % ow);
        }
    for_each_conv_tap(t.batch, t.in_ch, t.h, t.w, t.out_ch, oh, ow, t.k, t.stride, t.padding,
                      [&](auto n, auto c, auto ih, auto iw, auto o, auto r, auto q, auto ki, auto kj) {
                        y.at(n, o, r, q) += w.at(o, c, ki, kj) * x.at(n, c, ih, iw);
                        dx.at(n, c, ih, iw) += w.at(o, c, ki, kj) * gy.at(n, o, r, q);
                        dw.at(o, c, ki, kj) += x.at(n, c, ih, iw) * gy.at(n, o, r, q);
                      });
    Var<float> xf(x.cast<float>(), true), wf(w.cast<float>(), true), bf(b.cast<float>(), true);
    Var<float> yf = conv2d(xf, wf, bf, t.stride, t.padding);
    yf.backward(gy.cast<float>());
    CHECK(relative_difference(yf.value(), y) < 1e-5);
    CHECK(relative_difference(xf.grad(), dx) < 1e-5);
    CHECK(relative_difference(wf.grad(), dw) < 1e-5);
    CHECK(relative_difference(bf.grad(), db) < 1e-5);

    // conv2d_transpose maps gy's shape back to x's with weight (O, C, k, k) read as (Cin, Cout, k, k):
    // its forward is exactly dx above, and its gradients are conv2d's forward and weight gradient
    Var<float> zf(gy.cast<float>(), true), vf(w.cast<float>(), true);
    const std::size_t extra_h = (t.h + 2 * t.padding - t.k) % t.stride, extra_w = (t.w + 2 * t.padding - t.k) % t.stride;
    if (extra_h != extra_w) continue;  // one output_padding for both axes
    const Tensor<double> bt = Tensor<double>::randn({t.in_ch}, rng);  // the transpose's bias, per output channel
    Var<float> btf(bt.cast<float>(), true);
    Var<float> tf = conv2d_transpose(zf, vf, btf, t.stride, t.padding, extra_h);
    Tensor<double> dx_plus_bias = dx;
    for (std::size_t i = 0; i < dx.size(); ++i) dx_plus_bias[i] += bt[(i / (t.h * t.w)) % t.in_ch];
    CHECK(relative_difference(tf.value(), dx_plus_bias) < 1e-5);
    const Tensor<double> gt = Tensor<double>::randn(x.shape(), rng);  // upstream for the transpose
    Tensor<double> dbt = Tensor<double>::zeros({t.in_ch});
    for (std::size_t i = 0; i < gt.size(); ++i) dbt[(i / (t.h * t.w)) % t.in_ch] += gt[i];
    Tensor<double> dz(gy.shape()), dv(w.shape());
    for_each_conv_tap(t.batch, t.in_ch, t.h, t.w, t.out_ch, oh, ow, t.k, t.stride, t.padding,
                      [&](auto n, auto c, auto ih, auto iw, auto o, auto r, auto q, auto ki, auto kj) {
                        dz.at(n, o, r, q) += w.at(o, c, ki, kj) * gt.at(n, c, ih, iw);
                        dv.at(o, c, ki, kj) += gy.at(n, o, r, q) * gt.at(n, c, ih, iw);
                      });
    tf.backward(gt.cast<float>());
    CHECK(relative_difference(zf.grad(), dz) < 1e-5);
    CHECK(relative_difference(vf.grad(), dv) < 1e-5);
    CHECK(relative_difference(btf.grad(), dbt) < 1e-5);
  }
  set_num_threads(saved_threads);
}

namespace {
Tensor<double> transposed(const Tensor<double>& m) {
  const std::size_t rows = m.shape()[0], cols = m.shape()[1];
  Tensor<double> t = Tensor<double>::empty({cols, rows});
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) t.at(j, i) = m.at(i, j);
  return t;
}

// The packed GEMM against a triple loop in double: A (m × k) read through (row, col) strides,
// B (k × n) packed half by rows (pack_rhs_run, in pieces that cross panels) and half by
// columns (pack_rhs_columns, from Bᵀ), C with a leading dimension wider than n.
template <class T>
void check_packed_gemm(std::size_t m, std::size_t n, std::size_t k, bool transposed_a, bool accumulate) {
  CAPTURE(m, n, k, transposed_a, accumulate, sizeof(T));
  Rng rng(7);
  const Tensor<double> a = Tensor<double>::randn({m, k}, rng), b = Tensor<double>::randn({k, n}, rng);
  const std::size_t ldc = n + 3;
  const Tensor<double> c0 = Tensor<double>::randn({m, ldc}, rng);
  Tensor<double> expected = c0;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double sum = accumulate ? c0.at(i, j) : 0.0;
      for (std::size_t kk = 0; kk < k; ++kk) sum += a.at(i, kk) * b.at(kk, j);
      expected.at(i, j) = sum;
    }
  const Tensor<T> a_t = transposed_a ? transposed(a).template cast<T>() : a.template cast<T>();  // (k × m) when transposed
  const Tensor<T> b_t = transposed(b).template cast<T>(), bf = b.template cast<T>();
  std::vector<T> packed_a(kernels::gemm::packed_lhs_size<T>(m, k)), packed_b(kernels::gemm::packed_rhs_size<T>(k, n), T(99));
  if (transposed_a) kernels::gemm::pack_lhs(a_t.data(), m, k, 1, m, packed_a.data());
  else kernels::gemm::pack_lhs(a_t.data(), m, k, k, 1, packed_a.data());
  const std::size_t by_rows = k / 2, lanes = kernels::gemm::Tile<T>::lanes;
  for (std::size_t kk = 0; kk < by_rows; ++kk)  // rows in pieces of 5 and 9, wherever the panels start
    for (std::size_t j = 0; j < n;) {
      const std::size_t piece = std::min<std::size_t>(j % 2 ? 9 : 5, n - j);
      kernels::gemm::pack_rhs_run(bf.data() + kk * n + j, piece, kk, j, k, packed_b.data());
      j += piece;
    }
  std::vector<T> rest(n * (k - by_rows));  // the other rows of B, as columns: Bᵀ's rows from by_rows on
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t kk = by_rows; kk < k; ++kk) rest[j * (k - by_rows) + kk - by_rows] = b_t.at(j, kk);
  std::vector<T> packed_rest(kernels::gemm::packed_rhs_size<T>(k - by_rows, n));
  for (std::size_t j0 = 0; j0 < n; j0 += lanes)
    kernels::gemm::pack_rhs_columns(rest.data() + j0 * (k - by_rows), k - by_rows, j0, std::min(lanes, n - j0), k - by_rows,
                           packed_rest.data());
  kernels::gemm::zero_rhs_tail(k, n, packed_b.data());
  kernels::gemm::zero_rhs_tail(k - by_rows, n, packed_rest.data());
  for (std::size_t j0 = 0; j0 < n; j0 += kernels::gemm::Tile<T>::cols)  // splice the two packings: panel by panel, depth by depth
    for (std::size_t kk = by_rows; kk < k; ++kk)
      std::copy_n(packed_rest.data() + j0 * (k - by_rows) + (kk - by_rows) * kernels::gemm::Tile<T>::cols, kernels::gemm::Tile<T>::cols,
                  packed_b.data() + j0 * k + kk * kernels::gemm::Tile<T>::cols);
  Tensor<T> c = c0.template cast<T>();
  kernels::gemm::multiply_packed(m, n, k, packed_a.data(), packed_b.data(), c.data(), ldc, accumulate);
  double worst = 0;
  for (std::size_t i = 0; i < c.size(); ++i) worst = std::max(worst, std::abs(double(c[i]) - expected[i]));
  CHECK(worst < (sizeof(T) == 4 ? 1e-4 : 1e-11) * std::sqrt(double(k) + 1));
}
}  // namespace

TEST_CASE("packed GEMM matches a triple loop: odd sizes, every panel height, depth blocks, strided and transposed operands",
          "[ops][reference][gemm]") {
  // m: one row, panels of 12, 8 and 4 rows and padded ones; n: under, at and over a 32-column
  // panel; k: over the 256-deep block, and 1
  for (const auto& [m, n, k] : {std::array<std::size_t, 3>{1, 1, 1}, {13, 33, 7}, {4, 32, 300}, {12, 31, 17},
                                 {20, 65, 513}, {29, 100, 40}, {64, 16, 2}})
    for (bool transposed : {false, true})
      for (bool accumulate : {false, true}) {
        check_packed_gemm<float>(m, n, k, transposed, accumulate);
        check_packed_gemm<double>(m, n, k, transposed, accumulate);
      }
  // threaded over B's panels outside a parallel region: the same numbers at 1 and 2 threads
  const int saved = num_threads();
  Rng rng(8);
  const Tensor<float> a = Tensor<float>::randn({37, 70}, rng), b = Tensor<float>::randn({70, 200}, rng);
  std::vector<float> pa(kernels::gemm::packed_lhs_size<float>(37, 70)), pb(kernels::gemm::packed_rhs_size<float>(70, 200));
  kernels::gemm::pack_lhs(a.data(), 37, 70, 70, 1, pa.data());
  for (std::size_t kk = 0; kk < 70; ++kk) kernels::gemm::pack_rhs_run(b.data() + kk * 200, 200, kk, 0, 70, pb.data());
  kernels::gemm::zero_rhs_tail<float>(70, 200, pb.data());
  std::vector<float> one(37 * 200), two(37 * 200);
  set_num_threads(1);
  kernels::gemm::multiply_packed(37, 200, 70, pa.data(), pb.data(), one.data(), 200, false);
  set_num_threads(2);
  kernels::gemm::multiply_packed(37, 200, 70, pa.data(), pb.data(), two.data(), 200, false);
  set_num_threads(saved);
  CHECK(one == two);
}

TEST_CASE("the DCGAN geometry's col2im straight into the image rows (the target's and the portable one): the sum in tap order, bit for bit",
          "[ops][conv][reference][arch]") {
  // (C, H, W): one pixel of output; 17 output columns (a 16-lane piece and a 1-lane one); 33;
  // non-square; rows of the columns wider apart (ld) than their Ho·Wo values
  for (const auto& [c, h, w] : {std::array<std::size_t, 3>{2, 2, 2}, {3, 4, 34}, {1, 6, 2}, {2, 32, 32}, {1, 8, 66}}) {
    CAPTURE(c, h, w);
    const ConvGeometry g = conv_geometry("test", c, h, w, 4, 2, 1);
    const std::size_t ld = g.positions() + 5;
    Rng rng(13);
    const Tensor<float> cols = Tensor<float>::randn({g.col_rows() * ld}, rng);
    Tensor<float> expected = Tensor<float>::zeros({c, h, w});
    for (std::size_t r = 0; r < g.col_rows(); ++r) {  // every tap in order r = (c, ki, kj), from zero
      const std::size_t ci = r / 16, ki = r / 4 % 4, kj = r % 4;
      for (std::size_t oh = 0; oh < g.out_height; ++oh)
        for (std::size_t ow = 0; ow < g.out_width; ++ow) {
          const std::ptrdiff_t ih = std::ptrdiff_t(2 * oh + ki) - 1, iw = std::ptrdiff_t(2 * ow + kj) - 1;
          if (ih >= 0 && iw >= 0 && ih < std::ptrdiff_t(h) && iw < std::ptrdiff_t(w))
            expected.at(ci, ih, iw) += cols[r * ld + oh * g.out_width + ow];
        }
    }
    Tensor<float> target = Tensor<float>::empty({c, h, w}), portable = target, planes = target;
    kernels::arch::col2im_stride2(cols.data(), g, target.data(), ld);
    kernels::arch::generic::col2im_stride2(cols.data(), g, portable.data(), ld);
    kernels::col2im(cols.data(), g, planes.data(), ld);  // through the phase planes
    CHECK(target.to_vector() == expected.to_vector());
    CHECK(portable.to_vector() == expected.to_vector());
    CHECK(planes.to_vector() == expected.to_vector());
  }
}

TEST_CASE("the DCGAN geometry's im2col straight from the image rows (the target's and the portable one): im2col's columns",
          "[ops][conv][reference][arch]") {
  // Wo = 1, 4, 16, 32 and 48: a divisor or a multiple of the 16-lane pieces (where the target's
  // path applies); count images side by side; packed as the GEMM's B and staged by channel
  namespace gemm = kernels::gemm;
  for (const auto& [count, c, h, w] : {std::array<std::size_t, 4>{3, 2, 2, 2}, {2, 3, 8, 8}, {1, 2, 4, 32}, {2, 1, 6, 64}, {1, 2, 2, 96}}) {
    CAPTURE(count, c, h, w);
    const ConvGeometry g = conv_geometry("test", c, h, w, 4, 2, 1);
    const std::size_t rows = g.col_rows(), L = g.positions(), width = count * L, panel = gemm::Tile<float>::cols;
    Rng rng(14);
    const Tensor<float> images = Tensor<float>::randn({count, c, h, w}, rng);
    std::vector<float> cols(rows * width);  // im2col through the planes, image j in columns j·L
    for (std::size_t j = 0; j < count; ++j) {
      std::vector<float> one(rows * L);
      kernels::im2col(images.data() + j * g.image_size(), g, one.data());
      for (std::size_t r = 0; r < rows; ++r) std::copy_n(one.data() + r * L, L, cols.data() + r * width + j * L);
    }
    std::vector<float> expected(gemm::packed_rhs_size<float>(rows, width), 0.f);
    for (std::size_t r = 0; r < rows; ++r) gemm::pack_rhs_run(cols.data() + r * width, width, r, 0, rows, expected.data());
    for (auto im2col_packed : {kernels::arch::im2col_stride2_packed<float>, kernels::arch::generic::im2col_stride2_packed<float>}) {
      std::vector<float> packed(expected.size(), 0.f);
      im2col_packed(images.data(), count, g, packed.data(), panel);
      CHECK(packed == expected);
    }
    for (auto stage : {kernels::arch::stage_channel_stride2<float>, kernels::arch::generic::stage_channel_stride2<float>})
      for (std::size_t ci = 0; ci < c; ++ci) {
        std::vector<float> staged(16 * width, 7.f);
        stage(images.data(), count, g, ci, staged.data(), width);
        CHECK(std::equal(staged.begin(), staged.end(), cols.begin() + std::ptrdiff_t(ci * 16 * width)));
      }
  }
}

TEST_CASE("stride phases: split_phases places each pixel, merge_phases is its adjoint, float's fast path agrees",
          "[ops][conv][reference]") {
  // (C, H, W, k, s, p): strides 1-3, odd widths over 32 (several chunks of the stride-2 path);
  // no rows at all (the planes are all padding). The planes start as garbage (42): split_phases
  // must zero all the padding itself
  for (const auto& [c, h, w, k, s, p] : {std::array<std::size_t, 6>{2, 5, 7, 3, 1, 1}, {3, 9, 70, 4, 2, 1},
                                          {1, 6, 33, 4, 2, 0}, {2, 7, 8, 3, 3, 2}, {1, 4, 40, 2, 2, 3},
                                          {2, 0, 5, 3, 2, 2}}) {
    CAPTURE(c, h, w, k, s, p);
    const ConvGeometry g = conv_geometry("test", c, h, w, k, s, p);
    Rng rng(12);
    const Tensor<double> x = Tensor<double>::randn({c, h, w}, rng);
    std::vector<double> planes(g.planes_size(), 42.0);
    kernels::split_phases(x.data(), g, planes.data());
    // pixel (c, ih, iw) at padded (i, j) = (ih + p, iw + p): plane (c, i mod s, j mod s), row i / s, column j / s
    std::size_t placed = 0;
    for (std::size_t ci = 0; ci < c; ++ci)
      for (std::size_t ih = 0; ih < h; ++ih)
        for (std::size_t iw = 0; iw < w; ++iw) {
          const std::size_t i = ih + p, j = iw + p;
          const std::size_t at = ((ci * s + i % s) * s + j % s) * g.plane_rows() * g.plane_cols() + (i / s) * g.plane_cols() + j / s;
          placed += planes[at] == x.at(ci, ih, iw);
        }
    CHECK(placed == x.size());
    double sum_planes = 0;
    for (double v : planes) sum_planes += std::abs(v);
    CHECK(sum_planes == Approx(x.array().abs().sum()));  // everything else is zero padding
    // ⟨split(x), q⟩ = ⟨x, merge(q)⟩
    Tensor<double> q = Tensor<double>::randn({g.planes_size()}, rng), back = Tensor<double>::empty(x.shape());
    kernels::merge_phases(q.data(), g, back.data());
    double lhs = 0;
    for (std::size_t i = 0; i < planes.size(); ++i) lhs += planes[i] * q[i];
    CHECK(lhs == Approx((x.array() * back.array()).sum()));
    // float (AVX-512's stride-2 path where built) against double (the generic loops)
    const Tensor<float> xf = x.cast<float>();
    std::vector<float> planes_f(g.planes_size(), 42.f);
    kernels::split_phases(xf.data(), g, planes_f.data());
    for (std::size_t i = 0; i < planes.size(); ++i) CHECK(planes_f[i] == float(planes[i]));
    // another image split over those planes, their padding left as it is: as a split from scratch
    const Tensor<float> other = Tensor<float>::randn(x.shape(), rng);
    std::vector<float> fresh(g.planes_size(), 7.f);
    kernels::split_phases(other.data(), g, fresh.data());
    kernels::split_phases(other.data(), g, planes_f.data(), true);
    CHECK(planes_f == fresh);
    Tensor<float> back_f = Tensor<float>::empty(x.shape());
    const Tensor<float> qf = q.cast<float>();
    kernels::merge_phases(qf.data(), g, back_f.data());
    for (std::size_t i = 0; i < back.size(); ++i) CHECK(back_f[i] == float(back[i]));
  }
}

TEST_CASE("linear (Eigen GEMM) matches direct loops on odd shapes, forward and backward", "[ops][reference]") {
  for (const auto& [rows, in, out] : {std::array<std::size_t, 3>{1, 17, 3}, {3, 100, 33}, {7, 1, 5}}) {
    CAPTURE(rows, in, out);
    Rng rng(42);
    const Tensor<double> x = Tensor<double>::randn({rows, in}, rng), w = Tensor<double>::randn({out, in}, rng);
    const Tensor<double> b = Tensor<double>::randn({out}, rng), gy = Tensor<double>::randn({rows, out}, rng);
    Tensor<double> y(Shape{rows, out}), dx(x.shape()), dw(w.shape()), db(b.shape());
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t o = 0; o < out; ++o) {
        y.at(r, o) = b[o];
        db[o] += gy.at(r, o);
        for (std::size_t i = 0; i < in; ++i) {
          y.at(r, o) += x.at(r, i) * w.at(o, i);
          dx.at(r, i) += gy.at(r, o) * w.at(o, i);
          dw.at(o, i) += gy.at(r, o) * x.at(r, i);
        }
      }
    Var<float> xf(x.cast<float>(), true), wf(w.cast<float>(), true), bf(b.cast<float>(), true);
    Var<float> yf = linear(xf, wf, bf);
    yf.backward(gy.cast<float>());
    CHECK(relative_difference(yf.value(), y) < 1e-5);
    CHECK(relative_difference(xf.grad(), dx) < 1e-5);
    CHECK(relative_difference(wf.grad(), dw) < 1e-5);
    CHECK(relative_difference(bf.grad(), db) < 1e-5);
  }
}

TEST_CASE("conv2d_forward's fused 2x2 max-pool: the same numbers as conv2d, the rectifier and max_pool2d, by Winograd and by im2col", "[ops][conv][pool]") {
  struct Case {
    std::size_t batch, in_ch, out_ch, h, w, pool;
  };
  // 16 → 18 and 24 → 16 channels: Winograd (the 2×2 tile is the window); 3 → 5 channels: im2col,
  // odd sizes whose last row and column no window takes, and a 3×3 pool
  const Case cases[] = {{3, 16, 18, 8, 6, 2}, {2, 24, 16, 4, 34, 2}, {3, 3, 5, 7, 9, 2}, {2, 3, 5, 7, 10, 3}};
  for (const Case& t : cases)
    for (double slope : {-1.0, 0.0, 0.2}) {  // -1: no rectifier
      CAPTURE(t.in_ch, t.out_ch, t.h, t.w, t.pool, slope);
      Rng rng(43);
      const Tensor<float> x = Tensor<float>::randn({t.batch, t.in_ch, t.h, t.w}, rng);
      const Tensor<float> w = Tensor<float>::randn({t.out_ch, t.in_ch, 3, 3}, rng), b = Tensor<float>::randn({t.out_ch}, rng);
      const Rectifier rectifier = slope < 0 ? Rectifier{} : Rectifier{true, slope};
      const ConvGeometry g = conv_geometry("conv2d", t.in_ch, t.h, t.w, 3, 1, 1);
      const Tensor<float> fused = kernels::conv2d_forward(x, w, g, kernels::Epilogue<float>{b.data(), rectifier, t.pool});
      NoGradGuard no_graph;
      Var<float> separate = conv2d(Var<float>(x), Var<float>(w), Var<float>(b), 1, 1);
      if (rectifier.enabled) separate = leaky_relu(separate, slope);
      separate = max_pool2d(separate, t.pool, t.pool);
      REQUIRE(fused.shape() == separate.shape());
      // the rectifier and the shift by the bias are monotonic: pooling first picks the same value
      CHECK(fused.to_vector() == separate.value().to_vector());
    }
  const ConvGeometry small = conv_geometry("conv2d", 3, 4, 4, 3, 1, 1);
  const std::string err = error_of([&] {
    kernels::conv2d_forward(Tensor<float>::zeros({1, 3, 4, 4}), Tensor<float>::zeros({2, 3, 3, 3}), small, kernels::Epilogue<float>{nullptr, {}, 5});
  });
  CHECK_THAT(err, Catch::Contains("conv2d") && Catch::Contains("max-pool window 5") && Catch::Contains("4x4"));
}

TEST_CASE("winograd: the transformed weights and one tile by hand", "[ops][conv]") {
  // a single 3×3 filter of ones over a 4×4 tile 1..16 with no padding around it: the 2×2
  // outputs are the sums of the four 3×3 windows, 54, 63, 90, 99
  Tensor<double> g = Tensor<double>::ones({1, 1, 3, 3});
  const Tensor<double> packed = kernels::winograd::packed_transformed_weights(g);
  // G·1·Gᵀ = (1, 1.5, 0.5, 1)ᵀ (1, 1.5, 0.5, 1), each position its own 1×1 packed matrix
  const double side[4] = {1, 1.5, 0.5, 1};
  const std::size_t stride = kernels::gemm::packed_lhs_size<double>(1, 1);
  for (std::size_t xi = 0; xi < 16; ++xi) CHECK(packed[xi * stride] == side[xi / 4] * side[xi % 4]);
  // the tile's padded rows, split into even and odd columns as transform_input_row reads them
  double rows[4][6];
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t i = 0; i < 2; ++i) rows[r][i] = double(4 * r + 2 * i + 1), rows[r][3 + i] = double(4 * r + 2 * i + 2);
  const double* even[4] = {rows[0], rows[1], rows[2], rows[3]};
  double v[16], m[16], y[4];
  kernels::winograd::transform_input_row(even, 3, 1, v, 1);
  for (std::size_t xi = 0; xi < 16; ++xi) m[xi] = v[xi] * packed[xi * stride];
  kernels::winograd::transform_output<false>(m, 1, 1, 0.5, y);
  CHECK(y[0] == Approx(54.5));
  CHECK(y[1] == Approx(63.5));
  CHECK(y[2] == Approx(90.5));
  CHECK(y[3] == Approx(99.5));
  kernels::winograd::transform_output<true>(m, 1, 1, 0.5, y);
  CHECK(y[0] == Approx(99.5));
}

TEST_CASE("FlopCounter: 2·m·n·k per matrix product, forward and backward, nested counters included", "[ops][conv]") {
  Rng rng(3);
  Var<double> x = leaf({2, 3, 5, 5}, rng), w = leaf({4, 3, 3, 3}, rng);
  FlopCounter all;
  {
    FlopCounter conv;
    Var<double> y = conv2d(x, w, Var<double>(), 1, 1);  // (2, 4, 5, 5): 200 outputs, 27 products each
    CHECK(conv.total() == 2.0 * 200 * 27);
    sum(y).backward();  // the input gradient and the weight gradient cost as much again each
    CHECK(conv.total() == 3 * 2.0 * 200 * 27);
  }
  Var<double> small = leaf({2, 4, 3, 3}, rng), wt = leaf({4, 2, 4, 4}, rng);
  FlopCounter transpose;
  conv2d_transpose(small.detach(), wt.detach(), Var<double>(), 2, 1);  // each of 72 inputs spreads over 2·4·4 outputs
  CHECK(transpose.total() == 2.0 * 72 * 32);
  FlopCounter dense;
  linear(leaf({5, 7}, rng).detach(), leaf({3, 7}, rng).detach());
  CHECK(dense.total() == 2.0 * 5 * 7 * 3);
  CHECK(all.total() == 3 * 2.0 * 200 * 27 + 2.0 * 72 * 32 + 2.0 * 5 * 7 * 3);
}

TEST_CASE("conv2d with a frozen weight and a trainable bias: the same bias gradient, no weight product", "[ops][conv]") {
  Rng rng(4);
  const Tensor<double> x = Tensor<double>::randn({3, 2, 6, 5}, rng), w = Tensor<double>::randn({4, 2, 3, 3}, rng);
  const Tensor<double> b = Tensor<double>::randn({4}, rng), up = Tensor<double>::randn({3, 4, 3, 3}, rng);
  const Rectifier leaky{true, 0.2};  // the bias gradient passes back through the fused rectifier
  auto bias_grad = [&](bool weight_trainable, double& flops) {
    Var<double> weight(w, weight_trainable), bias(b, true);
    FlopCounter counter;
    conv2d(Var<double>(x), weight, bias, 2, 1, leaky).backward(up);
    flops = counter.total();
    return bias.grad();
  };
  double with_weight = 0, bias_only = 0;
  const Tensor<double> expected = bias_grad(true, with_weight), got = bias_grad(false, bias_only);
  REQUIRE(got.shape() == expected.shape());
  CHECK(std::equal(got.data(), got.data() + got.size(), expected.data()));  // the same sums, the same order
  const double forward = 2.0 * 3 * 9 * 4 * 18;  // 3 images × 9 positions × 4 channels × 18 products
  CHECK(with_weight == 2 * forward);
  CHECK(bias_only == forward);
}

TEST_CASE("conv2d and conv2d_transpose: gradients", "[ops][conv][gradcheck]") {
  Rng rng(9);
  struct Case {
    std::size_t n, c_in, c_out, h, w, k, stride, pad, out_pad;
  };
  const std::vector<Case> cases{{2, 1, 1, 4, 4, 3, 1, 0, 0},
                                {2, 3, 2, 5, 6, 4, 2, 1, 0},  // stride 2, padding 1, non-square, C ≠ 1
                                {1, 2, 3, 7, 5, 3, 2, 1, 1},
                                {3, 2, 2, 3, 4, 1, 1, 0, 0},
                                {2, 16, 16, 2, 4, 3, 1, 1, 0}};  // conv2d's forward by Winograd
  for (const auto& c : cases) {
    std::ostringstream name;
    name << "N" << c.n << " C" << c.c_in << "->" << c.c_out << " " << c.h << "x" << c.w << " k" << c.k << " s" << c.stride
         << " p" << c.pad;
    Var<double> x = leaf({c.n, c.c_in, c.h, c.w}, rng);
    Var<double> w = leaf({c.c_out, c.c_in, c.k, c.k}, rng), b = leaf({c.c_out}, rng);
    check_gradients("conv2d " + name.str(), {x, w, b}, [&] { return conv2d(x, w, b, c.stride, c.pad); });
    check_gradients("conv2d no bias " + name.str(), {x, w}, [&] { return conv2d(x, w, Var<double>(), c.stride, c.pad); });
    Var<double> wt = leaf({c.c_in, c.c_out, c.k, c.k}, rng);
    check_gradients("conv2d_transpose " + name.str(), {x, wt, b},
                    [&] { return conv2d_transpose(x, wt, b, c.stride, c.pad, c.out_pad); });
  }
}

TEST_CASE("conv2d: shape errors name the op and both shapes", "[ops][conv][errors]") {
  Var<double> x(Tensor<double>::zeros({1, 3, 8, 8}));
  Var<double> w(Tensor<double>::zeros({4, 2, 3, 3}));
  const std::string err = error_of([&] { conv2d(x, w, Var<double>()); });
  CHECK_THAT(err, Catch::Contains("conv2d") && Catch::Contains("(1, 3, 8, 8)") && Catch::Contains("(4, 2, 3, 3)"));
  CHECK_THROWS_AS(conv2d(Var<double>(Tensor<double>::zeros({3, 8, 8})), w, Var<double>()), Error);
  CHECK_THROWS_AS(conv2d(Var<double>(Tensor<double>::zeros({1, 2, 2, 2})), w, Var<double>()), Error);  // kernel too big
}

TEST_CASE("im2col and col2im are adjoint", "[ops][conv]") {
  // ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for all x, c: the identity conv2d's backward relies on
  Rng rng(10);
  const ConvGeometry g = conv_geometry("test", 3, 7, 6, 3, 2, 1);
  const Tensor<double> x = Tensor<double>::randn({3, 7, 6}, rng);
  Tensor<double> cols = Tensor<double>::empty({g.col_rows(), g.positions()});
  kernels::im2col(x.data(), g, cols.data());
  const Tensor<double> c = Tensor<double>::randn(cols.shape(), rng);
  Tensor<double> back = Tensor<double>::empty(x.shape());
  kernels::col2im(c.data(), g, back.data());
  CHECK((cols.array() * c.array()).sum() == Approx((x.array() * back.array()).sum()));
  // and im2col by hand at one corner tap: row (c=1, ki=0, kj=0), output (0, 1) reads x[1, -1, 1] = 0 (padding)
  CHECK(cols.at(9, 1) == 0.0);
  CHECK(cols.at(9 + 4, 1 * g.out_width + 1) == x.at(1, 2, 2));  // (c=1, ki=1, kj=1) at (1, 1) reads x[1, 2·1 − 1 + 1, 2·1 − 1 + 1]
}

// ---- pooling and batch norm ---------------------------------------------------------------------------

TEST_CASE("max and average pooling: gradients", "[ops][pool][gradcheck]") {
  Rng rng(11);
  // distinct values so that no window has a tie (central differences cannot see a tie's choice)
  Tensor<double> distinct = Tensor<double>::empty({2, 3, 6, 5});
  for (std::size_t i = 0; i < distinct.size(); ++i) distinct[i] = std::sin(double(i) * 1.7) * 3 + i * 1e-3;
  Var<double> x(distinct, true);
  check_gradients("max_pool2d 2/2", {x}, [&] { return max_pool2d(x, 2, 2); });
  check_gradients("max_pool2d 3/1 overlapping", {x}, [&] { return max_pool2d(x, 3, 1); });
  check_gradients("avg_pool2d 2/2", {x}, [&] { return avg_pool2d(x, 2, 2); });
  check_gradients("avg_pool2d 3/2 overlapping", {x}, [&] { return avg_pool2d(x, 3, 2); });
}

TEST_CASE("max pooling with ties sends the gradient to the first maximum only", "[ops][pool]") {
  Var<double> x(Tensor<double>({1, 1, 2, 4}, {7, 7, 1, 5, 7, 7, 5, 5}), true);
  Var<double> y = max_pool2d(x, 2, 2);
  CHECK(y.value().to_vector() == std::vector<double>{7, 5});
  sum(y).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{1, 0, 0, 1, 0, 0, 0, 0});
}

TEST_CASE("average pooling values", "[ops][pool]") {
  Var<double> x(Tensor<double>({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}));
  CHECK(avg_pool2d(x, 2, 2).value().to_vector() == std::vector<double>{3.5, 5.5});
}

TEST_CASE("batch_norm: gradients in training and eval mode", "[ops][batchnorm][gradcheck]") {
  Rng rng(12);
  for (const Shape& s : {Shape{5, 3}, Shape{3, 2, 3, 4}}) {
    Var<double> x = leaf(s, rng), gamma = positive_leaf({s[1]}, rng), beta = leaf({s[1]}, rng);
    Tensor<double> rm = Tensor<double>::randn({s[1]}, rng);
    Tensor<double> rv = Tensor<double>::uniform({s[1]}, rng, 0.5, 2.0);
    std::ostringstream name;
    name << s;
    check_gradients("batch_norm train " + name.str(), {x, gamma, beta},
                    [&] { return batch_norm(x, gamma, beta, rm, rv, true); });
    check_gradients("batch_norm eval " + name.str(), {x, gamma, beta},
                    [&] { return batch_norm(x, gamma, beta, rm, rv, false); });
    for (double slope : {0.0, 0.2})  // fused with ReLU (slope 0) and LeakyReLU(0.2)
      for (bool training : {true, false}) {
        check_gradients("batch_norm + rectifier " + std::to_string(slope) + (training ? " train " : " eval ") + name.str(),
                        {x, gamma, beta},
                        [&] { return batch_norm(x, gamma, beta, rm, rv, training, 0.1, 1e-5, Rectifier{true, slope}); });
      }
  }
}

TEST_CASE("batch_norm normalises each channel and checks its parameters' shapes", "[ops][batchnorm]") {
  Rng rng(13);
  Var<double> x(Tensor<double>::randn({8, 2, 3, 3}, rng, 5.0, 3.0));
  Var<double> gamma(Tensor<double>::ones({2})), beta(Tensor<double>::zeros({2}));
  Tensor<double> rm = Tensor<double>::zeros({2}), rv = Tensor<double>::ones({2});
  const Tensor<double> y = batch_norm(x, gamma, beta, rm, rv, true).value();
  double s = 0, sq = 0;
  for (std::size_t n = 0; n < 8; ++n)
    for (std::size_t i = 0; i < 9; ++i) {
      const double v = y[(n * 2 + 1) * 9 + i];
      s += v;
      sq += v * v;
    }
  CHECK(s / 72 == Approx(0).margin(1e-12));
  CHECK(sq / 72 == Approx(1).epsilon(1e-4));  // variance 1 up to eps
  Var<double> wrong(Tensor<double>::ones({3}));
  CHECK_THAT(error_of([&] { batch_norm(x, wrong, beta, rm, rv, true); }), Catch::Contains("batch_norm") && Catch::Contains("(3)"));
  Var<double> single(Tensor<double>::ones({1, 2}));
  CHECK_THROWS_AS(batch_norm(single, gamma, beta, rm, rv, true), Error);  // one value per channel
}

TEST_CASE("broadcasting errors name the op and both shapes", "[ops][errors]") {
  Var<double> a(Tensor<double>::zeros({2, 3})), b(Tensor<double>::zeros({4}));
  const std::string err = error_of([&] { a + b; });
  CHECK_THAT(err, Catch::Contains("add") && Catch::Contains("(2, 3)") && Catch::Contains("(4)"));
  CHECK_THAT(error_of([&] { a * b; }), Catch::Contains("mul"));
  CHECK_THAT(error_of([&] { a / b; }), Catch::Contains("div"));
  CHECK_THAT(error_of([&] { a - b; }), Catch::Contains("sub"));
}

TEST_CASE("anomaly mode names the first op whose forward or backward made NaN or Inf", "[autograd][anomaly][errors]") {
  const Var<double> x(Tensor<double>::full({2, 3}, -1.0), true);
  const Var<double> y(Tensor<double>::full({2, 3}, 2.0), true);
  {
    DetectAnomalyGuard anomaly;
    // forward: log(−1) is NaN; the op and the shapes are named, nothing later runs
    CHECK(error_of([&] { sum(log(x * y) + y); }) == "anomaly: forward of log produced NaN in its result (2, 3) from inputs (2, 3)");
    // backward: sqrt(0) is finite, its gradient 1/(2·sqrt(0)) is not
    const Var<double> zero(Tensor<double>::zeros({2, 3}), true);
    Var<double> loss = sum(sqrt(zero) * y);
    CHECK(error_of([&] { loss.backward(); }) ==
          "anomaly: backward of sqrt (output (2, 3)) produced Inf in the gradient of its input 0 (2, 3)");
    // a NaN that came from outside the graph is blamed on its entry, not on the op
    const Var<double> bad(Tensor<double>::full({2, 3}, std::nan("")), false);
    CHECK_THAT(error_of([&] { bad + y; }), Catch::Contains("anomaly: input 0 (2, 3) of add already holds NaN"));
    // finite work runs as usual
    Var<double> fine = sum(x * y);
    fine.backward();
    CHECK(y.grad()[0] == -1.0);
  }
  CHECK_FALSE(detect_anomaly_enabled());
  CHECK_NOTHROW(log(x));  // off again: NaN passes silently, as in PyTorch
  set_detect_anomaly(true);
  CHECK(detect_anomaly_enabled());
  set_detect_anomaly(false);
}
