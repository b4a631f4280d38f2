// tessera/kernels/conv/plan.hpp — the one place that decides how a convolution's products are
// made: im2col + the packed GEMM, Winograd's F(2×2, 3×3), or the stride-2 direct path that
// reads and writes the image rows themselves; and how many images one product takes. The
// kernels (forward.hpp, backward.hpp) ask here and nowhere else.
#pragma once

#include <algorithm>
#include <cstddef>

#include "../arch/arch.hpp"
#include "../gemm.hpp"
#include "geometry.hpp"

namespace tessera::kernels {

/// How a convolution's products are lowered to matrix products.
enum class Lowering {
  im2col,    // columns of the image (C·k·k × L) times the weights: any geometry
  winograd,  // 16 products of depth C over 2×2 tiles (winograd.hpp): 3×3, stride 1, padding 1
};
/// How im2col reads the image (and col2im writes it back).
enum class Columns {
  via_phases,  // through the image split into its stride phases (phases.hpp): any geometry
  from_rows,   // straight from the image rows in registers (arch's stride2): kernel 4, stride 2, padding 1
};

/// The plan of one convolution call.
struct ConvPlan {
  Lowering lowering = Lowering::im2col;
  Columns columns = Columns::via_phases;
  std::size_t images_per_group = 1;  // images side by side in one product
};

namespace plan_detail {
/// Every DCGAN layer's geometry: kernel 4, stride 2, padding 1, even sizes.
inline bool dcgan_geometry(const ConvGeometry& g) {
  return g.kernel == 4 && g.stride == 2 && g.padding == 1 && g.height % 2 == 0 && g.width % 2 == 0;
}

/// Images per im2col product: one, unless that leaves more than an eighth of the GEMM's last
/// panel (32 columns for float with AVX-512) empty, then the fewest side by side that do not
/// (7×7 outputs: 49 of 64 columns used alone, 147 of 160 three at a time). Fewer images keep
/// the packed columns small enough for the core's cache.
template <class T>
std::size_t images_per_product(std::size_t positions) {
  constexpr std::size_t panel = gemm::Tile<T>::cols;
  std::size_t count = 1;
  while (count < 16 && 8 * count * positions < 7 * gemm::round_up(count * positions, panel)) ++count;
  return count;
}

/// Whether Winograd pays for a 3×3, stride-1, padding-1 convolution: even sizes (whole 2×2
/// tiles), pooled 2×2 or not at all (a tile is a window), and enough channels each way that its
/// 16 products are worth their transforms.
inline bool winograd_pays(const ConvGeometry& g, std::size_t out_ch, std::size_t pool) {
  return g.kernel == 3 && g.stride == 1 && g.padding == 1 && g.height % 2 == 0 && g.width % 2 == 0 && pool <= 2 &&
         g.channels >= 16 && out_ch >= 16;
}
}  // namespace plan_detail

/// im2col + GEMM (the weight gradient; the transposed convolution's backward; the forward where
/// Winograd does not pay): im2col reads the image rows directly where the target has that path
/// (arch::kStride2Piece) and no piece of a row crosses a panel (Wo a multiple or a divisor of it).
template <class T>
ConvPlan plan_im2col(const ConvGeometry& g) {
  constexpr std::size_t piece = arch::kStride2Piece<T>;
  ConvPlan plan;
  plan.images_per_group = plan_detail::images_per_product<T>(g.positions());
  if (piece > 0 && plan_detail::dcgan_geometry(g) && (g.out_width % piece == 0 || piece % g.out_width == 0))
    plan.columns = Columns::from_rows;
  return plan;
}

/// conv2d's forward with out_ch outputs and a pool × pool max-pool after it (0: none).
template <class T>
ConvPlan plan_forward(const ConvGeometry& g, std::size_t out_ch, std::size_t pool) {
  if (!plan_detail::winograd_pays(g, out_ch, pool)) return plan_im2col<T>(g);
  ConvPlan plan;
  plan.lowering = Lowering::winograd;
  const std::size_t tiles = g.positions() / 4;  // enough tiles side by side to fill the GEMM's panels
  plan.images_per_group = std::min<std::size_t>(16, (128 + tiles - 1) / tiles);
  return plan;
}

/// The geometry of conv2d's input gradient as a convolution of dY (out_ch channels): for 3×3,
/// stride 1, padding 1 it is the same convolution of dY with the flipped, transposed weights.
inline ConvGeometry input_gradient_as_convolution(const ConvGeometry& g, std::size_t out_ch) {
  return conv_geometry("conv2d", out_ch, g.out_height, g.out_width, 3, 1, 1);
}

/// conv2d's input gradient (and so the transposed convolution's forward): by Winograd, as the
/// forward of input_gradient_as_convolution, where that pays; else Wᵀ·dY by the GEMM and col2im,
/// which adds straight into the image rows where the target has that path.
template <class T>
ConvPlan plan_input_gradient(const ConvGeometry& g, std::size_t out_ch) {
  if (g.kernel == 3 && g.stride == 1 && g.padding == 1 &&
      plan_detail::winograd_pays(input_gradient_as_convolution(g, out_ch), g.channels, 0)) {
    ConvPlan plan;
    plan.lowering = Lowering::winograd;
    return plan;
  }
  ConvPlan plan;
  plan.images_per_group = plan_detail::images_per_product<T>(g.positions());
  if (arch::kStride2Piece<T> > 0 && plan_detail::dcgan_geometry(g)) plan.columns = Columns::from_rows;
  return plan;
}

}  // namespace tessera::kernels
