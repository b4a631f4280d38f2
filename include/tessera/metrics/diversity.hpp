// tessera/metrics/diversity.hpp — how different a generator's images of one class are from each
// other, against how different the real images of that class are: the intra-class diversity
// ratio. For each class, the mean pairwise Euclidean distance between the feature vectors of its
// generated images, over the same for its real images; averaged over the classes. 1: as varied
// as the data; near 0: one image per class (a conditional generator ignoring its noise).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace tessera::metrics {

/// The mean Euclidean distance over all pairs of the rows `rows` of features (N, D), in double.
template <class T>
double mean_pairwise_distance(const Tensor<T>& features, const std::vector<std::size_t>& rows) {
  TESSERA_CHECK(features.dim() == 2, "mean_pairwise_distance: features must be (N, D), got " << features.shape());
  TESSERA_CHECK(rows.size() >= 2, "mean_pairwise_distance: needs at least 2 rows, got " << rows.size());
  const std::size_t d = features.size(1);
  double total = 0;
  for (std::size_t a = 0; a < rows.size(); ++a)
    for (std::size_t b = a + 1; b < rows.size(); ++b) {
      double squares = 0;
      for (std::size_t j = 0; j < d; ++j) {
        const double diff = double(features[rows[a] * d + j]) - double(features[rows[b] * d + j]);
        squares += diff * diff;
      }
      total += std::sqrt(squares);
    }
  return total / (double(rows.size()) * double(rows.size() - 1) / 2);
}

/// The intra-class diversity ratio of generated features (M, D) with their classes against real
/// features (N, D) with theirs, over the classes that have at least two images in both.
template <class T>
double intra_class_diversity(const Tensor<T>& real, const std::vector<std::int64_t>& real_labels, const Tensor<T>& generated,
                             const std::vector<std::int64_t>& generated_labels) {
  TESSERA_CHECK(real.dim() == 2 && generated.dim() == 2 && real.size(1) == generated.size(1),
                "intra_class_diversity: features (N, D) of one width expected, got " << real.shape() << " and " << generated.shape());
  TESSERA_CHECK(real_labels.size() == real.size(0) && generated_labels.size() == generated.size(0),
                "intra_class_diversity: " << real_labels.size() << " and " << generated_labels.size() << " labels for "
                                          << real.size(0) << " and " << generated.size(0) << " feature vectors");
  std::map<std::int64_t, std::vector<std::size_t>> real_rows, generated_rows;
  for (std::size_t i = 0; i < real_labels.size(); ++i) real_rows[real_labels[i]].push_back(i);
  for (std::size_t i = 0; i < generated_labels.size(); ++i) generated_rows[generated_labels[i]].push_back(i);
  double sum = 0;
  std::size_t classes = 0;
  for (const auto& [label, rows] : generated_rows) {
    const auto real_of_class = real_rows.find(label);
    if (rows.size() < 2 || real_of_class == real_rows.end() || real_of_class->second.size() < 2) continue;
    const double real_spread = mean_pairwise_distance(real, real_of_class->second);
    if (real_spread <= 0) continue;
    sum += mean_pairwise_distance(generated, rows) / real_spread;
    ++classes;
  }
  TESSERA_CHECK(classes > 0, "intra_class_diversity: no class has two real and two generated images");
  return sum / double(classes);
}

}  // namespace tessera::metrics
