// tessera/train/gan_judge.hpp — a trained texture classifier judging a GAN's samples each epoch,
// as dcgan --classifier and cgan --classifier report them (metrics.csv columns):
//   classifier_fid   the Fréchet distance between its features of real and generated images
//                    (FID's formula with a texture CNN in place of Inception)
//   precision, recall  how much of what G draws lies on the real images' feature manifold, and
//                    how much of that manifold G covers (Kynkäänniemi et al. 2019, k = 3)
//   class_accuracy   (conditional) the share of samples classified as the class asked for
//   diversity        (conditional) the intra-class diversity ratio: how far apart a class's
//                    samples are, over how far apart its real images are
// on `images` real images (the dataset's first, in order) and as many samples, asked for the
// classes in turn, from the same noise every epoch.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "../data/dataset.hpp"
#include "../data/loader.hpp"
#include "../metrics/classification.hpp"
#include "../metrics/diversity.hpp"
#include "../metrics/frechet.hpp"
#include "../metrics/precision_recall.hpp"
#include "../models/eval_mode.hpp"
#include "../models/gan_trainer.hpp"
#include "../models/texture_classifier.hpp"
#include "../ops/shape.hpp"
#include "metrics_log.hpp"

namespace tessera::train {

class GanJudge {
 public:
  static constexpr std::size_t chunk = 256;  // images per classifier pass

  /// The classifier and the real images' features. `conditional`: judge class by class too.
  GanJudge(std::shared_ptr<models::TextureClassifier<float>> classifier, const data::Dataset& data, bool conditional,
           std::size_t images = 2048)
      : net_(std::move(classifier)), conditional_(conditional), images_(images), classes_(data.classes().size()) {
    TESSERA_CHECK(images >= chunk && images % chunk == 0, "GanJudge: images must be a multiple of " << chunk << ", got " << images);
    data::LoaderOptions in_order;
    in_order.batch_size = chunk;
    in_order.shuffle = false;
    data::DataLoader first(data, in_order);  // the first `images` images, again from the start if fewer
    real_ = features([&](std::size_t k, std::vector<std::int64_t>& labels) {
      const data::Batch batch = first.batch(0, k % first.batches_per_epoch());
      labels.insert(labels.end(), batch.labels.begin(), batch.labels.end());
      return batch.images;
    }, real_labels_);
    real_stats_ = metrics::feature_stats(real_);
  }

  /// The numbers above for `trainer`'s samples, from noise drawn from `seed` (the same each call).
  MetricsLog::Values judge(models::GanTrainer<float>& trainer, std::uint64_t seed) {
    Rng z(seed);
    std::vector<std::int64_t> asked;
    const Tensor<float> generated = features([&](std::size_t, std::vector<std::int64_t>& labels) {
      std::vector<std::int64_t> batch_labels;
      for (std::size_t i = 0; conditional_ && i < chunk; ++i) batch_labels.push_back(std::int64_t((labels.size() + i) % classes_));
      labels.insert(labels.end(), batch_labels.begin(), batch_labels.end());
      Tensor<float> images = trainer.sample(chunk, batch_labels, z);
      for (float& v : images) v = 0.5f * (v + 1);  // tanh range → the [0, 1] the classifier saw
      return images;
    }, asked);
    const auto pr = metrics::precision_recall(real_, generated);
    MetricsLog::Values row{{"classifier_fid", metrics::frechet_distance(real_stats_, metrics::feature_stats(generated))},
               {"precision", pr.precision}, {"recall", pr.recall}};
    if (conditional_) {
      row.emplace_back("class_accuracy", metrics::accuracy(predicted_, asked));
      row.emplace_back("diversity", metrics::intra_class_diversity(real_, real_labels_, generated, asked));
    }
    return row;
  }

 private:
  /// The classifier's features of `images_` images, `chunk` at a time from next(k, labels), and
  /// (conditional) its predicted classes into predicted_.
  template <class Next>
  Tensor<float> features(Next&& next, std::vector<std::int64_t>& labels) {
    models::EvalMode<float> inference(*net_);
    std::vector<Var<float>> parts;
    predicted_.clear();
    for (std::size_t k = 0; k < images_ / chunk; ++k) {
      const Var<float> f = net_->features(Var<float>(next(k, labels)));
      if (conditional_) {
        const auto classes = metrics::argmax_rows(net_->head->forward(f).value());
        predicted_.insert(predicted_.end(), classes.begin(), classes.end());
      }
      parts.push_back(f);
    }
    return concat(parts, 0).value();
  }

  std::shared_ptr<models::TextureClassifier<float>> net_;
  bool conditional_;
  std::size_t images_, classes_;
  Tensor<float> real_;
  std::vector<std::int64_t> real_labels_, predicted_;
  metrics::FeatureStats real_stats_;
};

}  // namespace tessera::train
