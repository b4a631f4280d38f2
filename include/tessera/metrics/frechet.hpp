// tessera/metrics/frechet.hpp — the Fréchet distance between two sets of feature vectors, each
// summarised as a Gaussian (mean, covariance): FID when the features are a network's
// activations on real and generated images (Heusel et al. 2017, "GANs Trained by a Two
// Time-Scale Update Rule Converge to a Local Nash Equilibrium").
//
//   const auto real = ts::metrics::feature_stats(features_of_real_images);   // once
//   double fid = ts::metrics::frechet_distance(real, ts::metrics::feature_stats(features_of_samples));
//
// Computed in double whatever the features' type.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../core/eigen.hpp"
#include <Eigen/Eigenvalues>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace tessera::metrics {

/// A feature set summarised as a Gaussian: what the Fréchet distance compares.
struct FeatureStats {
  Eigen::VectorXd mean;        // (D)
  Eigen::MatrixXd covariance;  // (D, D), unbiased (divides by N − 1, as numpy.cov)
  std::size_t count = 0;       // N, the number of feature vectors summarised

  std::size_t dim() const { return std::size_t(mean.size()); }
};

/// Mean and unbiased covariance of the rows of `features` (N, D), N ≥ 2.
template <class T>
FeatureStats feature_stats(const Tensor<T>& features) {
  TESSERA_CHECK(features.dim() == 2 && features.size(1) > 0,
                "feature_stats: expected features (N, D), got " << features.shape());
  const std::size_t n = features.size(0), d = features.size(1);
  TESSERA_CHECK(n >= 2, "feature_stats: features " << features.shape() << ": a covariance needs at least 2 samples");
  const Eigen::MatrixXd x = features.matrix(n, d).template cast<double>();
  FeatureStats stats;
  stats.mean = x.colwise().mean().transpose();
  const Eigen::MatrixXd centered = x.rowwise() - stats.mean.transpose();
  stats.covariance = (centered.transpose() * centered) / double(n - 1);
  stats.count = n;
  return stats;
}

namespace detail {
/// The symmetric positive semi-definite square root of a symmetric PSD matrix: V √Λ Vᵀ, with
/// eigenvalues that rounding made slightly negative taken as 0.
template <class Matrix>
Matrix psd_sqrt(const Matrix& m) {
  Eigen::SelfAdjointEigenSolver<Matrix> eig(m);
  TESSERA_CHECK(eig.info() == Eigen::Success, "frechet_distance: eigen decomposition of a covariance did not converge");
  const Eigen::VectorXd roots = eig.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  return eig.eigenvectors() * roots.asDiagonal() * eig.eigenvectors().transpose();
}

/// Tr((A B)^½) for symmetric PSD A, B, as Σ √λ over the eigenvalues λ of A^½ B A^½: that
/// matrix is similar to A B but symmetric PSD, so its eigenvalues are real and ≥ 0 (up to
/// rounding, clamped) — more stable than scipy.linalg.sqrtm of the non-symmetric A B.
template <class Matrix>
double trace_sqrt_product(const Matrix& a, const Matrix& b) {
  const Matrix root_a = psd_sqrt(a);
  Matrix m = root_a * b * root_a;
  m = 0.5 * (m + m.transpose());  // exactly symmetric, as the solver assumes
  Eigen::SelfAdjointEigenSolver<Matrix> eig(m, Eigen::EigenvaluesOnly);
  TESSERA_CHECK(eig.info() == Eigen::Success, "frechet_distance: eigen decomposition did not converge");
  return eig.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
}
}  // namespace detail

/// d² = |μa − μb|² + Tr(Σa + Σb − 2 (Σa Σb)^½), the squared Fréchet (2-Wasserstein) distance
/// between N(μa, Σa) and N(μb, Σb) (Dowson & Landau 1982). Clamped at 0: for equal statistics
/// rounding would otherwise leave about −1e-13.
/// (A template only so that Eigen's eigensolver is compiled where this is called: in every
/// program including tessera.hpp it added 5 s of compile time.)
template <class Stats, class = std::enable_if_t<std::is_same_v<Stats, FeatureStats>>>
double frechet_distance(const Stats& a, const Stats& b) {
  TESSERA_CHECK(a.dim() == b.dim(), "frechet_distance: statistics of width " << a.dim() << " and " << b.dim() << " differ");
  TESSERA_CHECK(a.dim() > 0, "frechet_distance: empty statistics (width 0)");
  TESSERA_CHECK(a.covariance.rows() == a.mean.size() && a.covariance.cols() == a.mean.size() &&
                    b.covariance.rows() == b.mean.size() && b.covariance.cols() == b.mean.size(),
                "frechet_distance: a covariance is not (D, D) for means of width " << a.dim());
  const double mean_term = (a.mean - b.mean).squaredNorm();
  const double trace_term = a.covariance.trace() + b.covariance.trace() - 2 * detail::trace_sqrt_product(a.covariance, b.covariance);
  return std::max(0.0, mean_term + trace_term);
}

/// The Fréchet distance between the Gaussians fitted to the rows of `features_a` (N, D) and
/// `features_b` (M, D); N, M ≥ 2. For FID, pass Inception-style activations of real and
/// generated images (and keep feature_stats of the real ones instead of recomputing them).
template <class T>
double frechet_distance(const Tensor<T>& features_a, const Tensor<T>& features_b) {
  TESSERA_CHECK(features_a.dim() == 2 && features_b.dim() == 2,
                "frechet_distance: expected features (N, D) and (M, D), got " << features_a.shape() << " and " << features_b.shape());
  TESSERA_CHECK(features_a.size(1) == features_b.size(1),
                "frechet_distance: features " << features_a.shape() << " and " << features_b.shape() << " differ in width");
  TESSERA_CHECK(features_a.size(0) >= 2 && features_b.size(0) >= 2,
                "frechet_distance: features " << features_a.shape() << " and " << features_b.shape()
                                              << ": each set needs at least 2 samples for a covariance");
  return frechet_distance(feature_stats(features_a), feature_stats(features_b));
}

}  // namespace tessera::metrics
