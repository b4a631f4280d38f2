// tessera/optim/weight_average.hpp — WeightAverage<T>: an exponential moving average of a
// module's parameters and buffers (Polyak averaging; the averaged generator of Karras et al.
// 2018, Yazıcı et al. 2019). A GAN's weights circle around a good point rather than settling
// on it; samples from the average are steadier and closer to the data than the last step's.
//
//   optim::WeightAverage<float> average(G, 0.999);
//   ... after each optimizer step: average.update();
//   { auto averaged = average.swap_in();  samples = G(z); }   // G's own weights come back
//
// update t (from 0) uses the decay min(decay, (1 + t) / (10 + t)), as TensorFlow's
// ExponentialMovingAverage with num_updates: early averages are not pinned to the initial weights.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../nn/module.hpp"

namespace tessera::optim {

template <class T>
class WeightAverage {
 public:
  /// Starts from `module`'s current weights, which must outlive the average.
  WeightAverage(nn::Module<T>& module, double decay) : decay_(decay) {
    TESSERA_CHECK(decay >= 0 && decay < 1, "WeightAverage: decay must be in [0, 1), got " << decay);
    for (auto& [name, p] : module.named_parameters()) add(name, p.value());
    for (auto& [name, b] : module.named_buffers()) add(name, b);
  }
  WeightAverage(const WeightAverage&) = delete;
  WeightAverage& operator=(const WeightAverage&) = delete;

  /// average ← d·average + (1 − d)·current, with d the warmed-up decay.
  void update() {
    const T d = T(std::min(decay_, (1.0 + double(updates_)) / (10.0 + double(updates_))));
    for (std::size_t i = 0; i < live_.size(); ++i) {
      T* average = averages_[i].data();
      const T* current = live_[i]->data();
      for (std::size_t j = 0; j < averages_[i].size(); ++j) average[j] = d * average[j] + (T(1) - d) * current[j];
    }
    ++updates_;
  }

  /// While alive, the module holds the averaged weights; its own come back at scope exit
  /// (swapped, not copied: no allocation, and nothing is lost if an error is thrown meanwhile).
  class Swapped {
   public:
    explicit Swapped(WeightAverage& average) : average_(&average) { average_->swap(); }
    ~Swapped() {
      if (average_) average_->swap();
    }
    Swapped(Swapped&& other) noexcept : average_(std::exchange(other.average_, nullptr)) {}
    Swapped(const Swapped&) = delete;
    Swapped& operator=(const Swapped&) = delete;
    Swapped& operator=(Swapped&&) = delete;

   private:
    WeightAverage* average_;
  };
  [[nodiscard]] Swapped swap_in() { return Swapped(*this); }

  double decay() const { return decay_; }
  std::uint64_t& updates() { return updates_; }  // for checkpoints
  /// The averages under the module's state-dict names, for checkpoints.
  std::vector<std::pair<std::string, Tensor<T>*>> named_state() {
    std::vector<std::pair<std::string, Tensor<T>*>> out;
    for (std::size_t i = 0; i < names_.size(); ++i) out.emplace_back(names_[i], &averages_[i]);
    return out;
  }

 private:
  void add(const std::string& name, Tensor<T>& live) {
    names_.push_back(name);
    live_.push_back(&live);
    averages_.push_back(live);
  }
  void swap() {
    for (std::size_t i = 0; i < live_.size(); ++i) std::swap(*live_[i], averages_[i]);
  }

  double decay_;
  std::uint64_t updates_ = 0;
  std::vector<std::string> names_;
  std::vector<Tensor<T>*> live_;
  std::vector<Tensor<T>> averages_;
};

}  // namespace tessera::optim
