// tessera/models/diff_augment.hpp — DiffAugment (Zhao et al. 2020, "Differentiable Augmentation
// for Data-Efficient GAN Training"): the discriminator sees every image, real and fake, randomly
// translated and with a square cut out. Both are differentiable ops, so G's gradient flows back
// through them; D can no longer win by memorising the exact training images. The paper's
// "translation,cutout" policy and ratios: shifts of up to 1/8 of the image size, zeros shifted
// in; a cutout square of half the image size, centred anywhere in the image (clipped at edges).
#pragma once

#include <algorithm>
#include <array>
#include <vector>

#include "../autograd/var.hpp"
#include "../core/rng.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/shape.hpp"

namespace tessera::models {

struct DiffAugmentOptions {
  double translation_ratio = 0.125;  // largest shift, as a fraction of the image size (0: none)
  double cutout_ratio = 0.5;         // side of the cut-out square, as a fraction (0: none)
};

/// A fresh random translation and cutout for each image of x (N, C, H, W), drawn from `rng`.
template <class T>
Var<T> diff_augment(const Var<T>& x, Rng& rng, const DiffAugmentOptions& options = {}) {
  const Shape& s = x.shape();
  TESSERA_CHECK(s.size() == 4, "diff_augment: expected images (N, C, H, W), got " << s);
  const std::size_t batch = s[0], height = s[2], width = s[3];
  Var<T> out = x;
  if (options.translation_ratio > 0) {
    // int(size·ratio + 0.5) as in the paper's code: ±4 pixels at 32×32
    const auto max_y = std::uint64_t(double(height) * options.translation_ratio + 0.5);
    const auto max_x = std::uint64_t(double(width) * options.translation_ratio + 0.5);
    std::vector<std::array<int, 2>> shifts(batch);
    for (auto& shift : shifts)
      shift = {int(rng.below(2 * max_y + 1)) - int(max_y), int(rng.below(2 * max_x + 1)) - int(max_x)};
    out = translate(out, shifts);
  }
  if (options.cutout_ratio > 0) {
    const auto side_y = long(double(height) * options.cutout_ratio + 0.5);
    const auto side_x = long(double(width) * options.cutout_ratio + 0.5);
    Tensor<T> mask = Tensor<T>::ones({batch, 1, height, width});  // broadcast over channels
    for (std::size_t n = 0; n < batch; ++n) {
      const long top = long(rng.below(height)) - side_y / 2, left = long(rng.below(width)) - side_x / 2;
      for (long h = std::max(0L, top); h < std::min(long(height), top + side_y); ++h)
        for (long w = std::max(0L, left); w < std::min(long(width), left + side_x); ++w)
          mask.at(n, std::size_t(0), std::size_t(h), std::size_t(w)) = T(0);
    }
    out = out * Var<T>(std::move(mask));
  }
  return out;
}

}  // namespace tessera::models
