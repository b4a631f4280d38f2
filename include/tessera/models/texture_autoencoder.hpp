// tessera/models/texture_autoencoder.hpp — TextureAutoencoder: a convolutional autoencoder
// trained on defect-free textures, for anomaly detection and texture retrieval:
//
//   encoder  Conv2D(C→w, 4, 2, 1) BN LeakyReLU(0.2), Conv2D(w→2w) BN LeakyReLU,
//            Conv2D(2w→bottleneck) BN LeakyReLU                       → (N, bottleneck, H/8, W/8)
//   decoder  ConvT(bottleneck→2w, 4, 2, 1) BN LeakyReLU, ConvT(2w→w) BN LeakyReLU, ConvT(w→C) Sigmoid
//
// Trained with a reconstruction loss (mse) on normal images, it reproduces what textures look
// like and fails where something else is painted on them: anomaly_map is the per-pixel
// reconstruction error, anomaly_score an image's score. descriptor() summarises the bottleneck
// maps in one vector per image for nearest-neighbour retrieval (nearest_neighbours).
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../nn/activations.hpp"
#include "../nn/batchnorm.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/conv2d_transpose.hpp"
#include "../nn/sequential.hpp"
#include "eval_mode.hpp"

namespace tessera::models {

namespace detail {
/// out[i·stride] = the mean of in[k·stride] over |k − i| ≤ radius, 0 ≤ k < count: a 1-D box
/// filter along a row (stride 1) or a column (stride = row length), the window clipped at the ends.
template <class T>
void box_mean_1d(const T* in, T* out, std::size_t count, std::size_t stride, std::size_t radius) {
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t lo = i > radius ? i - radius : 0, hi = std::min(count, i + radius + 1);
    double sum = 0;
    for (std::size_t k = lo; k < hi; ++k) sum += in[k * stride];
    out[i * stride] = T(sum / double(hi - lo));
  }
}
}  // namespace detail

template <class T>
class TextureAutoencoder : public nn::Module<T> {
 public:
  std::shared_ptr<nn::Sequential<T>> encoder, decoder;

  /// `image_size`: the training images' side, a multiple of 8 (inputs of other sizes that are
  /// multiples of 8 work too: the model is fully convolutional). `bottleneck`: channels of the
  /// code at 1/8 resolution; `width`: channels of the first layer.
  explicit TextureAutoencoder(std::size_t channels = 3, std::size_t image_size = 64, std::size_t bottleneck = 64,
                              std::size_t width = 32)
      : channels_(channels), image_size_(image_size), bottleneck_(bottleneck) {
    TESSERA_CHECK(channels > 0 && bottleneck > 0 && width > 0 && image_size >= 8 && image_size % 8 == 0,
                  "TextureAutoencoder: needs positive channels, bottleneck and width and an image size that is a multiple of 8, got "
                      << channels << ", " << bottleneck << ", " << width << " and " << image_size);
    encoder = this->register_module("encoder", std::make_shared<nn::Sequential<T>>());
    const std::size_t down[4] = {channels, width, 2 * width, bottleneck};
    for (int i = 0; i < 3; ++i) {
      encoder->template add<nn::Conv2D>(down[i], down[i + 1], 4, 2, 1);
      encoder->template add<nn::BatchNorm>(down[i + 1]);
      encoder->template add<nn::LeakyReLU>(0.2);
    }
    decoder = this->register_module("decoder", std::make_shared<nn::Sequential<T>>());
    for (int i = 3; i > 1; --i) {
      decoder->template add<nn::Conv2DTranspose>(down[i], down[i - 1], 4, 2, 1);
      decoder->template add<nn::BatchNorm>(down[i - 1]);
      decoder->template add<nn::LeakyReLU>(0.2);
    }
    decoder->template add<nn::Conv2DTranspose>(width, channels, 4, 2, 1);
    decoder->template add<nn::Sigmoid>();
  }

  std::size_t channels() const { return channels_; }
  std::size_t image_size() const { return image_size_; }

  /// The bottleneck maps (N, bottleneck, H/8, W/8).
  Var<T> encode(const Var<T>& x) {
    const Shape& s = x.shape();
    TESSERA_CHECK(s.size() == 4 && s[0] > 0 && s[1] == channels_ && s[2] >= 8 && s[3] >= 8 && s[2] % 8 == 0 && s[3] % 8 == 0,
                  repr() << ": expected images (N, " << channels_ << ", H, W) with H and W multiples of 8, got " << s);
    return encoder->forward(x);
  }

  /// The reconstruction (N, C, H, W) in (0, 1).
  Var<T> forward(const Var<T>& x) override { return decoder->forward(encode(x)); }

  /// Where each image (N, C, H, W) is not reproduced: (N, 1, H, W), the squared error averaged
  /// over channels and then over the (2·smoothing + 1)² window around each pixel (clipped at
  /// the borders; 0: the raw per-pixel error). A defect is a patch of errors, texture detail the
  /// model misses is scattered: averaging a few pixels tells them apart. Runs in eval mode.
  Tensor<T> anomaly_map(const Tensor<T>& x, std::size_t smoothing = 3) {
    EvalMode<T> inference(*this);
    const Tensor<T> y = forward(Var<T>(x)).value();
    const std::size_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), plane = H * W;
    Tensor<T> error = Tensor<T>::zeros({N, 1, H, W});
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t c = 0; c < C; ++c)
        for (std::size_t i = 0; i < plane; ++i) {
          const T d = y[(n * C + c) * plane + i] - x[(n * C + c) * plane + i];
          error[n * plane + i] += d * d / T(C);
        }
    if (smoothing == 0) return error;
    // box filter as two 1-D passes: along each row, then along each column
    Tensor<T> rows = Tensor<T>::empty(error.shape()), map = Tensor<T>::empty(error.shape());
    for (std::size_t n = 0; n < N; ++n) {
      for (std::size_t yy = 0; yy < H; ++yy)
        detail::box_mean_1d(&error[n * plane + yy * W], &rows[n * plane + yy * W], W, 1, smoothing);
      for (std::size_t xx = 0; xx < W; ++xx)
        detail::box_mean_1d(&rows[n * plane + xx], &map[n * plane + xx], H, W, smoothing);
    }
    return map;
  }

  /// A global texture descriptor per image (N, B(B + 1)/2), B = bottleneck: the covariance of
  /// the bottleneck channels over positions (the upper triangle of a centred Gram matrix, the
  /// texture statistic of Gatys et al. 2015), scaled to unit length. Second-order statistics
  /// describe the pattern and ignore where it lies; the unit length discounts overall contrast.
  /// Runs in eval mode.
  Tensor<T> descriptor(const Tensor<T>& x) {
    EvalMode<T> inference(*this);
    const Tensor<T> code = encode(Var<T>(x)).value();
    const std::size_t N = code.size(0), B = code.size(1), P = code.size(2) * code.size(3), D = B * (B + 1) / 2;
    Tensor<T> out = Tensor<T>::empty({N, D});
    std::vector<double> centred(B * P);
    for (std::size_t n = 0; n < N; ++n) {
      for (std::size_t b = 0; b < B; ++b) {
        const T* v = code.data() + (n * B + b) * P;
        const double mean = std::accumulate(v, v + P, 0.0) / double(P);
        for (std::size_t p = 0; p < P; ++p) centred[b * P + p] = double(v[p]) - mean;
      }
      T* row = out.data() + n * D;
      double norm2 = 0;
      for (std::size_t a = 0, k = 0; a < B; ++a)
        for (std::size_t b = a; b < B; ++b, ++k) {
          const double c = std::inner_product(&centred[a * P], &centred[a * P] + P, &centred[b * P], 0.0) / double(P);
          row[k] = T(c);
          norm2 += c * c;
        }
      const double scale = norm2 > 0 ? 1 / std::sqrt(norm2) : 0;
      for (std::size_t k = 0; k < D; ++k) row[k] = T(double(row[k]) * scale);
    }
    return out;
  }

  std::string repr() const override {
    std::ostringstream os;
    os << "TextureAutoencoder(channels=" << channels_ << ", image_size=" << image_size_ << ", bottleneck=" << bottleneck_ << ')';
    return os.str();
  }

 private:
  std::size_t channels_, image_size_, bottleneck_;
};

namespace detail {
template <class T>
double top_minus_mean(const T* first, const T* last, double top_fraction) {
  std::vector<T> values(first, last);
  const double mean = std::accumulate(values.begin(), values.end(), 0.0) / double(values.size());
  const std::size_t k = std::max<std::size_t>(1, std::size_t(double(values.size()) * top_fraction));
  std::nth_element(values.begin(), values.begin() + std::ptrdiff_t(k - 1), values.end(), std::greater<T>());
  return std::accumulate(values.begin(), values.begin() + std::ptrdiff_t(k), 0.0) / double(k) - mean;
}
}  // namespace detail

/// An image's anomaly score from its map (any shape, e.g. (1, H, W)): the mean of its largest
/// `top_fraction` of values (at least one) minus the mean of the whole map. A defect raises one
/// spot; a texture the model reproduces less well (a fine weave) raises the whole map, which
/// the subtraction discounts.
template <class T>
double anomaly_score(const Tensor<T>& map, double top_fraction = 0.01) {
  TESSERA_CHECK(map.size() > 0 && top_fraction > 0 && top_fraction <= 1,
                "anomaly_score: needs a non-empty map and top_fraction in (0, 1], got " << map.shape() << " and " << top_fraction);
  return detail::top_minus_mean(map.begin(), map.end(), top_fraction);
}

/// Scores of a batch of maps (N, 1, H, W), one per image.
template <class T>
std::vector<double> anomaly_scores(const Tensor<T>& maps, double top_fraction = 0.01) {
  TESSERA_CHECK(maps.dim() == 4 && maps.size(1) == 1 && maps.size() > 0 && top_fraction > 0 && top_fraction <= 1,
                "anomaly_scores: needs maps (N, 1, H, W) and top_fraction in (0, 1], got " << maps.shape() << " and " << top_fraction);
  const std::size_t plane = maps.size(2) * maps.size(3);
  std::vector<double> scores;
  for (std::size_t n = 0; n < maps.size(0); ++n)
    scores.push_back(detail::top_minus_mean(maps.data() + n * plane, maps.data() + (n + 1) * plane, top_fraction));
  return scores;
}

/// For each query row of (Q, D), the indices of the k nearest gallery rows of (G, D) by
/// Euclidean distance, nearest first (ties: the lower index). With exclude_same_index, gallery
/// row q is skipped for query q: for a gallery searched with its own descriptors.
template <class T>
std::vector<std::vector<std::size_t>> nearest_neighbours(const Tensor<T>& queries, const Tensor<T>& gallery, std::size_t k,
                                                         bool exclude_same_index = false) {
  TESSERA_CHECK(queries.dim() == 2 && gallery.dim() == 2 && queries.size(1) == gallery.size(1),
                "nearest_neighbours: expected queries (Q, D) and gallery (G, D), got " << queries.shape() << " and "
                                                                                      << gallery.shape());
  const std::size_t Q = queries.size(0), G = gallery.size(0), D = queries.size(1);
  TESSERA_CHECK(k > 0 && k + (exclude_same_index ? 1 : 0) <= G,
                "nearest_neighbours: k = " << k << " neighbours asked from a gallery of " << G
                                           << (exclude_same_index ? " (one excluded)" : ""));
  std::vector<std::vector<std::size_t>> result(Q);
  std::vector<std::pair<double, std::size_t>> distances;
  for (std::size_t q = 0; q < Q; ++q) {
    distances.clear();
    for (std::size_t g = 0; g < G; ++g) {
      if (exclude_same_index && g == q) continue;
      double d2 = 0;
      for (std::size_t j = 0; j < D; ++j) d2 += std::pow(double(queries[q * D + j]) - double(gallery[g * D + j]), 2);
      distances.emplace_back(d2, g);
    }
    std::partial_sort(distances.begin(), distances.begin() + std::ptrdiff_t(k), distances.end());
    for (std::size_t i = 0; i < k; ++i) result[q].push_back(distances[i].second);
  }
  return result;
}

}  // namespace tessera::models
