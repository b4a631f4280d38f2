// Quality metrics: accuracy, argmax, the confusion matrix and its CSV, ROC AUC (against
// hand-computed values and a brute-force count of pairs), and the Fréchet distance (closed
// forms, invariance to rotation, an independent computation of the trace term).
#include "gradcheck.hpp"

#include <tessera/metrics/classification.hpp>
#include <tessera/metrics/diversity.hpp>
#include <tessera/metrics/frechet.hpp>
#include <tessera/metrics/precision_recall.hpp>

#include <Eigen/Eigenvalues>
#include <Eigen/QR>

#include <cmath>
#include <complex>
#include <string>
#include <vector>

using namespace tessera;
using tessera::testing::error_of;
using tessera::testing::TempDir;

namespace {

/// AUC by its definition: over all (positive, negative) pairs, 1 if the positive scores
/// higher, 1/2 on a tie. O(n²), for checking.
double brute_force_auc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  double wins = 0, pairs = 0;
  for (std::size_t i = 0; i < scores.size(); ++i)
    for (std::size_t j = 0; j < scores.size(); ++j)
      if (positive[i] && !positive[j]) {
        wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
        pairs += 1;
      }
  return wins / pairs;
}

/// A d × d matrix of uniform values in [−1, 1) from `rng` (not Eigen's Random, which uses rand()).
Eigen::MatrixXd random_matrix(std::size_t d, Rng& rng) {
  Eigen::MatrixXd m(d, d);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = rng.uniform(-1, 1);
  return m;
}

/// N samples of a correlated D-dimensional Gaussian: z · mixing + shift, z standard normal.
Tensor<double> gaussian_sample(std::size_t n, const Eigen::MatrixXd& mixing, double shift, Rng& rng) {
  const auto d = std::size_t(mixing.rows());
  const Tensor<double> z = Tensor<double>::randn({n, d}, rng);
  Tensor<double> x = Tensor<double>::empty({n, d});
  x.matrix(n, d) = (z.matrix(n, d) * mixing).array() + shift;
  return x;
}

Tensor<double> times(const Tensor<double>& x, const Eigen::MatrixXd& m) {
  Tensor<double> y = Tensor<double>::empty(x.shape());
  y.matrix(x.size(0), x.size(1)) = x.matrix(x.size(0), x.size(1)) * m;
  return y;
}

/// The Fréchet distance computed another way: Tr((Σa Σb)^½) as Σ √λ over the eigenvalues of
/// the non-symmetric product Σa Σb (real and ≥ 0 in exact arithmetic).
double frechet_by_product_eigenvalues(const metrics::FeatureStats& a, const metrics::FeatureStats& b) {
  Eigen::EigenSolver<Eigen::MatrixXd> eig(a.covariance * b.covariance, /*computeEigenvectors=*/false);
  double trace_sqrt = 0;
  for (Eigen::Index i = 0; i < eig.eigenvalues().size(); ++i) trace_sqrt += std::sqrt(std::max(0.0, eig.eigenvalues()[i].real()));
  return (a.mean - b.mean).squaredNorm() + a.covariance.trace() + b.covariance.trace() - 2 * trace_sqrt;
}

}  // namespace

// ---- classification ----------------------------------------------------------------------------

TEST_CASE("accuracy: the fraction of predictions equal to their labels", "[metrics]") {
  CHECK(metrics::accuracy({0, 1, 2, 1}, {0, 1, 1, 1}) == 0.75);
  CHECK(metrics::accuracy({3}, {3}) == 1.0);
  CHECK(error_of([] { metrics::accuracy({0, 1}, {0}); }) == "accuracy: 2 predictions for 1 labels");
  CHECK(error_of([] { metrics::accuracy({}, {}); }) == "accuracy: no samples");
}

TEST_CASE("argmax_rows: the largest value's index per row, ties to the first", "[metrics]") {
  const Tensor<float> logits({3, 4}, {0.1f, 2.0f, -1.0f, 2.0f,  //
                                      5.0f, 1.0f, 1.0f, 1.0f,   //
                                      -3.0f, -2.0f, -1.0f, -0.5f});
  CHECK(metrics::argmax_rows(logits) == std::vector<std::int64_t>{1, 0, 3});
  CHECK(metrics::argmax_rows(logits.cast<double>()) == std::vector<std::int64_t>{1, 0, 3});
  const double nan = std::nan("");
  const Tensor<double> with_nan({2, 3}, {nan, 1.0, 0.5, nan, nan, nan});
  CHECK(metrics::argmax_rows(with_nan) == std::vector<std::int64_t>{1, 0});
  CHECK(error_of([] { metrics::argmax_rows(Tensor<float>({4})); }) == "argmax_rows: expected logits (N, K) with K > 0, got (4)");
}

TEST_CASE("confusion_matrix: counts, accuracy, recall, precision", "[metrics]") {
  //                 true:  0  1  2  2  2  1  0
  //            predicted:  0  1  1  2  2  2  0
  const auto cm = metrics::confusion_matrix({0, 1, 1, 2, 2, 2, 0}, {0, 1, 2, 2, 2, 1, 0}, 4);
  const std::vector<std::vector<std::int64_t>> expected{{2, 0, 0, 0}, {0, 1, 1, 0}, {0, 1, 2, 0}, {0, 0, 0, 0}};
  CHECK(cm.counts == expected);
  CHECK(cm.num_classes() == 4);
  CHECK(cm.total() == 7);
  CHECK(cm.accuracy() == Approx(5.0 / 7));
  const auto recall = cm.recall();
  CHECK(recall[0] == 1.0);
  CHECK(recall[1] == 0.5);
  CHECK(recall[2] == Approx(2.0 / 3));
  CHECK(std::isnan(recall[3]));  // no samples of class 3
  const auto precision = cm.precision();
  CHECK(precision[0] == 1.0);
  CHECK(precision[1] == 0.5);
  CHECK(precision[2] == Approx(2.0 / 3));
  CHECK(std::isnan(precision[3]));  // never predicted

  CHECK(error_of([] { metrics::confusion_matrix({0, 5}, {0, 1}, 3); }) == "confusion_matrix: prediction 5 at index 1 is outside [0, 3)");
  CHECK(error_of([] { metrics::confusion_matrix({0, 1}, {-1, 1}, 3); }) == "confusion_matrix: label -1 at index 0 is outside [0, 3)");
  CHECK(error_of([] { metrics::confusion_matrix({0}, {0, 1}, 3); }) == "confusion_matrix: 1 predictions for 2 labels");
}

TEST_CASE("confusion_matrix: written as CSV with a header of class names", "[metrics]") {
  TempDir dir;
  const auto cm = metrics::confusion_matrix({0, 1, 1, 2}, {0, 1, 2, 2}, 3);
  cm.write_csv(dir / "confusion.csv", {"banded", "bricks, red", "say \"hi\""});
  const io::Bytes bytes = io::read_file(dir / "confusion.csv");
  CHECK(std::string(bytes.begin(), bytes.end()) ==
        "true\\predicted,banded,\"bricks, red\",\"say \"\"hi\"\"\"\n"
        "banded,1,0,0\n"
        "\"bricks, red\",0,1,0\n"
        "\"say \"\"hi\"\"\",0,1,1\n");
  CHECK(cm.to_csv() == "true\\predicted,0,1,2\n0,1,0,0\n1,0,1,0\n2,0,1,1\n");
  CHECK(error_of([&] { cm.write_csv(dir / "bad.csv", {"a", "b"}); }) == "ConfusionMatrix: 2 class names for 3 classes");
}

TEST_CASE("roc_auc: hand-computed values", "[metrics]") {
  // Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered right.
  CHECK(metrics::roc_auc({0.1, 0.4, 0.35, 0.8}, {false, false, true, true}) == 0.75);
  CHECK(metrics::roc_auc({0.5, 0.5}, {true, false}) == 0.5);  // a tie counts one half
  // Pairs: 0.5 vs 0.1 right, 0.5 vs 0.5 tie, 0.9 vs both right: (1 + 0.5 + 2) / 4.
  CHECK(metrics::roc_auc({0.1, 0.5, 0.5, 0.9}, {false, true, false, true}) == 0.875);
  CHECK(metrics::roc_auc({0.1, 0.2, 0.3, 0.7, 0.8}, {false, false, false, true, true}) == 1.0);
  CHECK(metrics::roc_auc({0.9, 0.8, 0.3, 0.2, 0.1}, {false, false, false, true, true}) == 0.0);
  CHECK(metrics::roc_auc({1, 1, 1, 1}, {true, false, true, false}) == 0.5);  // all tied
}

TEST_CASE("roc_auc: equals the pair count on random scores with many ties", "[metrics]") {
  Rng rng(7);
  std::vector<double> scores;
  std::vector<bool> positive;
  for (int i = 0; i < 300; ++i) {
    const bool pos = rng.bernoulli(0.3);
    scores.push_back(std::round((rng.normal() + (pos ? 0.8 : 0.0)) * 4) / 4);  // quarter steps: ties
    positive.push_back(pos);
  }
  CHECK(metrics::roc_auc(scores, positive) == Approx(brute_force_auc(scores, positive)).epsilon(1e-12));
}

TEST_CASE("roc_auc: errors", "[metrics]") {
  CHECK(error_of([] { metrics::roc_auc({0.1, 0.2}, {true, true}); }) ==
        "roc_auc: needs both classes, got 2 positive and 0 negative samples");
  CHECK(error_of([] { metrics::roc_auc({}, {}); }) == "roc_auc: needs both classes, got 0 positive and 0 negative samples");
  CHECK(error_of([] { metrics::roc_auc({0.1}, {true, false}); }) == "roc_auc: 1 scores for 2 labels");
  CHECK(error_of([] { metrics::roc_auc({0.1, std::nan("")}, {true, false}); }) == "roc_auc: score 1 is NaN");
}

// ---- Fréchet distance --------------------------------------------------------------------------

TEST_CASE("frechet_distance: zero between a set and itself", "[metrics]") {
  Rng rng(1);
  const Tensor<double> x = gaussian_sample(50, random_matrix(6, rng), 0.5, rng);
  CHECK(metrics::frechet_distance(x, x) == Approx(0).margin(1e-9));
  CHECK(metrics::frechet_distance(x.cast<float>(), x.cast<float>()) == Approx(0).margin(1e-6));
  CHECK(metrics::frechet_distance(x, x) >= 0);  // never negative from rounding
}

TEST_CASE("frechet_distance: 1-D closed form (μ1 − μ2)² + (σ1 − σ2)²", "[metrics]") {
  const Tensor<double> a({4, 1}, {1, 2, 3, 4}), b({3, 1}, {0, 5, 10});
  // Unbiased variances: a has mean 2.5, variance 5/3; b has mean 5, variance 25.
  const double expected = std::pow(2.5 - 5, 2) + std::pow(std::sqrt(5.0 / 3) - 5, 2);
  CHECK(metrics::frechet_distance(a, b) == Approx(expected).epsilon(1e-12));
  CHECK(metrics::frechet_distance(b, a) == Approx(expected).epsilon(1e-12));
}

TEST_CASE("frechet_distance: diagonal covariances give a sum over dimensions", "[metrics]") {
  metrics::FeatureStats a{Eigen::Vector3d(0, 1, 2), Eigen::Vector3d(1, 4, 9).asDiagonal(), 10};
  metrics::FeatureStats b{Eigen::Vector3d(1, 1, 0), Eigen::Vector3d(4, 4, 1).asDiagonal(), 10};
  // Σ (μa − μb)² + (σa − σb)² = (1 + 0 + 4) + (1 + 0 + 4)
  CHECK(metrics::frechet_distance(a, b) == Approx(10).epsilon(1e-12));

  // Samples whose covariance is exactly diagonal: (±s, 0) and (0, ±t) have covariance
  // diag(2s²/3, 2t²/3).
  const Tensor<double> x({4, 2}, {3, 0, -3, 0, 0, 6, 0, -6});
  const Tensor<double> y({4, 2}, {1 + 1.5, 2, 1 - 1.5, 2, 1, 2 + 3, 1, 2 - 3});
  const double sx0 = std::sqrt(6.0), sx1 = std::sqrt(24.0), sy0 = std::sqrt(1.5), sy1 = std::sqrt(6.0);
  const double expected = 1 + 4 + std::pow(sx0 - sy0, 2) + std::pow(sx1 - sy1, 2);
  CHECK(metrics::frechet_distance(x, y) == Approx(expected).epsilon(1e-12));
}

TEST_CASE("frechet_distance: unchanged by rotating both sets; agrees with another computation", "[metrics]") {
  Rng rng(3);
  const std::size_t d = 5;
  const Tensor<double> a = gaussian_sample(400, random_matrix(d, rng), 0.0, rng);
  const Tensor<double> b = gaussian_sample(300, random_matrix(d, rng) * 0.5, 0.3, rng);
  const Eigen::MatrixXd rotation = Eigen::HouseholderQR<Eigen::MatrixXd>(random_matrix(d, rng)).householderQ();
  REQUIRE((rotation.transpose() * rotation - Eigen::MatrixXd::Identity(d, d)).norm() < 1e-12);

  const double fid = metrics::frechet_distance(a, b);
  CHECK(fid > 0.1);
  CHECK(metrics::frechet_distance(times(a, rotation), times(b, rotation)) == Approx(fid).epsilon(1e-9));

  const auto stats_a = metrics::feature_stats(a), stats_b = metrics::feature_stats(b);
  CHECK(stats_a.count == 400);
  CHECK(metrics::frechet_distance(stats_a, stats_b) == fid);
  CHECK(frechet_by_product_eigenvalues(stats_a, stats_b) == Approx(fid).epsilon(1e-8));
}

TEST_CASE("frechet_distance: a rank-deficient covariance (fewer samples than features)", "[metrics]") {
  Rng rng(4);
  const Tensor<double> a = Tensor<double>::randn({3, 8}, rng), b = Tensor<double>::randn({5, 8}, rng);
  const double fid = metrics::frechet_distance(a, b);
  CHECK(std::isfinite(fid));
  CHECK(fid == Approx(frechet_by_product_eigenvalues(metrics::feature_stats(a), metrics::feature_stats(b))).epsilon(1e-6));
}

TEST_CASE("frechet_distance: errors", "[metrics]") {
  CHECK(error_of([] { metrics::frechet_distance(Tensor<float>({10, 4}), Tensor<float>({12, 5})); }) ==
        "frechet_distance: features (10, 4) and (12, 5) differ in width");
  CHECK(error_of([] { metrics::frechet_distance(Tensor<float>({1, 4}), Tensor<float>({12, 4})); }) ==
        "frechet_distance: features (1, 4) and (12, 4): each set needs at least 2 samples for a covariance");
  CHECK(error_of([] { metrics::frechet_distance(Tensor<float>({10}), Tensor<float>({10})); }) ==
        "frechet_distance: expected features (N, D) and (M, D), got (10) and (10)");
  CHECK(error_of([] { metrics::feature_stats(Tensor<double>({1, 3})); }) ==
        "feature_stats: features (1, 3): a covariance needs at least 2 samples");
  const auto three = metrics::feature_stats(Tensor<double>({2, 3})), four = metrics::feature_stats(Tensor<double>({2, 4}));
  CHECK(error_of([&] { metrics::frechet_distance(three, four); }) == "frechet_distance: statistics of width 3 and 4 differ");
}

// ---- precision, recall and diversity of generated samples ---------------------------------------------

TEST_CASE("precision and recall: identical sets 1 and 1, disjoint sets 0 and 0, a collapsed generator precise but without recall",
          "[metrics][precision_recall]") {
  Rng rng(51);
  const Tensor<double> real = Tensor<double>::randn({200, 8}, rng);
  const auto same = metrics::precision_recall(real, real);
  CHECK(same.precision == 1.0);
  CHECK(same.recall == 1.0);
  Tensor<double> far = real;
  for (double& v : far) v += 100.0;
  const auto disjoint = metrics::precision_recall(real, far);
  CHECK(disjoint.precision == 0.0);
  CHECK(disjoint.recall == 0.0);
  // 200 copies of five real points, each nudged: all inside the real manifold, covering little of it
  Tensor<double> collapsed = Tensor<double>::empty({200, 8});
  for (std::size_t i = 0; i < 200; ++i)
    for (std::size_t j = 0; j < 8; ++j) collapsed.at(i, j) = real.at(i % 5, j) + 1e-3 * rng.normal();
  const auto mode_collapse = metrics::precision_recall(real, collapsed);
  CHECK(mode_collapse.precision == 1.0);
  CHECK(mode_collapse.recall < 0.1);
  // by hand, k = 1 on a line: real {0, 1, 2, 3} (each radius 1), generated {0.5, 1.5, 10, 11}
  // (each radius 1): 0.5 and 1.5 lie within 1 of a real point, 10 and 11 do not; real 0, 1, 2
  // lie within 1 of 0.5 or 1.5, 3 does not
  const Tensor<double> line_real({4, 1}, {0, 1, 2, 3}), line_generated({4, 1}, {0.5, 1.5, 10, 11});
  const auto line = metrics::precision_recall(line_real, line_generated, 1);
  CHECK(line.precision == 0.5);
  CHECK(line.recall == 0.75);
  CHECK_THROWS_WITH(metrics::precision_recall(line_real, line_generated, 4), Catch::Contains("needs more than k rows"));
}

TEST_CASE("intra-class diversity: generated as varied as the real images 1, one image per class 0", "[metrics][diversity]") {
  Rng rng(52);
  const Tensor<double> real = Tensor<double>::randn({40, 6}, rng);
  std::vector<std::int64_t> labels;
  for (std::size_t i = 0; i < 40; ++i) labels.push_back(std::int64_t(i % 4));
  CHECK(metrics::intra_class_diversity(real, labels, real, labels) == Approx(1.0));
  Tensor<double> one_per_class = Tensor<double>::empty({40, 6});
  for (std::size_t i = 0; i < 40; ++i)
    for (std::size_t j = 0; j < 6; ++j) one_per_class.at(i, j) = real.at(i % 4, j);
  CHECK(metrics::intra_class_diversity(real, labels, one_per_class, labels) == 0.0);
  // pairwise distances by hand: 0, 3, 4 on a line → mean of 3, 4, 1 = 8 / 3
  CHECK(metrics::mean_pairwise_distance(Tensor<double>({3, 1}, {0, 3, 4}), {0, 1, 2}) == Approx(8.0 / 3));
  CHECK_THROWS_WITH(metrics::intra_class_diversity(real, labels, real, std::vector<std::int64_t>(40, 7)), Catch::Contains("no class"));
}
