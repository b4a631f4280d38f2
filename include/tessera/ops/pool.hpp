// tessera/ops/pool.hpp — max and average pooling over k×k windows (no padding).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "../autograd/var.hpp"
#include "../core/parallel.hpp"
#include "conv.hpp"

namespace tessera {
namespace detail {
/// Window geometry for pooling: the same arithmetic as a convolution without padding.
template <class T>
ConvGeometry pool_geometry(const char* op, const Var<T>& x, std::size_t kernel, std::size_t stride) {
  const Shape& s = x.shape();
  TESSERA_CHECK(s.size() == 4, op << ": input must be (N, C, H, W), got " << s);
  return conv_geometry(op, s[1], s[2], s[3], kernel, stride, 0);
}
}  // namespace detail

/// Max over each window. The gradient goes to the window's first maximum (row-major), as in
/// PyTorch, so ties never split or duplicate it.
template <class T>
Var<T> max_pool2d(const Var<T>& x, std::size_t kernel, std::size_t stride) {
  const ConvGeometry g = detail::pool_geometry("max_pool2d", x, kernel, stride);
  const std::size_t planes = x.shape()[0] * g.channels, L = g.positions(), plane = g.height * g.width;
  Tensor<T> y = Tensor<T>::empty({x.shape()[0], g.channels, g.out_height, g.out_width});
  std::vector<std::size_t> argmax(y.size());  // flat input index of each output's maximum
  const T* px = x.value().data();
  T* py = y.data();
  parallel_for(0, planes, 1, [&](std::size_t p) {
    for (std::size_t oh = 0; oh < g.out_height; ++oh)
      for (std::size_t ow = 0; ow < g.out_width; ++ow) {
        std::size_t best = p * plane + oh * g.stride * g.width + ow * g.stride;
        for (std::size_t ki = 0; ki < kernel; ++ki)
          for (std::size_t kj = 0; kj < kernel; ++kj) {
            const std::size_t i = p * plane + (oh * g.stride + ki) * g.width + ow * g.stride + kj;
            if (px[i] > px[best]) best = i;
          }
        py[p * L + oh * g.out_width + ow] = px[best];
        argmax[p * L + oh * g.out_width + ow] = best;
      }
  });
  return make_op_result("max_pool2d", std::move(y), {&x},
                        [x, argmax = std::move(argmax), planes, L, plane](const Tensor<T>& g, const Tensor<T>&) {
                          Tensor<T> gx = Tensor<T>::empty(x.shape());
                          T* pgx = gx.data();
                          const T* pg = g.data();
                          parallel_for(0, planes, 1, [&](std::size_t p) {  // each window's maximum lies in its own plane
                            std::fill(pgx + p * plane, pgx + (p + 1) * plane, T(0));
                            // in output order: overlapping windows sharing a maximum add up deterministically
                            for (std::size_t o = p * L; o < (p + 1) * L; ++o) pgx[argmax[o]] += pg[o];
                          });
                          accumulate_grad(x, std::move(gx));
                        });
}

/// Mean over each window; the gradient is spread evenly over the window.
template <class T>
Var<T> avg_pool2d(const Var<T>& x, std::size_t kernel, std::size_t stride) {
  const ConvGeometry g = detail::pool_geometry("avg_pool2d", x, kernel, stride);
  // An average pool is a convolution whose every weight is 1/k² applied per channel; reusing
  // im2col would cost C× the work, so the window loop is written out once for both directions.
  const std::size_t planes = x.shape()[0] * g.channels, L = g.positions(), plane = g.height * g.width;
  const T scale = T(1) / T(kernel * kernel);
  auto for_each_tap = [g, kernel, planes, L, plane](auto&& fn) {
    parallel_for(0, planes, 1, [&](std::size_t p) {
      for (std::size_t o = 0; o < L; ++o) {
        const std::size_t oh = o / g.out_width, ow = o % g.out_width;
        for (std::size_t ki = 0; ki < kernel; ++ki)
          for (std::size_t kj = 0; kj < kernel; ++kj)
            fn(p * plane + (oh * g.stride + ki) * g.width + ow * g.stride + kj, p * L + o);
      }
    });
  };
  Tensor<T> y = Tensor<T>::zeros({x.shape()[0], g.channels, g.out_height, g.out_width});
  const T* px = x.value().data();
  T* py = y.data();
  for_each_tap([&](std::size_t in, std::size_t out) { py[out] += scale * px[in]; });
  return make_op_result("avg_pool2d", std::move(y), {&x}, [x, scale, for_each_tap](const Tensor<T>& g, const Tensor<T>&) {
    Tensor<T> gx = Tensor<T>::zeros(x.shape());
    T* pgx = gx.data();
    const T* pg = g.data();
    for_each_tap([&](std::size_t in, std::size_t out) { pgx[in] += scale * pg[out]; });
    accumulate_grad(x, std::move(gx));
  });
}

}  // namespace tessera
