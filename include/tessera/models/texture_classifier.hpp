// tessera/models/texture_classifier.hpp — TextureClassifier: a small fully convolutional CNN
// for texture classes (the benchmark's texture CNN-64):
//
//   body  [Conv2D(3×3, padding 1) BatchNorm ReLU MaxPool2D(2)] per width (32, 64, 128)
//         GlobalAvgPool2D → (N, 128): features(x)
//   head  Dense(128 → K): forward(x), the logits
//
// Global pooling makes it indifferent to the input size: train on random crops, classify
// whole images or, with predict_image, average the class probabilities of a grid of crops.
// The trained model travels as a checkpoint with one component, "classifier" (save/load below),
// which other programs (the GAN examples' --classifier) rebuild and load.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../data/loader.hpp"
#include "../io/checkpoint.hpp"
#include "../metrics/classification.hpp"
#include "../nn/activations.hpp"
#include "../nn/batchnorm.hpp"
#include "../nn/conv2d.hpp"
#include "../nn/dense.hpp"
#include "../nn/pooling.hpp"
#include "../nn/sequential.hpp"
#include "eval_mode.hpp"

namespace tessera::models {

template <class T>
class TextureClassifier : public nn::Module<T> {
 public:
  std::shared_ptr<nn::Sequential<T>> body;  // images → (N, widths.back())
  std::shared_ptr<nn::Dense<T>> head;       // features → logits

  explicit TextureClassifier(std::size_t num_classes, std::size_t channels = 3, std::vector<std::size_t> widths = {32, 64, 128})
      : num_classes_(num_classes), channels_(channels), widths_(std::move(widths)) {
    TESSERA_CHECK(num_classes >= 2 && channels > 0 && !widths_.empty(),
                  "TextureClassifier: needs at least 2 classes, channels > 0 and one block width, got "
                      << num_classes << " classes, " << channels << " channels, " << widths_.size() << " widths");
    body = this->register_module("body", std::make_shared<nn::Sequential<T>>());
    std::size_t in = channels;
    for (std::size_t width : widths_) {
      body->template add<nn::Conv2D>(in, width, 3, 1, 1);
      body->template add<nn::BatchNorm>(width);
      body->template add<nn::ReLU>();
      body->template add<nn::MaxPool2D>(2);
      in = width;
    }
    body->template add<nn::GlobalAvgPool2D>();
    head = this->register_module("head", std::make_shared<nn::Dense<T>>(in, num_classes));
  }

  std::size_t num_classes() const { return num_classes_; }
  std::size_t channels() const { return channels_; }
  const std::vector<std::size_t>& widths() const { return widths_; }
  /// The smallest input side: each block halves it.
  std::size_t min_image_size() const { return std::size_t(1) << widths_.size(); }

  /// Logits (N, K) for images (N, C, H, W).
  Var<T> forward(const Var<T>& x) override { return head->forward(features(x)); }

  /// The penultimate layer (N, widths.back()): globally pooled texture features, e.g. for a
  /// Fréchet distance between real and generated textures.
  Var<T> features(const Var<T>& x) {
    const Shape& s = x.shape();
    TESSERA_CHECK(s.size() == 4 && s[1] == channels_ && s[2] >= min_image_size() && s[3] >= min_image_size(),
                  repr() << ": expected images (N, " << channels_ << ", H, W) with H, W ≥ " << min_image_size() << ", got " << s);
    return body->forward(x);
  }

  /// Class probabilities (K) of one image (C, H, W) of any size ≥ crop: the mean softmax over
  /// crops_per_side × crops_per_side crop×crop windows spread evenly from corner to corner.
  /// Runs in eval mode.
  Tensor<T> predict_image(const Tensor<T>& image, std::size_t crop, std::size_t crops_per_side = 3) {
    TESSERA_CHECK(image.dim() == 3 && image.size(0) == channels_ && crop >= min_image_size() && crop <= image.size(1) &&
                      crop <= image.size(2) && crops_per_side > 0,
                  repr() << ": predict_image needs an image (" << channels_ << ", H, W) with H, W ≥ crop ≥ " << min_image_size()
                         << " and crops_per_side > 0, got image " << image.shape() << ", crop " << crop
                         << ", crops_per_side " << crops_per_side);
    const std::size_t C = channels_, H = image.size(1), W = image.size(2), n = crops_per_side;
    auto offset = [n, crop](std::size_t extent, std::size_t i) {  // evenly spaced, first and last at the edges
      return n == 1 ? (extent - crop) / 2 : std::size_t(std::llround(double(i) * double(extent - crop) / double(n - 1)));
    };
    Tensor<T> crops = Tensor<T>::empty({n * n, C, crop, crop});
    for (std::size_t cy = 0; cy < n; ++cy)
      for (std::size_t cx = 0; cx < n; ++cx) {
        const std::size_t top = offset(H, cy), left = offset(W, cx);
        T* out = crops.data() + (cy * n + cx) * C * crop * crop;
        for (std::size_t c = 0; c < C; ++c)
          for (std::size_t y = 0; y < crop; ++y)
            std::copy_n(image.data() + (c * H + top + y) * W + left, crop, out + (c * crop + y) * crop);
      }
    EvalMode<T> inference(*this);
    const Tensor<T> logits = forward(Var<T>(std::move(crops))).value();
    Tensor<T> probabilities = Tensor<T>::zeros({num_classes_});
    for (std::size_t r = 0; r < n * n; ++r) {
      const T* z = logits.data() + r * num_classes_;
      const T zmax = *std::max_element(z, z + num_classes_);
      double denom = 0;
      for (std::size_t k = 0; k < num_classes_; ++k) denom += std::exp(double(z[k] - zmax));
      for (std::size_t k = 0; k < num_classes_; ++k) probabilities[k] += T(std::exp(double(z[k] - zmax)) / denom / double(n * n));
    }
    return probabilities;
  }

  std::string repr() const override {
    std::ostringstream os;
    os << "TextureClassifier(classes=" << num_classes_ << ", channels=" << channels_ << ", widths=(";
    for (std::size_t i = 0; i < widths_.size(); ++i) os << (i ? ", " : "") << widths_[i];
    os << "))";
    return os.str();
  }

 private:
  std::size_t num_classes_, channels_;
  std::vector<std::size_t> widths_;
};

/// A classifier's held-out performance.
struct ClassifierEvaluation {
  double accuracy = 0;
  metrics::ConfusionMatrix confusion;
  std::vector<std::int64_t> predicted, labels;  // in the loader's order
};

/// Classifies every batch of `loader`'s epoch 0 (give it shuffle = false and no augmentation
/// for a plain pass over a validation set), in eval mode.
template <class T>
ClassifierEvaluation evaluate_classifier(TextureClassifier<T>& model, const data::DataLoader& loader) {
  ClassifierEvaluation result;
  EvalMode<T> inference(model);
  for (const data::Batch& batch : loader.epoch(0)) {
    const Tensor<T> logits = model(Var<T>(batch.images.template cast<T>())).value();
    const std::vector<std::int64_t> predicted = metrics::argmax_rows(logits);
    result.predicted.insert(result.predicted.end(), predicted.begin(), predicted.end());
    result.labels.insert(result.labels.end(), batch.labels.begin(), batch.labels.end());
  }
  result.confusion = metrics::confusion_matrix(result.predicted, result.labels, model.num_classes());
  result.accuracy = metrics::accuracy(result.predicted, result.labels);
  return result;
}

/// Saves a trained classifier alone, as the checkpoint component "classifier", with its
/// architecture (num_classes, channels, widths) and class names as metadata.
template <class T>
void save_texture_classifier(TextureClassifier<T>& model, const std::string& path,
                             const std::vector<std::string>& class_names = {}) {
  io::Checkpoint<T> ckpt;
  ckpt.add("classifier", model);
  ckpt.state.metadata["num_classes"] = std::to_string(model.num_classes());
  ckpt.state.metadata["channels"] = std::to_string(model.channels());
  std::string widths, names;
  for (std::size_t w : model.widths()) widths += (widths.empty() ? "" : ",") + std::to_string(w);
  for (const std::string& n : class_names) names += (names.empty() ? "" : "\n") + n;
  ckpt.state.metadata["widths"] = widths;
  ckpt.state.metadata["classes"] = names;  // one per line
  ckpt.save(path);
}

/// Rebuilds a classifier of the given architecture and loads `path` (written by
/// save_texture_classifier, e.g. texture_classifier's --out/classifier.tsr) into it; returned
/// in eval mode. A different architecture is an error naming the mismatched shapes.
/// (T is a template parameter, float by default, so that programs not calling this do not
/// compile a float classifier.)
template <class T = float>
std::shared_ptr<TextureClassifier<T>> load_texture_classifier(const std::string& path, std::size_t num_classes,
                                                              std::size_t channels = 3,
                                                              std::vector<std::size_t> widths = {32, 64, 128}) {
  auto model = std::make_shared<TextureClassifier<T>>(num_classes, channels, std::move(widths));
  io::Checkpoint<T> ckpt;
  ckpt.add("classifier", *model);
  ckpt.load(path);
  model->eval();
  return model;
}

}  // namespace tessera::models
