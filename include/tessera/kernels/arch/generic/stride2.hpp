// tessera/kernels/arch/generic/stride2.hpp — stride 2 without intrinsics: the split of an image
// row into its even and odd columns (the phase planes of a stride-2 convolution) and back, and
// the DCGAN convolution's im2col and col2im straight between image rows and columns (kernel 4,
// stride 2, padding 1, even sizes). The same numbers as the AVX-512 twins in ../avx512/.
//
// With k = 4, s = 2, p = 1, image pixel (ih, iw) = (2·oh − 1 + ki, 2·ow − 1 + kj) meets exactly
// four taps: rows ih = 2u meet ki = 1 (oh = u) and ki = 3 (oh = u − 1), rows ih = 2u + 1 meet
// ki = 0 (oh = u + 1) and ki = 2 (oh = u); columns likewise with kj.
#pragma once

#include <cstddef>
#include <type_traits>

#include "../../conv/geometry.hpp"

namespace tessera::kernels::arch::generic {

/// The pointers of a move between one image row and its planes: read from the image and
/// written to the planes when splitting, the other way round when merging.
template <bool Split, class T>
using ImageRow = std::conditional_t<Split, const T*, T*>;
template <bool Split, class T>
using PlaneRow = std::conditional_t<Split, T*, const T*>;

/// Stride 2's split of rows `width` values long: in[2m] → even[m], in[2m + 1] → odd[m]
/// (Split) or back (its adjoint).
template <class T>
class Stride2Rows {
 public:
  explicit Stride2Rows(std::size_t width) : width_(width) {}
  template <bool Split>
  void move(ImageRow<Split, T> in, PlaneRow<Split, T> even, PlaneRow<Split, T> odd) const {
    if constexpr (Split) {
      for (std::size_t m = 0; 2 * m < width_; ++m) even[m] = in[2 * m];
      for (std::size_t m = 0; 2 * m + 1 < width_; ++m) odd[m] = in[2 * m + 1];
    } else {
      for (std::size_t m = 0; 2 * m < width_; ++m) in[2 * m] = even[m];
      for (std::size_t m = 0; 2 * m + 1 < width_; ++m) in[2 * m + 1] = odd[m];
    }
  }

 private:
  std::size_t width_;
};

/// Pixel x[c, 2·oh − 1 + ki, 2·ow − 1 + kj] of one (C, H, W) image, zero in the padding: entry
/// (row (c, ki, kj), position oh·Wo + ow) of its im2col.
template <class T>
T stride2_tap(const T* image, const ConvGeometry& g, std::size_t c, std::size_t ki, std::size_t kj, std::size_t oh,
              std::size_t ow) {
  const std::size_t i = 2 * oh + ki, j = 2 * ow + kj;  // padded row and column
  if (i == 0 || j == 0 || i > g.height || j > g.width) return T(0);
  return image[(c * g.height + i - 1) * g.width + j - 1];
}

/// im2col of `count` images side by side (image j's columns from j·Ho·Wo) straight into the
/// packed GEMM's B (kernels/gemm.hpp: C·16 rows, panels of `panel` columns).
template <class T>
void im2col_stride2_packed(const T* images, std::size_t count, const ConvGeometry& g, T* packed, std::size_t panel) {
  const std::size_t k = g.col_rows(), L = g.positions();
  for (std::size_t j = 0; j < count; ++j)
    for (std::size_t r = 0; r < k; ++r)
      for (std::size_t l = 0; l < L; ++l) {
        const std::size_t q = j * L + l;
        packed[(q / panel) * panel * k + r * panel + q % panel] =
            stride2_tap(images + j * g.image_size(), g, r / 16, r / 4 % 4, r % 4, l / g.out_width, l % g.out_width);
      }
}

/// Channel c's 16 rows of im2col of `count` images side by side, rows `width` apart in `staged`.
template <class T>
void stage_channel_stride2(const T* images, std::size_t count, const ConvGeometry& g, std::size_t c, T* staged,
                           std::size_t width) {
  const std::size_t L = g.positions();
  for (std::size_t j = 0; j < count; ++j)
    for (std::size_t tap = 0; tap < 16; ++tap)
      for (std::size_t l = 0; l < L; ++l)
        staged[tap * width + j * L + l] =
            stride2_tap(images + j * g.image_size(), g, c, tap / 4, tap % 4, l / g.out_width, l % g.out_width);
}

/// col2im (kernels/conv/im2col.hpp) of this geometry: image (C, H, W) from the columns (C·16
/// rows, ld apart, of Ho·Wo values), each pixel the sum of its four taps in col2im's order
/// (ki, then kj, ascending, from zero): the same numbers.
template <class T>
void col2im_stride2(const T* cols, const ConvGeometry& g, T* image, std::size_t ld) {
  const std::size_t ho = g.out_height, wo = g.out_width;
  for (std::size_t c = 0; c < g.channels; ++c)
    for (std::size_t ih = 0; ih < g.height; ++ih)
      for (std::size_t iw = 0; iw < g.width; ++iw) {
        T sum = T(0);
        for (std::size_t ki = (ih + 1) % 2; ki < 4; ki += 2) {  // padded row ih + 1 = 2·oh + ki
          if (ih + 1 < ki || (ih + 1 - ki) / 2 >= ho) continue;
          const std::size_t oh = (ih + 1 - ki) / 2;
          for (std::size_t kj = (iw + 1) % 2; kj < 4; kj += 2) {
            if (iw + 1 < kj || (iw + 1 - kj) / 2 >= wo) continue;
            sum += cols[(c * 16 + ki * 4 + kj) * ld + oh * wo + (iw + 1 - kj) / 2];
          }
        }
        image[(c * g.height + ih) * g.width + iw] = sum;
      }
}

}  // namespace tessera::kernels::arch::generic
