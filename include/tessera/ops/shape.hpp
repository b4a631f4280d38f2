// tessera/ops/shape.hpp — ops that move data without arithmetic: reshape, flatten, concat,
// slice, translate (per-image shift), and embedding (row gather).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../autograd/var.hpp"

namespace tessera {
namespace detail {

/// For each of `outer` blocks: copy `len` elements from src + o·src_stride + src_offset to
/// dst + o·dst_stride + dst_offset. A tensor seen as (outer, axis·inner) makes concat and slice
/// (and their backwards) one call each.
template <class T>
void copy_blocks(const T* src, std::size_t src_stride, std::size_t src_offset, T* dst, std::size_t dst_stride,
                 std::size_t dst_offset, std::size_t outer, std::size_t len) {
  for (std::size_t o = 0; o < outer; ++o)
    std::memcpy(dst + o * dst_stride + dst_offset, src + o * src_stride + src_offset, len * sizeof(T));
}

inline std::size_t normalize_axis(const char* op, int axis, const Shape& s) {
  const int rank = static_cast<int>(s.size());
  TESSERA_CHECK(axis >= -rank && axis < rank, op << ": axis " << axis << " out of range for shape " << s);
  return static_cast<std::size_t>(axis < 0 ? axis + rank : axis);
}

}  // namespace detail

/// The same elements under a new shape with the same element count.
template <class T>
Var<T> reshape(const Var<T>& x, const Shape& shape) {
  TESSERA_CHECK(shape.numel() == x.value().size(), "reshape: cannot view shape " << x.shape() << " as " << shape);
  return make_op_result("reshape", x.value().reshape(shape), {&x}, [x](const Tensor<T>& g, const Tensor<T>&) {
    accumulate_grad(x, g.reshape(x.shape()));
  });
}

/// (N, d1, d2, ...) → (N, d1·d2·...).
template <class T>
Var<T> flatten(const Var<T>& x) {
  const Shape& s = x.shape();
  TESSERA_CHECK(s.size() >= 1, "flatten: needs a batch axis, got shape " << s);
  return reshape(x, Shape{s[0], s.numel(1, s.size())});
}

/// Joins tensors along `axis`; all other sizes must agree.
template <class T>
Var<T> concat(const std::vector<Var<T>>& xs, int axis = 1) {
  TESSERA_CHECK(!xs.empty(), "concat: no tensors given");
  const Shape& first = xs[0].shape();
  const std::size_t ax = detail::normalize_axis("concat", axis, first);
  Shape out_shape = first;
  out_shape[ax] = 0;
  for (const auto& x : xs) {
    const Shape& s = x.shape();
    bool compatible = s.size() == first.size();
    for (std::size_t k = 0; compatible && k < s.size(); ++k) compatible = k == ax || s[k] == first[k];
    TESSERA_CHECK(compatible, "concat: shapes " << first << " and " << s << " differ outside axis " << axis);
    out_shape[ax] += s[ax];
  }
  const std::size_t outer = first.numel(0, ax), inner = first.numel(ax + 1, first.size());
  const std::size_t out_stride = out_shape[ax] * inner;
  Tensor<T> out = Tensor<T>::empty(out_shape);
  std::vector<std::size_t> offsets;  // where each input starts inside one outer block
  std::size_t offset = 0;
  for (const auto& x : xs) {
    const std::size_t len = x.shape()[ax] * inner;
    detail::copy_blocks(x.value().data(), len, 0, out.data(), out_stride, offset, outer, len);
    offsets.push_back(offset);
    offset += len;
  }
  return make_op_result("concat", std::move(out), xs,
                        [xs, offsets, ax, outer, inner, out_stride](const Tensor<T>& g, const Tensor<T>&) {
                          for (std::size_t i = 0; i < xs.size(); ++i) {
                            if (!needs_grad(xs[i])) continue;
                            const std::size_t len = xs[i].shape()[ax] * inner;
                            Tensor<T> gi = Tensor<T>::empty(xs[i].shape());
                            detail::copy_blocks(g.data(), out_stride, offsets[i], gi.data(), len, 0, outer, len);
                            accumulate_grad(xs[i], std::move(gi));
                          }
                        });
}

/// Elements [begin, end) along `axis` (default: the batch axis).
template <class T>
Var<T> slice(const Var<T>& x, std::size_t begin, std::size_t end, int axis = 0) {
  const Shape& s = x.shape();
  const std::size_t ax = detail::normalize_axis("slice", axis, s);
  TESSERA_CHECK(begin <= end && end <= s[ax],
                "slice: range [" << begin << ", " << end << ") out of bounds for axis " << axis << " of shape " << s);
  Shape out_shape = s;
  out_shape[ax] = end - begin;
  const std::size_t outer = s.numel(0, ax), inner = s.numel(ax + 1, s.size());
  const std::size_t in_stride = s[ax] * inner, len = (end - begin) * inner, offset = begin * inner;
  Tensor<T> out = Tensor<T>::empty(out_shape);
  detail::copy_blocks(x.value().data(), in_stride, offset, out.data(), len, 0, outer, len);
  return make_op_result("slice", std::move(out), {&x},
                        [x, outer, in_stride, len, offset](const Tensor<T>& g, const Tensor<T>&) {
                          Tensor<T> gx = Tensor<T>::zeros(x.shape());
                          detail::copy_blocks(g.data(), len, 0, gx.data(), in_stride, offset, outer, len);
                          accumulate_grad(x, std::move(gx));
                        });
}

namespace detail {
/// dst[n, c, h, w] = src[n, c, h − sign·dy[n], w − sign·dx[n]], zero where that falls outside
/// the image. sign −1 undoes sign +1 on the pixels that stayed inside: translate's backward.
template <class T>
void shift_images(const T* src, T* dst, const Shape& s, const std::vector<std::array<int, 2>>& shifts, int sign) {
  const std::size_t channels = s[1];
  const long height = long(s[2]), width = long(s[3]);
  for (std::size_t n = 0; n < s[0]; ++n) {
    const long dy = sign * shifts[n][0], dx = sign * shifts[n][1];
    const long w_begin = std::max(0L, dx), w_end = std::min(width, width + dx);  // destination columns with a source
    for (std::size_t c = 0; c < channels; ++c) {
      const std::size_t plane = (n * channels + c) * std::size_t(height * width);
      for (long h = 0; h < height; ++h) {
        T* row = dst + plane + std::size_t(h * width);
        std::fill(row, row + width, T(0));
        const long source_h = h - dy;
        if (source_h < 0 || source_h >= height || w_begin >= w_end) continue;
        std::memcpy(row + w_begin, src + plane + std::size_t(source_h * width + w_begin - dx),
                    std::size_t(w_end - w_begin) * sizeof(T));
      }
    }
  }
}
}  // namespace detail

/// Each image of x (N, C, H, W) moved by its own whole-pixel offset shifts[n] = {dy, dx}
/// (down and right positive), zeros shifted in: DiffAugment's translation (Zhao et al. 2020).
template <class T>
Var<T> translate(const Var<T>& x, const std::vector<std::array<int, 2>>& shifts) {
  const Shape& s = x.shape();
  TESSERA_CHECK(s.size() == 4, "translate: expected images (N, C, H, W), got " << s);
  TESSERA_CHECK(shifts.size() == s[0], "translate: " << shifts.size() << " shifts for a batch of " << s[0] << " images " << s);
  Tensor<T> out = Tensor<T>::empty(s);
  detail::shift_images(x.value().data(), out.data(), s, shifts, +1);
  return make_op_result("translate", std::move(out), {&x}, [x, shifts](const Tensor<T>& g, const Tensor<T>&) {
    Tensor<T> gx = Tensor<T>::empty(x.shape());
    detail::shift_images(g.data(), gx.data(), x.shape(), shifts, -1);
    accumulate_grad(x, std::move(gx));
  });
}

/// Rows of `weight` (num, dim) picked by `indices`: (len, dim). Backward scatter-adds
/// into the picked rows (in index order, so repeated indices sum deterministically).
template <class T>
Var<T> embedding(const Var<T>& weight, const std::vector<std::int64_t>& indices) {
  const Shape& sw = weight.shape();
  TESSERA_CHECK(sw.size() == 2, "embedding: weight must be (num, dim), got " << sw);
  const std::size_t num = sw[0], dim = sw[1];
  for (std::int64_t i : indices)
    TESSERA_CHECK(i >= 0 && static_cast<std::size_t>(i) < num,
                  "embedding: index " << i << " out of range for " << num << " embeddings");
  Tensor<T> out = Tensor<T>::empty({indices.size(), dim});
  for (std::size_t r = 0; r < indices.size(); ++r)
    std::memcpy(out.data() + r * dim, weight.value().data() + indices[r] * dim, dim * sizeof(T));
  return make_op_result("embedding", std::move(out), {&weight},
                        [weight, indices, dim](const Tensor<T>& g, const Tensor<T>&) {
                          Tensor<T> gw = Tensor<T>::zeros(weight.shape());
                          for (std::size_t r = 0; r < indices.size(); ++r)
                            for (std::size_t j = 0; j < dim; ++j) gw[indices[r] * dim + j] += g[r * dim + j];
                          accumulate_grad(weight, std::move(gw));
                        });
}

}  // namespace tessera
