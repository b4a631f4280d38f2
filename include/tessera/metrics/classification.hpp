// tessera/metrics/classification.hpp — how good a classifier is: accuracy, the confusion
// matrix (with per-class recall and precision, saved as CSV) and ROC AUC for a binary score.
//
//   const auto predicted = ts::metrics::argmax_rows(logits);            // (N, K) → N classes
//   const auto cm = ts::metrics::confusion_matrix(predicted, labels, 5);
//   cm.write_csv(out + "/confusion.csv", dataset.classes());
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../io/file.hpp"

namespace tessera::metrics {

namespace detail {
/// A CSV field as RFC 4180 writes it: quoted (with quotes doubled) when it holds , " or a newline.
inline std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + '"';
}
}  // namespace detail

/// The fraction of predictions equal to their label.
inline double accuracy(const std::vector<std::int64_t>& predicted, const std::vector<std::int64_t>& labels) {
  TESSERA_CHECK(predicted.size() == labels.size(), "accuracy: " << predicted.size() << " predictions for " << labels.size() << " labels");
  TESSERA_CHECK(!labels.empty(), "accuracy: no samples");
  std::size_t correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) correct += predicted[i] == labels[i];
  return double(correct) / double(labels.size());
}

/// The index of each row's largest value: (N, K) logits or probabilities → N predicted classes.
/// Ties go to the first index (as torch.argmax and numpy.argmax); NaN never counts as largest
/// (a row of NaN gives 0).
template <class T>
std::vector<std::int64_t> argmax_rows(const Tensor<T>& logits) {
  TESSERA_CHECK(logits.dim() == 2 && logits.size(1) > 0, "argmax_rows: expected logits (N, K) with K > 0, got " << logits.shape());
  const std::size_t rows = logits.size(0), cols = logits.size(1);
  std::vector<std::int64_t> best(rows, 0);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = logits.data() + r * cols;
    for (std::size_t c = 1; c < cols; ++c)
      if (!std::isnan(row[c]) && (std::isnan(row[best[r]]) || row[c] > row[best[r]])) best[r] = std::int64_t(c);
  }
  return best;
}

/// counts[t][p]: how many samples of true class t were predicted as class p.
struct ConfusionMatrix {
  std::vector<std::vector<std::int64_t>> counts;

  std::size_t num_classes() const { return counts.size(); }

  std::int64_t total() const {
    std::int64_t n = 0;
    for (const auto& row : counts) n = std::accumulate(row.begin(), row.end(), n);
    return n;
  }

  /// The diagonal's share of all samples; NaN when there are none.
  double accuracy() const {
    std::int64_t correct = 0;
    for (std::size_t c = 0; c < counts.size(); ++c) correct += counts[c][c];
    const std::int64_t n = total();
    return n ? double(correct) / double(n) : std::numeric_limits<double>::quiet_NaN();
  }

  /// Per true class: the fraction of its samples predicted correctly (row-normalised diagonal).
  /// NaN for a class with no samples.
  std::vector<double> recall() const {
    std::vector<double> r(counts.size());
    for (std::size_t c = 0; c < counts.size(); ++c) {
      const std::int64_t row = std::accumulate(counts[c].begin(), counts[c].end(), std::int64_t(0));
      r[c] = row ? double(counts[c][c]) / double(row) : std::numeric_limits<double>::quiet_NaN();
    }
    return r;
  }

  /// Per predicted class: the fraction of its predictions that were right (column-normalised
  /// diagonal). NaN for a class never predicted.
  std::vector<double> precision() const {
    std::vector<double> p(counts.size());
    for (std::size_t c = 0; c < counts.size(); ++c) {
      std::int64_t column = 0;
      for (const auto& row : counts) column += row[c];
      p[c] = column ? double(counts[c][c]) / double(column) : std::numeric_limits<double>::quiet_NaN();
    }
    return p;
  }

  /// The matrix as CSV: a header row "true\predicted,<class names>", then one row per true
  /// class starting with its name. Without names, classes are called 0, 1, 2, ...
  std::string to_csv(const std::vector<std::string>& class_names = {}) const {
    TESSERA_CHECK(class_names.empty() || class_names.size() == counts.size(),
                  "ConfusionMatrix: " << class_names.size() << " class names for " << counts.size() << " classes");
    auto name = [&](std::size_t c) { return detail::csv_field(class_names.empty() ? std::to_string(c) : class_names[c]); };
    std::ostringstream csv;
    csv << "true\\predicted";
    for (std::size_t c = 0; c < counts.size(); ++c) csv << ',' << name(c);
    csv << '\n';
    for (std::size_t t = 0; t < counts.size(); ++t) {
      csv << name(t);
      for (std::int64_t n : counts[t]) csv << ',' << n;
      csv << '\n';
    }
    return csv.str();
  }

  /// to_csv written atomically to `path`.
  void write_csv(const std::string& path, const std::vector<std::string>& class_names = {}) const {
    const std::string csv = to_csv(class_names);
    io::write_file_atomically(path, reinterpret_cast<const std::uint8_t*>(csv.data()), csv.size());
  }
};

/// Counts (true class, predicted class) pairs; every value must be in [0, num_classes).
inline ConfusionMatrix confusion_matrix(const std::vector<std::int64_t>& predicted, const std::vector<std::int64_t>& labels,
                                        std::size_t num_classes) {
  TESSERA_CHECK(predicted.size() == labels.size(),
                "confusion_matrix: " << predicted.size() << " predictions for " << labels.size() << " labels");
  TESSERA_CHECK(num_classes > 0, "confusion_matrix: num_classes must be positive");
  ConfusionMatrix cm{std::vector<std::vector<std::int64_t>>(num_classes, std::vector<std::int64_t>(num_classes, 0))};
  const auto K = std::int64_t(num_classes);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    TESSERA_CHECK(labels[i] >= 0 && labels[i] < K, "confusion_matrix: label " << labels[i] << " at index " << i
                                                                              << " is outside [0, " << K << ")");
    TESSERA_CHECK(predicted[i] >= 0 && predicted[i] < K, "confusion_matrix: prediction " << predicted[i] << " at index "
                                                                                        << i << " is outside [0, " << K << ")");
    ++cm.counts[std::size_t(labels[i])][std::size_t(predicted[i])];
  }
  return cm;
}

/// Area under the ROC curve: the probability that a random positive scores higher than a
/// random negative, ties counting one half. Exact, through the Mann–Whitney U statistic
/// (Hanley & McNeil 1982): AUC = (R₊ − n₊(n₊ + 1)/2) / (n₊ n₋), with R₊ the sum of the
/// positives' ranks and tied scores given their average rank. O(n log n).
inline double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  TESSERA_CHECK(scores.size() == positive.size(), "roc_auc: " << scores.size() << " scores for " << positive.size() << " labels");
  const auto n_pos = std::size_t(std::count(positive.begin(), positive.end(), true)), n_neg = positive.size() - n_pos;
  TESSERA_CHECK(n_pos > 0 && n_neg > 0, "roc_auc: needs both classes, got " << n_pos << " positive and " << n_neg << " negative samples");
  for (std::size_t i = 0; i < scores.size(); ++i)
    TESSERA_CHECK(!std::isnan(scores[i]), "roc_auc: score " << i << " is NaN");
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0;
  for (std::size_t first = 0; first < order.size();) {  // one run of tied scores at a time
    std::size_t last = first;
    while (last + 1 < order.size() && scores[order[last + 1]] == scores[order[first]]) ++last;
    const double average_rank = 0.5 * double(first + last) + 1;  // ranks are 1-based
    for (std::size_t k = first; k <= last; ++k)
      if (positive[order[k]]) positive_rank_sum += average_rank;
    first = last + 1;
  }
  const double u = positive_rank_sum - 0.5 * double(n_pos) * double(n_pos + 1);
  return u / (double(n_pos) * double(n_neg));
}

}  // namespace tessera::metrics
