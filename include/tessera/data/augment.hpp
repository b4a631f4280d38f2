// tessera/data/augment.hpp — random training augmentation: which transforms to draw, and
// apply(), which draws them from a given generator (same generator state, same result).
#pragma once

#include <algorithm>
#include <cstddef>

#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "transforms.hpp"

namespace tessera::data {

/// Random augmentations, applied in this order by apply(); the defaults change nothing.
struct Augment {
  std::size_t crop = 0;     // random crop×crop window (0 = off)
  bool hflip = false;       // mirror left ↔ right with probability ½
  bool vflip = false;       // mirror top ↔ bottom with probability ½
  bool rot90 = false;       // 0–3 quarter turns, each equally likely (0 or 2 on non-square images,
                            // so every image keeps its shape)
  float brightness = 0;     // add a uniform delta in [−brightness, brightness]
  float contrast = 0;       // scale around the mean by a factor in [max(0, 1 − contrast), 1 + contrast]

  bool enabled() const { return crop || hflip || vflip || rot90 || brightness > 0 || contrast > 0; }
};

/// A randomly augmented copy of `img` (C, H, W). The draws come only from `rng`, so the same
/// generator state gives the same image; values stay in [0, 1] when they start there.
inline Tensor<float> apply(const Augment& augment, const Tensor<float>& img, Rng& rng) {
  detail::check_image(img, "Augment");
  TESSERA_CHECK(augment.brightness >= 0 && augment.contrast >= 0,
                "Augment: brightness and contrast must be non-negative, got " << augment.brightness << " and "
                                                                              << augment.contrast);
  Tensor<float> out = augment.crop ? random_crop(img, augment.crop, augment.crop, rng) : img;
  if (augment.hflip && rng.bernoulli(0.5)) out = data::hflip(out);
  if (augment.vflip && rng.bernoulli(0.5)) out = data::vflip(out);
  if (augment.rot90) {
    const bool square = out.size(1) == out.size(2);
    const int turns = square ? int(rng.below(4)) : 2 * int(rng.below(2));
    out = data::rot90(out, turns);
  }
  if (augment.brightness > 0)
    out = adjust_brightness(out, float(rng.uniform(-augment.brightness, augment.brightness)));
  if (augment.contrast > 0)
    out = adjust_contrast(out, float(rng.uniform(std::max(0.0, 1.0 - augment.contrast), 1.0 + augment.contrast)));
  return out;
}

}  // namespace tessera::data
