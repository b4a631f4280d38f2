// tessera/data/loader.hpp — batches from a Dataset, epoch by epoch:
//
//   ts::data::DataLoader loader(folder, {/*batch_size=*/32});
//   for (std::size_t epoch = 0; epoch < 10; ++epoch)
//     for (const ts::data::Batch& batch : loader.epoch(epoch))
//       train_step(batch.images, batch.labels);
//
// Everything random is a pure function of (seed, epoch): the order of epoch k, and the
// augmentation of the example at each position of it. So epoch k is the same whether or not
// epochs 0..k-1 ran before (resuming training at epoch k repeats it exactly), and the same with
// or without the background prefetch thread.
#pragma once

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <iterator>
#include <mutex>
#include <numeric>
#include <thread>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "augment.hpp"
#include "dataset.hpp"

namespace tessera::data {

struct Batch {
  Tensor<float> images;              // (N, C, H, W)
  std::vector<std::int64_t> labels;  // N
};

struct LoaderOptions {
  std::size_t batch_size = 64;
  bool shuffle = true;                // a new order each epoch; false: the order of `indices`
  bool drop_last = false;             // leave out a last batch smaller than batch_size
  std::uint64_t seed = 0;             // with the epoch, decides the order and the augmentations
  Augment augment = {};               // applied to each example as it is loaded
  bool prefetch = false;              // load the next batch on a background thread meanwhile
  std::vector<std::size_t> indices = {};  // the dataset indices to use (empty: all of them)
};

namespace detail {

/// A 64-bit seed from several numbers, each step a splitmix64 finaliser (Steele et al. 2014),
/// so nearby inputs give unrelated seeds.
inline std::uint64_t mix_seed(std::initializer_list<std::uint64_t> parts) {
  std::uint64_t h = 0x6A09E667F3BCC909ULL;
  for (std::uint64_t part : parts) {
    h ^= part + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ULL;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBULL;
    h ^= h >> 31;
  }
  return h;
}

// Streams of randomness, kept apart so that e.g. turning augmentation on leaves the order alone.
constexpr std::uint64_t shuffle_stream = 1, augment_stream = 2, split_stream = 3;

/// Fisher–Yates shuffle (Knuth's Algorithm P): every permutation equally likely.
inline void shuffle(std::vector<std::size_t>& v, Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[std::size_t(rng.below(i))]);
}

}  // namespace detail

/// Indices 0..n-1 split at random into a training and a validation part (round(n·val_fraction)
/// of them), each sorted; the same seed gives the same split. Use them as LoaderOptions::indices.
struct TrainValSplit {
  std::vector<std::size_t> train, val;
};

inline TrainValSplit train_val_split(std::size_t n, double val_fraction, std::uint64_t seed = 0) {
  TESSERA_CHECK(val_fraction >= 0 && val_fraction <= 1, "train_val_split: val_fraction must be in [0, 1], got " << val_fraction);
  std::vector<std::size_t> all(n);
  std::iota(all.begin(), all.end(), std::size_t(0));
  Rng rng(detail::mix_seed({seed, detail::split_stream}));
  detail::shuffle(all, rng);
  const auto val_count = std::size_t(std::llround(double(n) * val_fraction));
  TrainValSplit split{{all.begin() + std::ptrdiff_t(val_count), all.end()}, {all.begin(), all.begin() + std::ptrdiff_t(val_count)}};
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.val.begin(), split.val.end());
  return split;
}

class DataLoader {
 public:
  class Epoch;

  /// Keeps a reference to `dataset`, which must outlive the loader. Loads one example to learn
  /// the image shape every batch must have.
  explicit DataLoader(const Dataset& dataset, LoaderOptions options = {}) : dataset_(dataset), options_(std::move(options)) {
    TESSERA_CHECK(options_.batch_size > 0, "DataLoader: batch_size must be positive");
    if (options_.indices.empty()) {
      options_.indices.resize(dataset.size());
      std::iota(options_.indices.begin(), options_.indices.end(), std::size_t(0));
    }
    for (std::size_t i : options_.indices)
      TESSERA_CHECK(i < dataset.size(), "DataLoader: index " << i << " out of range for a dataset of " << dataset.size());
    TESSERA_CHECK(!options_.indices.empty(), "DataLoader: the dataset is empty");
    first_index_ = options_.indices.front();
    const Tensor<float> first = dataset.get(first_index_).image;
    TESSERA_CHECK(first.dim() == 3, "DataLoader: example " << first_index_ << " has shape " << first.shape()
                                                           << ", expected an image (C, H, W)");
    const std::size_t crop = options_.augment.crop;
    image_shape_ = crop ? Shape{first.size(0), crop, crop} : first.shape();
  }
  DataLoader(const Dataset&&, LoaderOptions = {}) = delete;  // a temporary dataset would dangle

  std::size_t size() const { return options_.indices.size(); }  ///< examples per epoch
  std::size_t batches_per_epoch() const {
    const std::size_t n = size(), b = options_.batch_size;
    return options_.drop_last ? n / b : (n + b - 1) / b;
  }
  const LoaderOptions& options() const { return options_; }
  /// The (C, H, W) every example must have (after augmentation).
  const Shape& image_shape() const { return image_shape_; }

  /// The dataset indices of epoch `epoch`, in the order they are served.
  std::vector<std::size_t> order(std::size_t epoch) const {
    std::vector<std::size_t> order = options_.indices;
    if (options_.shuffle) {
      Rng rng(detail::mix_seed({options_.seed, epoch, detail::shuffle_stream}));
      detail::shuffle(order, rng);
    }
    return order;
  }

  /// The batches of one epoch, to iterate over once: for (const Batch& b : loader.epoch(e)).
  /// From batch `first` on when resuming mid-epoch (the same batches the whole epoch ends with).
  /// Not on a temporary loader: the range-for would outlive it.
  Epoch epoch(std::size_t epoch, std::size_t first = 0) const&;
  Epoch epoch(std::size_t epoch, std::size_t first = 0) const&& = delete;

  /// Batch b of epoch `epoch` alone (e.g. to resume mid-epoch); what iterating would give.
  Batch batch(std::size_t epoch, std::size_t b) const { return make_batch(order(epoch), epoch, b); }

 private:
  // `parallel`: load the examples on OpenMP threads. Not on the prefetch thread, whose
  // threads would compete with the training step's for the cores.
  Batch make_batch(const std::vector<std::size_t>& order, std::size_t epoch, std::size_t b, bool parallel = true) const {
    TESSERA_CHECK(b < batches_per_epoch(), "DataLoader: batch " << b << " out of range for " << batches_per_epoch() << " per epoch");
    const std::size_t first = b * options_.batch_size, count = std::min(options_.batch_size, order.size() - first);
    std::vector<Example> examples(count);
    std::vector<std::exception_ptr> errors(count);
    // Each example's augmentation draws from its own generator, seeded by its position in the
    // epoch, so the result does not depend on which thread loads it.
    auto load = [&](std::size_t k) {
      try {
        examples[k] = dataset_.get(order[first + k]);
        if (options_.augment.enabled()) {
          Rng rng(detail::mix_seed({options_.seed, epoch, first + k, detail::augment_stream}));
          examples[k].image = apply(options_.augment, examples[k].image, rng);
        }
      } catch (...) {  // exceptions must not leave an OpenMP thread
        errors[k] = std::current_exception();
      }
    };
    if (parallel)
      parallel_for(0, count, 1, load);
    else
      for (std::size_t k = 0; k < count; ++k) load(k);
    for (const auto& error : errors)
      if (error) std::rethrow_exception(error);
    Batch batch{Tensor<float>::empty({count, image_shape_[0], image_shape_[1], image_shape_[2]}), {}};
    const std::size_t numel = image_shape_.numel();
    for (std::size_t k = 0; k < count; ++k) {
      const Tensor<float>& image = examples[k].image;
      TESSERA_CHECK(image.shape() == image_shape_,
                    "DataLoader: example " << order[first + k] << " has shape " << image.shape() << " but example "
                                           << first_index_ << " has " << image_shape_
                                           << "; a batch needs images of one size (ImageFolder's image_size, or an Augment crop)");
      std::memcpy(batch.images.data() + k * numel, image.data(), numel * sizeof(float));
      batch.labels.push_back(examples[k].label);
    }
    return batch;
  }

  const Dataset& dataset_;
  LoaderOptions options_;
  std::size_t first_index_ = 0;
  Shape image_shape_;
};

/// One pass over the data, iterated once (an input range). With prefetch, a background thread
/// loads batch b+1 while batch b is in use; it stops (and is joined) when the Epoch ends, even
/// if the loop breaks early. An error while loading is thrown where that batch is reached.
class DataLoader::Epoch {
 public:
  Epoch(const DataLoader& loader, std::size_t epoch, std::size_t first = 0)
      : loader_(loader), epoch_(epoch), order_(loader.order(epoch)), count_(loader.batches_per_epoch()), position_(first) {
    TESSERA_CHECK(first <= count_, "DataLoader: first batch " << first << " out of range for " << count_ << " per epoch");
  }
  Epoch(const Epoch&) = delete;
  Epoch& operator=(const Epoch&) = delete;
  ~Epoch() { stop_worker(); }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    explicit iterator(Epoch* epoch = nullptr) : epoch_(epoch) {}
    const Batch& operator*() const { return epoch_->current_; }
    const Batch* operator->() const { return &epoch_->current_; }
    iterator& operator++() {
      epoch_->advance();
      return *this;
    }
    // All that matters for a range-for: whether the end has been reached.
    friend bool operator==(const iterator& a, const iterator& b) { return a.done() == b.done(); }
    friend bool operator!=(const iterator& a, const iterator& b) { return !(a == b); }

   private:
    bool done() const { return !epoch_ || epoch_->position_ >= epoch_->count_; }
    Epoch* epoch_;
  };

  /// Starts the pass and loads the first batch; an Epoch can be iterated only once.
  iterator begin() {
    TESSERA_CHECK(!started_, "DataLoader::Epoch: already iterated; call loader.epoch(e) again for another pass");
    started_ = true;
    if (position_ < count_) {
      if (loader_.options_.prefetch) worker_ = std::thread([this, first = position_] { produce(first); });
      current_ = next_batch();
    }
    return iterator(this);
  }
  iterator end() { return iterator(); }

  std::size_t size() const { return count_; }     ///< batches in this epoch
  std::size_t index() const { return position_; }  ///< the current batch's index
  std::size_t number() const { return epoch_; }    ///< which epoch this is

 private:
  void advance() {
    if (++position_ < count_) current_ = next_batch();
  }

  Batch next_batch() { return worker_.joinable() ? take() : loader_.make_batch(order_, epoch_, position_); }

  // --- prefetch: one worker thread, a one-batch slot --------------------------------------
  // The worker waits for the slot to be empty before loading, so it is at most one batch
  // ahead of the loop.
  void produce(std::size_t first) {
    for (std::size_t b = first; b < count_; ++b) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || !full_; });
        if (stopping_) return;
      }
      Batch batch;
      std::exception_ptr error;
      try {
        batch = loader_.make_batch(order_, epoch_, b, /*parallel=*/false);
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        slot_ = std::move(batch);
        slot_error_ = error;
        full_ = true;
      }
      changed_.notify_all();  // after an error, carry on: the loop may catch it and go on
    }
  }

  Batch take() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return full_; });
    Batch batch = std::move(slot_);
    const std::exception_ptr error = slot_error_;
    full_ = false;
    lock.unlock();
    changed_.notify_all();
    if (error) std::rethrow_exception(error);
    return batch;
  }

  void stop_worker() {
    if (!worker_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    worker_.join();
  }

  const DataLoader& loader_;
  const std::size_t epoch_;
  const std::vector<std::size_t> order_;
  const std::size_t count_;
  std::size_t position_ = 0;
  bool started_ = false;
  Batch current_;

  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool full_ = false, stopping_ = false;
  Batch slot_;
  std::exception_ptr slot_error_;
};

inline DataLoader::Epoch DataLoader::epoch(std::size_t epoch, std::size_t first) const& { return Epoch(*this, epoch, first); }

}  // namespace tessera::data
