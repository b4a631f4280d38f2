// tessera/kernels/conv/scratch.hpp — how a convolution's batch is shared out: each thread takes a
// contiguous run of images (one level of threading: one run per thread, or one run whose
// products the GEMM threads itself), a group of images at a time, in buffers of its own that
// the first group allocates and the others reuse.
#pragma once

#include <algorithm>
#include <cstddef>

#include "../../core/parallel.hpp"
#include "../../core/tensor.hpp"
#include "geometry.hpp"
#include "phases.hpp"

namespace tessera::kernels {

/// A thread's buffers for its groups of images, each named for what it holds.
template <class T>
struct ConvScratch {
  Tensor<T> phase_planes;       // the group's images split into their stride phases
  Tensor<T> packed_rhs;         // the GEMM's packed B: im2col's columns, Winograd's V, or dY
  Tensor<T> packed_lhs;         // the GEMM's packed A made per group: dY for the weight gradient
  Tensor<T> product;            // the GEMM's C: outputs before the epilogue, dcols, Winograd's M
  Tensor<T> staged_rows;        // rows waiting to be packed by a transpose, or a pooled row's taps
  Tensor<T> output_gradient;    // dY taken back through a fused rectifier (dz)
  Tensor<T> winograd_quarters;  // Winograd's output tiles' four quarters of one plane
};

/// The first `size` values of `t`, which grows to hold them (its contents are not kept).
template <class T>
T* buffer(Tensor<T>& t, std::size_t size) {
  if (t.size() < size) t = Tensor<T>::empty({size});
  return t.data();
}

/// How many contiguous runs of images a batch is split into: one per thread when every thread
/// gets an image (each then multiplies serially), else one run whose products the GEMM threads
/// itself — one level of threading either way.
inline std::size_t batch_parts(std::size_t batch) {
  const std::size_t threads = std::size_t(available_threads());
  return batch >= threads ? threads : 1;
}

/// body(scratch, part, n, count) for each group of `count` images from image n: each thread
/// takes a contiguous run of the batch (part), `group_size` at a time.
template <class T, class Body>
void for_each_image_group(std::size_t batch, std::size_t group_size, Body&& body) {
  const std::size_t parts = batch_parts(batch);
  parallel_for(0, parts, 1, [&](std::size_t part) {
    const std::size_t first = batch * part / parts, last = batch * (part + 1) / parts;
    const std::size_t group = std::min(group_size, last - first);
    ConvScratch<T> scratch;
    for (std::size_t n = first; n < last; n += group) body(scratch, part, n, std::min(group, last - n));
  });
}

/// A group of `count` images split into their phase planes, one after another, in the thread's
/// scratch. The buffer is zeroed when new; within one call every split has the same geometry
/// and writes the pixels only, so the padding stays zero for every later group.
template <class T>
const T* split_group(const T* images, std::size_t count, const ConvGeometry& g, ConvScratch<T>& scratch) {
  const std::size_t size = count * g.planes_size();
  if (scratch.phase_planes.size() < size) scratch.phase_planes = Tensor<T>::zeros({size});
  T* planes = scratch.phase_planes.data();
  for (std::size_t j = 0; j < count; ++j)
    split_phases(images + j * g.image_size(), g, planes + j * g.planes_size(), /*padding_zeroed=*/true);
  return planes;
}

}  // namespace tessera::kernels
