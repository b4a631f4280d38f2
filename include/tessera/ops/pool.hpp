// tessera/ops/pool.hpp — max and average pooling over k×k windows (no padding).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../autograd/var.hpp"
#include "../core/parallel.hpp"
#include "../kernels/conv/geometry.hpp"
#include "../kernels/epilogue.hpp"

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
/// PyTorch, so ties never split or duplicate it. The forward keeps each window's winning tap
/// (2 bytes an output) for the backward.
template <class T>
Var<T> max_pool2d(const Var<T>& x, std::size_t kernel, std::size_t stride) {
  const ConvGeometry g = detail::pool_geometry("max_pool2d", x, kernel, stride);
  TESSERA_CHECK(kernel <= 256, "max_pool2d: kernel " << kernel << " is larger than 256");
  const std::size_t planes = x.shape()[0] * g.channels, L = g.positions(), plane = g.height * g.width;
  Tensor<T> y = Tensor<T>::empty({x.shape()[0], g.channels, g.out_height, g.out_width});
  std::vector<std::uint16_t> winner(y.size());  // ki·k + kj of each output's maximum
  const T* px = x.value().data();
  T* py = y.data();
  parallel_for_ranges(0, planes, 1, [&](std::size_t first, std::size_t last) {
    std::vector<T> taps(kernel * kernel * g.out_width);
    auto value = [](T v) { return v; };
    for (std::size_t p = first; p < last; ++p)
      for (std::size_t oh = 0; oh < g.out_height; ++oh) {
        const std::size_t o = p * L + oh * g.out_width;
        kernels::window_taps(px + p * plane, g.width, oh, kernel, stride, g.out_width, taps.data());
        kernels::window_maxima<0, false, true>(taps.data(), kernel * kernel, g.out_width, value, py + o,
                                               static_cast<T*>(nullptr), winner.data() + o);
      }
  });
  return make_op_result("max_pool2d", std::move(y), {&x},
                        [x, g, winner = std::move(winner), planes, L, plane](const Tensor<T>& gy, const Tensor<T>&) {
                          Tensor<T> gx = Tensor<T>::empty(x.shape());
                          T* pgx = gx.data();
                          const T* pg = gy.data();
                          parallel_for(0, planes, 1, [&](std::size_t p) {  // each window lies in its own plane
                            T* plane_grad = pgx + p * plane;
                            std::fill(plane_grad, plane_grad + plane, T(0));
                            // in output order: overlapping windows sharing a maximum add up deterministically
                            for (std::size_t oh = 0, o = p * L; oh < g.out_height; ++oh)
                              for (std::size_t ow = 0; ow < g.out_width; ++ow, ++o) {
                                const std::size_t tap = winner[o];
                                plane_grad[(oh * g.stride + tap / g.kernel) * g.width + ow * g.stride + tap % g.kernel] += pg[o];
                              }
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
