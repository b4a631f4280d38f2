// tessera/data/defects.hpp — synthetic surface defects for evaluating anomaly detection:
// inject_defect paints a scratch (a thin curved line) or a blob (an irregular ellipse) in a
// colour that contrasts with the image, and returns the painted image with the defect's mask.
//
//   Rng rng(7);
//   const data::DefectImage d = data::inject_defect(texture, rng);   // d.image, d.mask (1, H, W)
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"

namespace tessera::data {

enum class DefectKind { scratch, blob, any };

struct DefectImage {
  Tensor<float> image;  // (C, H, W) in [0, 1], the input with the defect painted in
  Tensor<float> mask;   // (1, H, W): 1 where the defect covers at least half a pixel, else 0
  DefectKind kind = DefectKind::scratch;
};

namespace detail {

/// A colour (C values) far from most of the image's pixels: of 16 random colours, the one
/// whose 10th-percentile distance to the pixels is largest, so it stands out from the
/// texture's own colours rather than from their average.
inline std::vector<float> contrasting_color(const Tensor<float>& image, Rng& rng) {
  const std::size_t C = image.size(0), plane = image.size(1) * image.size(2);
  const std::size_t stride = std::max<std::size_t>(1, plane / 256);  // a few hundred pixels suffice
  std::vector<float> best(C), candidate(C);
  double best_score = -1;
  std::vector<double> distances;
  for (int attempt = 0; attempt < 16; ++attempt) {
    for (auto& v : candidate) v = float(rng.uniform());
    distances.clear();
    for (std::size_t i = 0; i < plane; i += stride) {
      double d2 = 0;
      for (std::size_t c = 0; c < C; ++c) d2 += std::pow(double(candidate[c]) - image[c * plane + i], 2);
      distances.push_back(d2);
    }
    const auto tenth = distances.begin() + std::ptrdiff_t(distances.size() / 10);
    std::nth_element(distances.begin(), tenth, distances.end());
    if (*tenth > best_score) best_score = *tenth, best = candidate;
  }
  return best;
}

/// Coverage in [0, 1] of each pixel (H·W) by a quadratic Bézier curve of the given width.
inline std::vector<float> scratch_coverage(std::size_t H, std::size_t W, Rng& rng) {
  const double side = double(std::min(H, W)), pi = 3.14159265358979323846;
  const double length = rng.uniform(0.3, 0.8) * side, angle = rng.uniform(0, 2 * pi);
  const double cx = rng.uniform(0.25, 0.75) * double(W), cy = rng.uniform(0.25, 0.75) * double(H);
  const double dx = std::cos(angle) * length / 2, dy = std::sin(angle) * length / 2;
  const double bend = rng.uniform(-0.25, 0.25) * length;  // control point off the chord
  const std::array<double, 2> p0{cx - dx, cy - dy}, p2{cx + dx, cy + dy},
      p1{cx - std::sin(angle) * bend, cy + std::cos(angle) * bend};
  const double half_width = rng.uniform(0.5, 1.25);  // 1 to 2.5 pixels wide
  std::vector<std::array<double, 2>> points;  // the curve as a polyline
  const int segments = 24;
  for (int k = 0; k <= segments; ++k) {
    const double t = double(k) / segments, a = (1 - t) * (1 - t), b = 2 * (1 - t) * t, c = t * t;
    points.push_back({a * p0[0] + b * p1[0] + c * p2[0], a * p0[1] + b * p1[1] + c * p2[1]});
  }
  std::vector<float> coverage(H * W, 0.0f);
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t x = 0; x < W; ++x) {
      const double px = double(x) + 0.5, py = double(y) + 0.5;
      double d = 1e9;
      for (int k = 0; k < segments; ++k) {  // distance to each segment
        const double ux = points[k + 1][0] - points[k][0], uy = points[k + 1][1] - points[k][1];
        const double t = std::clamp(((px - points[k][0]) * ux + (py - points[k][1]) * uy) / (ux * ux + uy * uy + 1e-12), 0.0, 1.0);
        d = std::min(d, std::hypot(px - points[k][0] - t * ux, py - points[k][1] - t * uy));
      }
      coverage[y * W + x] = float(std::clamp(half_width + 0.5 - d, 0.0, 1.0));  // anti-aliased edge
    }
  return coverage;
}

/// Coverage of an ellipse whose radius wobbles with the angle (three low harmonics).
inline std::vector<float> blob_coverage(std::size_t H, std::size_t W, Rng& rng) {
  const double side = double(std::min(H, W)), pi = 3.14159265358979323846;
  const double a = std::max(2.5, rng.uniform(0.05, 0.15) * side), b = std::max(2.5, rng.uniform(0.05, 0.15) * side);
  const double cx = rng.uniform(0.2, 0.8) * double(W), cy = rng.uniform(0.2, 0.8) * double(H);
  const double rotation = rng.uniform(0, pi), cr = std::cos(rotation), sr = std::sin(rotation);
  std::array<double, 3> amplitude{}, phase{};
  for (int k = 0; k < 3; ++k) amplitude[k] = rng.uniform(0, 0.15), phase[k] = rng.uniform(0, 2 * pi);
  const double scale = std::sqrt(a * b);  // pixels per unit of the normalised radius, roughly
  std::vector<float> coverage(H * W, 0.0f);
  for (std::size_t y = 0; y < H; ++y)
    for (std::size_t x = 0; x < W; ++x) {
      const double dx = double(x) + 0.5 - cx, dy = double(y) + 0.5 - cy;
      const double u = (dx * cr + dy * sr) / a, v = (-dx * sr + dy * cr) / b;
      const double theta = std::atan2(v, u);
      double radius = 1;
      for (int k = 0; k < 3; ++k) radius += amplitude[k] * std::sin(double(k + 2) * theta + phase[k]);
      coverage[y * W + x] = float(std::clamp(0.5 + (radius - std::hypot(u, v)) * scale, 0.0, 1.0));
    }
  return coverage;
}

}  // namespace detail

/// A copy of `image` (C, H, W) in [0, 1], H, W ≥ 8, with one defect painted in: a scratch (a
/// curved line 1–2.5 px wide, 30–80 % of the image's side long) or a blob (an irregular ellipse
/// with radii 5–15 % of the side), in a colour contrasting with the image (see
/// detail::contrasting_color), at 70–100 % opacity with slight noise. kind `any` picks either
/// with probability ½. All draws come from `rng`.
inline DefectImage inject_defect(const Tensor<float>& image, Rng& rng, DefectKind kind = DefectKind::any) {
  TESSERA_CHECK(image.dim() == 3 && image.size(1) >= 8 && image.size(2) >= 8,
                "inject_defect: expected an image (C, H, W) with H, W ≥ 8, got " << image.shape());
  const std::size_t C = image.size(0), H = image.size(1), W = image.size(2), plane = H * W;
  if (kind == DefectKind::any) kind = rng.bernoulli(0.5) ? DefectKind::scratch : DefectKind::blob;
  const std::vector<float> color = detail::contrasting_color(image, rng);
  const double opacity = rng.uniform(0.7, 1.0);
  const std::vector<float> coverage =
      kind == DefectKind::scratch ? detail::scratch_coverage(H, W, rng) : detail::blob_coverage(H, W, rng);
  DefectImage out{image, Tensor<float>::zeros({1, H, W}), kind};
  for (std::size_t i = 0; i < plane; ++i) {
    if (coverage[i] <= 0) continue;
    const double alpha = opacity * coverage[i];
    for (std::size_t c = 0; c < C; ++c) {
      const double painted = color[c] + rng.normal(0, 0.02);
      out.image[c * plane + i] = float(std::clamp((1 - alpha) * image[c * plane + i] + alpha * painted, 0.0, 1.0));
    }
    out.mask[i] = coverage[i] >= 0.5f ? 1.0f : 0.0f;
  }
  return out;
}

}  // namespace tessera::data
