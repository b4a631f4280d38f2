// tessera/data/procedural.hpp — a built-in, deterministic texture dataset: eight visually
// distinct classes (stripes, checkerboard, dots, waves, bricks, clouds, cracks, weave), each
// sample with its own random scale, orientation, phase, colours and noise. Sample i is drawn
// from its own generator seeded by (seed, i), so any sample can be made alone, in any order,
// at any image size. The default data of every example and most tests.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "dataset.hpp"

namespace tessera::data {

class ProceduralTextures : public Dataset {
 public:
  /// `count` samples of (channels, size, size), channels 1 (gray) or 3 (RGB); labels cycle
  /// through the classes, so every class has count / 8 samples (±1).
  explicit ProceduralTextures(std::size_t count, std::size_t size = 64, std::size_t channels = 3, std::uint64_t seed = 0)
      : count_(count), size_(size), channels_(channels), seed_(seed) {
    TESSERA_CHECK(size >= 8, "ProceduralTextures: image size must be at least 8, got " << size);
    TESSERA_CHECK(channels == 1 || channels == 3, "ProceduralTextures: channels must be 1 or 3, got " << channels);
  }

  static const std::vector<std::string>& class_names() {
    static const std::vector<std::string> names{"stripes", "checkerboard", "dots", "waves",
                                                "bricks",  "clouds",       "cracks", "weave"};
    return names;
  }

  std::size_t size() const override { return count_; }
  const std::vector<std::string>& classes() const override { return class_names(); }

  Example get(std::size_t i) const override {
    TESSERA_CHECK(i < count_, "ProceduralTextures: index " << i << " out of range for " << count_ << " samples");
    const auto label = static_cast<std::int64_t>(i % class_names().size());
    return {render(label, sample_seed(i)), label};
  }

  /// One texture of class `label` from `seed`, at this dataset's size and channels.
  Tensor<float> render(std::int64_t label, std::uint64_t seed) const {
    Rng rng(seed);
    const Params p = draw_params(rng);
    Tensor<float> image = Tensor<float>::empty({channels_, size_, size_});
    const std::size_t plane = size_ * size_;
    for (std::size_t y = 0; y < size_; ++y)
      for (std::size_t x = 0; x < size_; ++x) {
        // texture coordinates in units of the pattern's period, rotated by the sample's angle
        const double px = (double(x) - p.cx) / p.period, py = (double(y) - p.cy) / p.period;
        const double u = p.cos_a * px - p.sin_a * py, v = p.sin_a * px + p.cos_a * py;
        const double t = std::clamp(pattern(label, u, v, p), 0.0, 1.0);
        for (std::size_t c = 0; c < channels_; ++c) {
          const double value = p.background[c] + t * (p.foreground[c] - p.background[c]) + rng.normal(0, p.noise);
          image[c * plane + y * size_ + x] = float(std::clamp(value, 0.0, 1.0));
        }
      }
    return image;
  }

 private:
  struct Params {
    double period, cos_a, sin_a, cx, cy, phase, shape, noise;
    double pixel;  // one pixel in texture units: the thinnest line worth drawing
    std::uint64_t hash_seed;
    std::array<double, 3> foreground, background;
  };

  std::uint64_t sample_seed(std::size_t i) const {
    return seed_ * 0x9E3779B97F4A7C15ULL + std::uint64_t(i) * 0xD1B54A32D192ED03ULL + 1;
  }

  Params draw_params(Rng& rng) const {
    Params p;
    // 4 to 10 repeats across the image, but periods of at least 6 to 12 pixels on small images:
    // finer patterns put mortar, cracks and strands between pixels (aliased to noise)
    p.period = rng.uniform(std::max(0.1 * double(size_), 6.0), std::max(0.25 * double(size_), 12.0));
    p.pixel = 1.0 / p.period;
    const double angle = rng.uniform(0, 2 * pi);
    p.cos_a = std::cos(angle);
    p.sin_a = std::sin(angle);
    p.cx = rng.uniform(0, double(size_));
    p.cy = rng.uniform(0, double(size_));
    p.phase = rng.uniform(0, 2 * pi);
    p.shape = rng.uniform(0, 1);  // a class-specific proportion (line width, dot size, ...)
    p.noise = rng.uniform(0.0, 0.06);
    p.hash_seed = rng.next_u64();
    // two colours (gray levels for 1 channel) at least 0.35 apart in brightness
    const double dark = rng.uniform(0.0, 0.4), light = rng.uniform(dark + 0.35, 1.0);
    for (std::size_t c = 0; c < 3; ++c) {
      const double tint = channels_ == 1 ? 0.0 : rng.uniform(-0.15, 0.15);
      p.background[c] = std::clamp(dark + tint, 0.0, 1.0);
      p.foreground[c] = std::clamp(light + tint, 0.0, 1.0);
    }
    if (rng.bernoulli(0.5)) std::swap(p.background, p.foreground);
    return p;
  }

  // Smooth 0..1 step between edges a and b.
  static double smoothstep(double a, double b, double x) {
    const double t = std::clamp((x - a) / (b - a), 0.0, 1.0);
    return t * t * (3 - 2 * t);
  }
  // A random value in [0, 1) for integer lattice point (i, j): a hash, so no tables are kept.
  static double lattice(std::int64_t i, std::int64_t j, std::uint64_t seed) {
    std::uint64_t h = seed ^ (std::uint64_t(i) * 0x9E3779B97F4A7C15ULL) ^ (std::uint64_t(j) * 0xC2B2AE3D27D4EB4FULL);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 33;
    return double(h >> 11) * 0x1.0p-53;
  }
  // Value noise: bilinear-smoothed lattice values (Perlin 1985's simpler cousin).
  static double value_noise(double u, double v, std::uint64_t seed) {
    const double fu = std::floor(u), fv = std::floor(v);
    const auto i = std::int64_t(fu), j = std::int64_t(fv);
    const double su = smoothstep(0, 1, u - fu), sv = smoothstep(0, 1, v - fv);
    const double a = lattice(i, j, seed), b = lattice(i + 1, j, seed);
    const double c = lattice(i, j + 1, seed), d = lattice(i + 1, j + 1, seed);
    return (a + (b - a) * su) * (1 - sv) + (c + (d - c) * su) * sv;
  }

  // The pattern of each class at rotated texture coordinates (u, v), in [0, 1].
  static double pattern(std::int64_t label, double u, double v, const Params& p) {
    switch (label) {
      case 0: {  // stripes: straight bands, width set by `shape`
        const double f = u - std::floor(u);
        const double width = 0.25 + 0.5 * p.shape, edge = std::max(0.08, p.pixel);
        return smoothstep(0.0, edge, f) * (1 - smoothstep(width, width + edge, f));
      }
      case 1: {  // checkerboard
        const auto parity = (std::int64_t(std::floor(u)) + std::int64_t(std::floor(v))) & 1;
        return double(parity);
      }
      case 2: {  // dots: a disc in each cell
        const double du = u - std::floor(u) - 0.5, dv = v - std::floor(v) - 0.5;
        const double radius = 0.18 + 0.17 * p.shape;
        return 1 - smoothstep(radius - 0.05, radius + 0.05, std::hypot(du, dv));
      }
      case 3:  // waves: bands bent by a sine across them
        return 0.5 + 0.5 * std::sin(2 * pi * u + (0.8 + 1.2 * p.shape) * std::sin(2 * pi * v * 0.5 + p.phase));
      case 4: {  // bricks: rows of 2:1 blocks, every other row shifted by half a brick, thin mortar
        const double row = std::floor(v * 2);
        const double bu = u + (std::int64_t(row) & 1 ? 0.5 : 0.0);
        const double fu = bu - std::floor(bu), fv = v * 2 - row;
        const double mortar = std::max(0.06 + 0.06 * p.shape, p.pixel);
        return std::min(smoothstep(0, mortar, fu) * (1 - smoothstep(1 - mortar, 1, fu)),
                        smoothstep(0, mortar * 2, fv) * (1 - smoothstep(1 - mortar * 2, 1, fv)));
      }
      case 5: {  // clouds: three octaves of value noise
        double sum = 0, amplitude = 0.5, frequency = 1;
        for (int octave = 0; octave < 3; ++octave, amplitude *= 0.5, frequency *= 2)
          sum += amplitude * value_noise(u * frequency, v * frequency, p.hash_seed + octave);
        return smoothstep(0.2, 0.7, sum / 0.875);
      }
      case 6: {  // cracks: edges of a jittered Voronoi diagram (Worley 1996), where the two
                 // nearest cell points are about equally far
        const double fu = std::floor(u), fv = std::floor(v);
        double d1 = 1e9, d2 = 1e9;
        for (int dj = -1; dj <= 1; ++dj)
          for (int di = -1; di <= 1; ++di) {
            const auto i = std::int64_t(fu) + di, j = std::int64_t(fv) + dj;
            const double qx = double(i) + lattice(i, j, p.hash_seed), qy = double(j) + lattice(j, i, p.hash_seed + 1);
            const double d = std::hypot(u - qx, v - qy);
            if (d < d1) {
              d2 = d1;
              d1 = d;
            } else if (d < d2) {
              d2 = d;
            }
          }
        return 1 - smoothstep(0.02, std::max(0.06 + 0.04 * p.shape, 1.5 * p.pixel), d2 - d1);
      }
      default: {  // weave: cells of three strands, alternating horizontal and vertical
        const double fu = u - std::floor(u), fv = v - std::floor(v);
        const bool horizontal = ((std::int64_t(std::floor(u)) + std::int64_t(std::floor(v))) & 1) == 0;
        const double across = horizontal ? fv : fu;  // position across the strands
        const double strand = across * 3 - std::floor(across * 3);
        return 0.2 + 0.8 * std::sin(pi * strand);
      }
    }
  }

  static constexpr double pi = 3.14159265358979323846;
  std::size_t count_, size_, channels_;
  std::uint64_t seed_;
};

}  // namespace tessera::data
