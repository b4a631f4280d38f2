// tessera/kernels/conv/forward.hpp — a convolution's forward on raw tensors: input (N, C, H, W),
// weight (O, C, k, k) → (N, O, Ho, Wo), with its epilogue (bias, rectifier, max-pool) applied
// to each image's output while it is in cache. The planner (plan.hpp) picks Winograd's
// F(2×2, 3×3) or im2col + the packed GEMM; with L = Ho·Wo, im2col turns image n into columns
// (C·k·k rows × L) and Y_n = W · cols_n, an (O × L) slice of NCHW.
//
// Why one image (or a small group) at a time: its columns stay in the core's cache between
// im2col and the product, the product writes NCHW directly, and nothing batch-sized is kept for
// the backward (the weight gradient redoes im2col from x). The weights are packed for the GEMM
// once per call, and im2col writes its columns straight in the GEMM's packed order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "../../core/error.hpp"
#include "../../core/flops.hpp"
#include "../../core/tensor.hpp"
#include "../arch/arch.hpp"
#include "../epilogue.hpp"
#include "../gemm.hpp"
#include "geometry.hpp"
#include "im2col.hpp"
#include "plan.hpp"
#include "scratch.hpp"
#include "winograd.hpp"

namespace tessera::kernels {

/// A (m × k) packed once for every image: A(i, kk) = a[i·row_stride + kk·col_stride].
template <class T>
Tensor<T> packed_lhs(const T* a, std::size_t m, std::size_t k, std::size_t row_stride, std::size_t col_stride) {
  Tensor<T> packed = Tensor<T>::empty({gemm::packed_lhs_size<T>(m, k)});
  gemm::pack_lhs(a, m, k, row_stride, col_stride, packed.data());
  return packed;
}

/// Phase planes for `count` images in the thread's scratch (split_group), or none (null) where
/// the plan has im2col read the image rows directly.
template <class T>
const T* planes_for_im2col(const T* images, std::size_t count, const ConvGeometry& g, const ConvPlan& plan,
                           ConvScratch<T>& scratch) {
  return plan.columns == Columns::from_rows ? nullptr : split_group(images, count, g, scratch);
}

/// The forward by im2col + GEMM of one call: the weights (out_ch × C·k·k) packed once, then
/// each group of images multiplied, its outputs made by the epilogue.
template <class T>
class Im2colForward {
 public:
  Im2colForward(const ConvGeometry& g, const T* weight, std::size_t out_ch, const Epilogue<T>& epilogue)
      : g_(g), out_ch_(out_ch), epilogue_(epilogue),
        packed_w_(packed_lhs(weight, out_ch, g.col_rows(), g.col_rows(), 1)) {}

  /// The outputs y of `count` images (count NCHW images of O × L, pooled if the epilogue pools)
  /// from the images and their phase planes (null: the plan reads the image rows directly).
  void group(const T* images, const T* planes, std::size_t count, ConvScratch<T>& scratch, T* y) const {
    const std::size_t rows = g_.col_rows(), L = g_.positions(), width = count * L;
    T* cols = buffer(scratch.packed_rhs, gemm::packed_rhs_size<T>(rows, width));
    if (planes) {
      const std::vector<ColumnRun> runs = column_runs(g_, count, gemm::Tile<T>::cols, rows);
      for_each_tap(g_, [&](std::size_t r, std::size_t offset) {  // im2col straight into packed order
        T* packed_row = cols + r * gemm::Tile<T>::cols;
        for (const ColumnRun& run : runs) arch::copy_run(planes + offset + run.from, run.length, packed_row + run.to);
      });
    } else {
      arch::im2col_stride2_packed(images, count, g_, cols, gemm::Tile<T>::cols);
    }
    gemm::zero_rhs_tail(rows, width, cols);
    // A shallow product stores each tile of C right after a few steps: into y's fresh memory
    // that would wait on every line (measured: half the speed for k = 48), so it goes to a
    // buffer in cache and on to y with the epilogue. (So do a group's products, and pooled ones.)
    const std::size_t pool = epilogue_.pool;
    const bool via_buffer = count > 1 || rows <= gemm::Tile<T>::depth_block || pool > 0;
    T* product = via_buffer ? buffer(scratch.product, out_ch_ * width) : y;
    gemm::multiply_packed(out_ch_, width, rows, packed_w_.data(), cols, product, width, false);
    const std::size_t out_plane = pool ? (g_.out_height / pool) * (g_.out_width / pool) : L;
    T* taps = pool ? buffer(scratch.staged_rows, pool * g_.out_width) : nullptr;
    for (std::size_t j = 0; j < count; ++j)
      for (std::size_t o = 0; o < out_ch_; ++o)  // row o of image j, while it is in cache
        epilogue_.apply(product + (o * count + j) * L, g_.out_height, g_.out_width, o, y + (j * out_ch_ + o) * out_plane, taps);
  }

 private:
  ConvGeometry g_;
  std::size_t out_ch_;
  Epilogue<T> epilogue_;
  Tensor<T> packed_w_;
};

/// Convolution forward: y (N, O, Ho, Wo) = W ⋆ x then the epilogue; with epilogue.pool = k > 0
/// each image's output is max-pooled over k×k windows of stride k: y (N, O, Ho / k, Wo / k).
template <class T>
Tensor<T> conv2d_forward(const Tensor<T>& x, const Tensor<T>& weight, const ConvGeometry& g, const Epilogue<T>& epilogue = {}) {
  const std::size_t pool = epilogue.pool;
  TESSERA_CHECK(pool <= std::min(g.out_height, g.out_width),
                "conv2d: max-pool window " << pool << " larger than the output " << g.out_height << "x" << g.out_width);
  const std::size_t batch = x.shape()[0], out_ch = weight.shape()[0], L = g.positions();
  const std::size_t k = pool ? pool : 1, out_image = out_ch * (g.out_height / k) * (g.out_width / k);
  Tensor<T> y = Tensor<T>::empty({batch, out_ch, g.out_height / k, g.out_width / k});
  const ConvPlan plan = plan_forward<T>(g, out_ch, pool);
  if (plan.lowering == Lowering::winograd) {
    tessera::detail::count_matmul_flops(out_ch, batch * L / 4 * winograd::kPositions, g.channels);
    const winograd::Forward<T> forward(g, weight, epilogue);
    for_each_image_group<T>(batch, plan.images_per_group, [&](auto& scratch, std::size_t, std::size_t n, std::size_t count) {
      const T* planes = split_group(x.data() + n * g.image_size(), count, forward.input_phases(), scratch);
      forward.group(planes, count, scratch, y.data() + n * out_image);
    });
    return y;
  }
  tessera::detail::count_matmul_flops(out_ch, batch * L, g.col_rows());
  const Im2colForward<T> forward(g, weight.data(), out_ch, epilogue);
  for_each_image_group<T>(batch, plan.images_per_group, [&](auto& scratch, std::size_t, std::size_t n, std::size_t count) {
    const T* images = x.data() + n * g.image_size();
    forward.group(images, planes_for_im2col(images, count, g, plan, scratch), count, scratch, y.data() + n * out_image);
  });
  return y;
}

}  // namespace tessera::kernels
