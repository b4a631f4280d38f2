// tessera/data/transforms.hpp — image transforms on (C, H, W) tensors: resizing, crops, flips,
// quarter turns, brightness and contrast. Each returns a new tensor and leaves its input alone.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"

namespace tessera::data {

namespace detail {

inline void check_image(const Tensor<float>& img, const char* op) {
  TESSERA_CHECK(img.dim() == 3 && img.size() > 0, op << ": expected a non-empty image (C, H, W), got " << img.shape());
}

/// One source pixel and its weight in an output pixel.
struct Tap {
  std::size_t source;
  double weight;
};

/// For each of `out` output positions along one axis, the `in` source positions it blends.
/// Enlarging: bilinear with half-pixel centres, source = (o + ½)·in/out − ½ clamped at 0
/// (PyTorch's interpolate(mode="bilinear", align_corners=False)). Shrinking: area averaging,
/// each output the mean of the source span [o·in/out, (o+1)·in/out) with partly covered
/// pixels weighted by their covered fraction (OpenCV's INTER_AREA, PIL's BOX filter).
inline std::vector<std::vector<Tap>> resize_taps(std::size_t in, std::size_t out) {
  std::vector<std::vector<Tap>> taps(out);
  const double scale = double(in) / double(out);
  for (std::size_t o = 0; o < out; ++o) {
    if (out == in) {
      taps[o] = {{o, 1.0}};
    } else if (out > in) {
      const double source = std::max(0.0, (double(o) + 0.5) * scale - 0.5);
      const std::size_t left = std::min(std::size_t(source), in - 1), right = std::min(left + 1, in - 1);
      const double t = source - double(left);
      taps[o] = {{left, 1.0 - t}, {right, t}};
    } else {
      // span ends computed as o·in/out so the last one is exactly `in`
      const double lo = double(o * in) / double(out), hi = double((o + 1) * in) / double(out);
      for (std::size_t j = std::size_t(lo); j < in && double(j) < hi; ++j) {
        const double covered = std::min(hi, double(j + 1)) - std::max(lo, double(j));
        if (covered > 0) taps[o].push_back({j, covered / scale});
      }
    }
  }
  return taps;
}

}  // namespace detail

/// Resizes (C, H, W) to (C, out_h, out_w), one axis after the other: bilinear along an axis
/// that grows, area averaging along one that shrinks (see detail::resize_taps). A constant
/// image stays constant; values stay within the input's range.
inline Tensor<float> resize(const Tensor<float>& img, std::size_t out_h, std::size_t out_w) {
  detail::check_image(img, "resize");
  TESSERA_CHECK(out_h > 0 && out_w > 0, "resize: output size " << out_h << "x" << out_w << " must be positive");
  const std::size_t C = img.size(0), H = img.size(1), W = img.size(2);
  const auto rows = detail::resize_taps(H, out_h), cols = detail::resize_taps(W, out_w);
  std::vector<double> wide(C * H * out_w);  // after the horizontal pass: (C, H, out_w)
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t y = 0; y < H; ++y)
      for (std::size_t x = 0; x < out_w; ++x) {
        double sum = 0;
        for (const auto& tap : cols[x]) sum += tap.weight * img[(c * H + y) * W + tap.source];
        wide[(c * H + y) * out_w + x] = sum;
      }
  Tensor<float> out = Tensor<float>::empty({C, out_h, out_w});
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t y = 0; y < out_h; ++y)
      for (std::size_t x = 0; x < out_w; ++x) {
        double sum = 0;
        for (const auto& tap : rows[y]) sum += tap.weight * wide[(c * H + tap.source) * out_w + x];
        out[(c * out_h + y) * out_w + x] = float(sum);
      }
  return out;
}

/// Resizes so that the shorter side becomes `size`, keeping the aspect ratio; the longer side
/// becomes floor(longer · size / shorter), as torchvision's Resize(size).
inline Tensor<float> resize_shorter_side(const Tensor<float>& img, std::size_t size) {
  detail::check_image(img, "resize_shorter_side");
  TESSERA_CHECK(size > 0, "resize_shorter_side: size must be positive");
  const std::size_t H = img.size(1), W = img.size(2);
  if (H <= W) return resize(img, size, std::max(size, W * size / H));
  return resize(img, std::max(size, H * size / W), size);
}

/// The h×w window whose top-left pixel is (top, left).
inline Tensor<float> crop(const Tensor<float>& img, std::size_t top, std::size_t left, std::size_t h, std::size_t w) {
  detail::check_image(img, "crop");
  const std::size_t C = img.size(0), H = img.size(1), W = img.size(2);
  TESSERA_CHECK(h > 0 && w > 0 && top + h <= H && left + w <= W,
                "crop: window " << h << "x" << w << " at (" << top << ", " << left << ") does not fit in image " << img.shape());
  Tensor<float> out = Tensor<float>::empty({C, h, w});
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t y = 0; y < h; ++y)
      std::copy_n(img.data() + (c * H + top + y) * W + left, w, out.data() + (c * h + y) * w);
  return out;
}

/// The central h×w window; when a margin is odd, the extra pixel is left at the bottom/right.
inline Tensor<float> center_crop(const Tensor<float>& img, std::size_t h, std::size_t w) {
  detail::check_image(img, "center_crop");
  TESSERA_CHECK(h > 0 && w > 0 && h <= img.size(1) && w <= img.size(2),
                "center_crop: crop " << h << "x" << w << " larger than image " << img.shape());
  return crop(img, (img.size(1) - h) / 2, (img.size(2) - w) / 2, h, w);
}

/// An h×w window at a uniformly random position (every position equally likely).
inline Tensor<float> random_crop(const Tensor<float>& img, std::size_t h, std::size_t w, Rng& rng) {
  detail::check_image(img, "random_crop");
  TESSERA_CHECK(h > 0 && w > 0 && h <= img.size(1) && w <= img.size(2),
                "random_crop: crop " << h << "x" << w << " larger than image " << img.shape());
  const std::size_t top = std::size_t(rng.below(img.size(1) - h + 1));
  const std::size_t left = std::size_t(rng.below(img.size(2) - w + 1));
  return crop(img, top, left, h, w);
}

/// Mirrors left ↔ right.
inline Tensor<float> hflip(const Tensor<float>& img) {
  detail::check_image(img, "hflip");
  const std::size_t rows = img.size(0) * img.size(1), W = img.size(2);
  Tensor<float> out = Tensor<float>::empty(img.shape());
  for (std::size_t r = 0; r < rows; ++r) std::reverse_copy(img.data() + r * W, img.data() + (r + 1) * W, out.data() + r * W);
  return out;
}

/// Mirrors top ↔ bottom.
inline Tensor<float> vflip(const Tensor<float>& img) {
  detail::check_image(img, "vflip");
  const std::size_t C = img.size(0), H = img.size(1), W = img.size(2);
  Tensor<float> out = Tensor<float>::empty(img.shape());
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t y = 0; y < H; ++y) std::copy_n(img.data() + (c * H + y) * W, W, out.data() + (c * H + H - 1 - y) * W);
  return out;
}

/// Turns the image k quarter turns counter-clockwise (negative k: clockwise), as
/// numpy.rot90 / torch.rot90 over the (H, W) axes. Odd k swaps height and width.
inline Tensor<float> rot90(const Tensor<float>& img, int k = 1) {
  detail::check_image(img, "rot90");
  const int turns = ((k % 4) + 4) % 4;
  if (turns == 0) return img;
  if (turns == 2) return hflip(vflip(img));
  const std::size_t C = img.size(0), H = img.size(1), W = img.size(2);
  Tensor<float> out = Tensor<float>::empty({C, W, H});
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t y = 0; y < W; ++y)  // output row y, column x
      for (std::size_t x = 0; x < H; ++x) {
        // one CCW turn: out[y][x] = in[x][W−1−y]; three turns: out[y][x] = in[H−1−x][y]
        const std::size_t src = turns == 1 ? x * W + (W - 1 - y) : (H - 1 - x) * W + y;
        out[(c * W + y) * H + x] = img[c * H * W + src];
      }
  return out;
}

/// Adds `delta` to every value, clamped to [0, 1].
inline Tensor<float> adjust_brightness(const Tensor<float>& img, float delta) {
  detail::check_image(img, "adjust_brightness");
  Tensor<float> out = Tensor<float>::empty(img.shape());
  for (std::size_t i = 0; i < img.size(); ++i) out[i] = std::clamp(img[i] + delta, 0.0f, 1.0f);
  return out;
}

/// Scales the distance from the image's mean (over all channels and pixels) by `factor`,
/// clamped to [0, 1]: mean + factor·(x − mean). Factor 0 gives a flat gray image, 1 the
/// input. (torchvision blends with the mean of the luma instead; for gray images they agree.)
inline Tensor<float> adjust_contrast(const Tensor<float>& img, float factor) {
  detail::check_image(img, "adjust_contrast");
  TESSERA_CHECK(factor >= 0, "adjust_contrast: factor must be non-negative, got " << factor);
  double sum = 0;
  for (float v : img) sum += v;
  const double mean = sum / double(img.size());
  Tensor<float> out = Tensor<float>::empty(img.shape());
  for (std::size_t i = 0; i < img.size(); ++i)
    out[i] = float(std::clamp(mean + double(factor) * (double(img[i]) - mean), 0.0, 1.0));
  return out;
}

}  // namespace tessera::data
