// tessera/metrics/precision_recall.hpp — how much of what a generator draws looks real, and how
// much of the real data it covers: improved precision and recall (Kynkäänniemi, Karras, Laine,
// Lehtinen & Aila 2019, "Improved Precision and Recall Metric for Assessing Generative
// Models"). Each set of feature vectors stands for a manifold: the union of balls around its
// points, each ball reaching the point's k-th nearest neighbour in its own set. Then
//     precision = the share of generated points inside the real manifold,
//     recall    = the share of real points inside the generated manifold.
// A generator that draws one good image has precision 1 and recall near 0 (mode collapse).
// Distances are Euclidean, computed in double.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "../core/eigen.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace tessera::metrics {

struct PrecisionRecall {
  double precision = 0, recall = 0;
};

namespace detail {
/// The rows of features (N, D) as a double matrix.
template <class T>
Eigen::MatrixXd rows_of(const Tensor<T>& features, const char* what) {
  TESSERA_CHECK(features.dim() == 2 && features.size(0) > 0 && features.size(1) > 0,
                "precision_recall: " << what << " features must be (N, D), got " << features.shape());
  return features.matrix(features.size(0), features.size(1)).template cast<double>();
}

/// Squared Euclidean distances between the rows of a (N, D) and b (M, D): (N, M).
inline Eigen::MatrixXd squared_distances(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  Eigen::MatrixXd d = -2.0 * a * b.transpose();
  d.colwise() += a.rowwise().squaredNorm();
  d.rowwise() += b.rowwise().squaredNorm().transpose();
  return d.cwiseMax(0.0);
}

/// Each row's squared distance to its k-th nearest other row (the row itself left out).
inline Eigen::VectorXd kth_neighbour_radii(const Eigen::MatrixXd& points, std::size_t k) {
  const Eigen::MatrixXd d = squared_distances(points, points);
  Eigen::VectorXd radii(points.rows());
  std::vector<double> row(std::size_t(points.rows()));
  for (Eigen::Index i = 0; i < points.rows(); ++i) {
    for (Eigen::Index j = 0; j < points.rows(); ++j) row[std::size_t(j)] = d(i, j);
    std::nth_element(row.begin(), row.begin() + std::ptrdiff_t(k), row.end());  // [0] is the row itself
    radii(i) = row[k];
  }
  return radii;
}

/// The share of `queries` inside the manifold of `points` (balls of `radii`).
inline double share_inside(const Eigen::MatrixXd& queries, const Eigen::MatrixXd& points, const Eigen::VectorXd& radii) {
  const Eigen::MatrixXd d = squared_distances(queries, points);
  std::size_t inside = 0;
  for (Eigen::Index q = 0; q < queries.rows(); ++q)
    inside += ((d.row(q).transpose() - radii).array() <= 0.0).any();
  return double(inside) / double(queries.rows());
}
}  // namespace detail

/// Precision and recall of `generated` features (M, D) against `real` ones (N, D), with
/// manifolds of k-nearest-neighbour balls (k = 3, the paper's). Each set needs more than k rows.
template <class T>
PrecisionRecall precision_recall(const Tensor<T>& real, const Tensor<T>& generated, std::size_t k = 3) {
  const Eigen::MatrixXd r = detail::rows_of(real, "real"), g = detail::rows_of(generated, "generated");
  TESSERA_CHECK(r.cols() == g.cols(), "precision_recall: real features " << real.shape() << " and generated "
                                                                          << generated.shape() << " differ in width");
  TESSERA_CHECK(k > 0 && std::size_t(r.rows()) > k && std::size_t(g.rows()) > k,
                "precision_recall: k = " << k << " needs more than k rows in each set, got " << r.rows() << " and " << g.rows());
  PrecisionRecall out;
  out.precision = detail::share_inside(g, r, detail::kth_neighbour_radii(r, k));
  out.recall = detail::share_inside(r, g, detail::kth_neighbour_radii(g, k));
  return out;
}

}  // namespace tessera::metrics
