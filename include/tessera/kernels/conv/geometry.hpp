// tessera/kernels/conv/geometry.hpp — the sizes of a convolution: its image side, its kernel,
// stride and padding, its column side, and its image's stride phases (phases.hpp).
#pragma once

#include <cstddef>

#include "../../core/error.hpp"

namespace tessera {

/// The sizes of one convolution: the image side (conv input, convT output) and the column
/// side (conv output, convT input). Square kernels, equal stride and padding on both axes.
struct ConvGeometry {
  std::size_t channels = 0, height = 0, width = 0;  // image side
  std::size_t kernel = 1, stride = 1, padding = 0;
  std::size_t out_height = 0, out_width = 0;        // column side

  std::size_t col_rows() const { return channels * kernel * kernel; }
  std::size_t positions() const { return out_height * out_width; }
  std::size_t image_size() const { return channels * height * width; }
  // the image's phase planes (see split_phases): stride² per channel, each this size
  std::size_t plane_rows() const { return (height + 2 * padding + stride - 1) / stride; }
  std::size_t plane_cols() const { return (width + 2 * padding + stride - 1) / stride; }
  std::size_t planes_size() const { return channels * stride * stride * plane_rows() * plane_cols(); }
};

/// Geometry of a convolution over a (C, H, W) image: Ho = (H + 2p − k) / s + 1.
inline ConvGeometry conv_geometry(const char* op, std::size_t channels, std::size_t height, std::size_t width,
                                  std::size_t kernel, std::size_t stride, std::size_t padding) {
  TESSERA_CHECK(kernel > 0 && stride > 0, op << ": kernel " << kernel << " and stride " << stride << " must be positive");
  TESSERA_CHECK(height + 2 * padding >= kernel && width + 2 * padding >= kernel,
                op << ": kernel " << kernel << " larger than the padded input " << height << "x" << width
                   << " (padding " << padding << ")");
  ConvGeometry g;
  g.channels = channels;
  g.height = height;
  g.width = width;
  g.kernel = kernel;
  g.stride = stride;
  g.padding = padding;
  g.out_height = (height + 2 * padding - kernel) / stride + 1;
  g.out_width = (width + 2 * padding - kernel) / stride + 1;
  return g;
}

}  // namespace tessera
