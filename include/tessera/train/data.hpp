// tessera/train/data.hpp — the example programs' data in three calls: the dataset the flags
// name, a held-out split, and the batching they all train with.
//
//   auto data = ts::train::open_dataset(opt, samples);          // --data DIR, or procedural
//   auto split = ts::train::hold_out(*data, 0.1, opt, 2);       // checked: a batch and 2 left
//   ts::data::DataLoader loader(*data, ts::train::training_batches(opt, split.train));
//   ts::data::DataLoader test(*data, ts::train::in_order(split.val, 100));
#pragma once

#include <cmath>
#include <memory>
#include <vector>

#include "../core/error.hpp"
#include "../data/dataset.hpp"
#include "../data/image_folder.hpp"
#include "../data/loader.hpp"
#include "../data/procedural.hpp"
#include "cli.hpp"

namespace tessera::train {

/// Images of --image-size with --channels (0: the data's own; the built-in textures are RGB):
/// the image folder --data names (resized and centre-cropped), or without --data
/// `procedural_samples` built-in textures drawn from --seed.
inline std::unique_ptr<data::Dataset> open_dataset(const Options& opt, std::size_t procedural_samples) {
  if (opt.data.empty())
    return std::make_unique<data::ProceduralTextures>(procedural_samples, opt.image_size, opt.channels ? opt.channels : 3, opt.seed);
  data::ImageFolderOptions images;
  images.image_size = opt.image_size;
  images.channels = int(opt.channels);
  return std::make_unique<data::ImageFolder>(opt.data, images);
}

/// The channels of a dataset's images (its first image's).
inline std::size_t channels_of(const data::Dataset& dataset) {
  TESSERA_CHECK(dataset.size() > 0, "the dataset is empty");
  return dataset.get(0).image.shape()[0];
}

/// A seeded split holding out `fraction` of the images; an Error unless at least a --batch is
/// left to train on and `min_held_out` to test on.
inline data::TrainValSplit hold_out(const data::Dataset& dataset, double fraction, const Options& opt,
                                    std::size_t min_held_out) {
  data::TrainValSplit split = data::train_val_split(dataset.size(), fraction, opt.seed);
  TESSERA_CHECK(split.val.size() >= min_held_out && split.train.size() >= opt.batch,
                "holding out " << fraction << " of " << dataset.size() << " images leaves " << split.train.size()
                               << " to train on and " << split.val.size() << " to test on (need a batch of "
                               << opt.batch << " and " << min_held_out << ")");
  return split;
}

/// Batches of --batch from `indices` (empty: every image), reshuffled each epoch by --seed; a
/// last, smaller batch is left out (BatchNorm statistics of a 3-image batch would be noise).
inline data::LoaderOptions training_batches(const Options& opt, std::vector<std::size_t> indices = {}) {
  data::LoaderOptions batches;
  batches.batch_size = opt.batch;
  batches.drop_last = true;
  batches.seed = opt.seed;
  batches.indices = std::move(indices);
  return batches;
}

/// Batches of `batch_size` from `indices` in their order, for evaluation.
inline data::LoaderOptions in_order(std::vector<std::size_t> indices, std::size_t batch_size) {
  data::LoaderOptions batches;
  batches.batch_size = batch_size;
  batches.shuffle = false;
  batches.indices = std::move(indices);
  return batches;
}

}  // namespace tessera::train
