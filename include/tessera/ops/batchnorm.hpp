// tessera/ops/batchnorm.hpp — batch normalisation (Ioffe & Szegedy, 2015) over (N, C) or
// (N, C, H, W), per channel c over its M = N·H·W values:
//     x̂ = (x − μ_c) / sqrt(σ²_c + eps),   y = γ_c·x̂ + β_c
// Training uses the batch's μ, σ² (biased) and updates the running statistics as PyTorch:
//     running_mean ← (1 − m)·running_mean + m·μ,   running_var ← (1 − m)·running_var + m·σ²·M/(M − 1)
// Eval uses the running statistics. Backward (training; eval drops the two mean terms):
//     dx = γ·invstd · (dy − mean(dy) − x̂·mean(dy·x̂)),   dγ = Σ dy·x̂,   dβ = Σ dy
// Fused with a rectifier, y = max(z, slope·z) of z = γ·x̂ + β (ReLU: slope 0, LeakyReLU:
// slope α > 0), in the same passes over memory; the backward first turns dy into
// dz = dy·(y > 0 ? 1 : slope), which y's sign alone decides.
// Fused further with a k×k max-pool of stride k (batch_norm's `max_pool` = k), the output is
// the pooled one: each window's largest z (the first, row-major, on ties), rectified — what
// the three layers give, since the rectifier is monotonic. Only the pooled values, each
// window's winning tap and x there are kept: the normalised plane is never written, and the
// backward's sums run over the winners alone (dz is zero everywhere else).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../autograd/var.hpp"
#include "../core/parallel.hpp"
#include "conv.hpp"
#include "rectifier.hpp"

namespace tessera {

namespace detail {
/// Each window's largest z = (x − μ)·scale + shift over its k² taps (taps as window_taps lays
/// them out), the first on ties (">"): z, x and the tap there. Window by window with the
/// running best in registers; with the tap count known at compile time (Count > 0) the loop
/// over windows vectorises. (Its pointers are __restrict, or the compiler gives up checking
/// them for overlap; and the update is an `if`, which GCC 12 if-converts where it does not
/// three dependent selects.)
template <std::size_t Count, class T>
void window_maxima(const T* __restrict taps, std::size_t k, std::size_t wo, T mu, T scale, T shift,
                   T* __restrict best_z, T* __restrict best_x, std::uint16_t* __restrict best_tap) {
  const std::size_t count = Count ? Count : k * k;
#pragma omp simd  // (at -O2 too, with the taps unrolled)
  for (std::size_t ow = 0; ow < wo; ++ow) {
    T z_max = (taps[ow] - mu) * scale + shift, x_max = taps[ow];
    int tap_max = 0;
#pragma GCC unroll 16
    for (std::size_t tap = 1; tap < count; ++tap) {
      const T v = taps[tap * wo + ow], z = (v - mu) * scale + shift;
      if (z > z_max) z_max = z, x_max = v, tap_max = int(tap);
    }
    best_z[ow] = z_max, best_x[ow] = x_max, best_tap[ow] = std::uint16_t(tap_max);
  }
}

/// out = (x − μ)·scale + shift over n values (γ·x̂ + β), rectified if Rectified: the forward's
/// pass over a plane. (omp simd: vectorised at -O2 too, where GCC's cheap cost model would not.)
template <bool Rectified, class T>
void normalise(const T* x, std::size_t n, T mu, T scale, T shift, T slope, T* out) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) {
    const T z = (x[i] - mu) * scale + shift;
    out[i] = Rectified ? rectify(z, slope) : z;
  }
}

/// Σ dz and Σ dz·(x − μ) over n values, added to sum_dz and sum_dz_xc: the two sums of the
/// backward, in one vectorised pass, dz = dy or (Rectified) dy taken back through the
/// rectifier whose output was y. Each plane is summed in float, as one thread's fixed order.
template <bool Rectified, class T>
void gradient_sums(const T* dy, const T* y, const T* x, std::size_t n, T mu, T slope, double& sum_dz, double& sum_dz_xc) {
  T dz_total = T(0), dz_xc_total = T(0);
#pragma omp simd reduction(+ : dz_total, dz_xc_total)
  for (std::size_t i = 0; i < n; ++i) {
    const T dz = Rectified ? rectified_gradient(dy[i], y[i], slope) : dy[i];
    dz_total += dz;
    dz_xc_total += dz * (x[i] - mu);
  }
  sum_dz += double(dz_total), sum_dz_xc += double(dz_xc_total);
}

/// How many channels one task takes: a channel's planes lie a whole image apart, one plane
/// (a few KB) each, too little for the hardware prefetcher to run ahead on; a block of
/// neighbouring channels is read image by image in runs of block planes, and its ~1 MB (of
/// every array a pass reads: bytes_per_channel counts them all) stays in L2 for the second
/// pass. At least one block per thread.
inline std::size_t channels_per_block(std::size_t channels, std::size_t bytes_per_channel) {
  const std::size_t threads = std::size_t(available_threads());
  const std::size_t fit = std::max<std::size_t>(1, (std::size_t(1) << 20) / std::max<std::size_t>(bytes_per_channel, 1));
  return std::max<std::size_t>(1, std::min(fit, (channels + threads - 1) / threads));
}

/// body(c0, c1) for each block [c0, c1) of neighbouring channels (channels_per_block), in parallel.
template <class Body>
void for_each_channel_block(std::size_t channels, std::size_t bytes_per_channel, Body&& body) {
  const std::size_t block = channels_per_block(channels, bytes_per_channel);
  parallel_for(0, (channels + block - 1) / block, 1,
               [&](std::size_t b) { body(b * block, std::min(channels, (b + 1) * block)); });
}
}  // namespace detail

/// Batch normalisation of x (see the top of this file), optionally followed in the same op by
/// a rectifier and then by a max_pool × max_pool max-pool of stride max_pool (0: none).
template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, Tensor<T>& running_mean,
                  Tensor<T>& running_var, bool training, T momentum = T(0.1), T eps = T(1e-5),
                  Rectifier rectifier = {}, std::size_t max_pool = 0) {
  const Shape& s = x.shape();
  TESSERA_CHECK(s.size() == 2 || s.size() == 4, "batch_norm: input must be (N, C) or (N, C, H, W), got " << s);
  const std::size_t batch = s[0], channels = s[1], plane = s.numel(2, s.size()), count = batch * plane;
  const Shape stat_shape{channels};
  TESSERA_CHECK(gamma.shape() == stat_shape && beta.shape() == stat_shape && running_mean.shape() == stat_shape &&
                    running_var.shape() == stat_shape,
                "batch_norm: input " << s << " has " << channels << " channels but weight is " << gamma.shape()
                                     << ", bias " << beta.shape() << ", running_mean " << running_mean.shape()
                                     << ", running_var " << running_var.shape());
  detail::check_rectifier("batch_norm", rectifier);
  TESSERA_CHECK(!training || count > 1,
                "batch_norm: training needs more than one value per channel, got input " << s);
  TESSERA_CHECK(max_pool == 0 || (s.size() == 4 && max_pool <= s[2] && max_pool <= s[3] && max_pool <= 16),
                "batch_norm: a " << max_pool << "x" << max_pool << " max-pool needs (N, C, H, W) at least that large, got "
                                 << s);

  // Each (n, c) plane is summed by Eigen (vectorised), the planes of a channel in double.
  const T* px = x.value().data();
  auto plane_of = [plane](const T* data, std::size_t n_c) {
    return typename Tensor<T>::ConstArrayMap(data + n_c * plane, Eigen::Index(plane));
  };
  const std::size_t k = max_pool, height = k ? s[2] : 0, width = k ? s[3] : 0;
  const std::size_t out_h = k ? height / k : 0, out_w = k ? width / k : 0, pooled = out_h * out_w;
  Tensor<T> mean = Tensor<T>::empty(stat_shape), inv_std = Tensor<T>::empty(stat_shape);
  Tensor<T> y = k ? Tensor<T>::empty({batch, channels, out_h, out_w}) : Tensor<T>::empty(s);
  Tensor<T> x_at_winner = k ? Tensor<T>::empty(y.shape()) : Tensor<T>();
  std::vector<std::uint16_t> winner(k ? y.size() : 0);  // ki·k + kj of each window's maximum
  T* py = y.data();
  detail::for_each_channel_block(channels, batch * plane * sizeof(T), [&](std::size_t c0, std::size_t c1) {
    const std::size_t block = c1 - c0;
    // statistics: each plane's mean and squared deviations (two passes over a plane in cache),
    // combined exactly per channel; image by image over the block's channels
    std::vector<double> plane_mean(training ? batch * block : 0), sum(block), squares(block);
    for (std::size_t n = 0; training && n < batch; ++n)
      for (std::size_t c = c0; c < c1; ++c) {
        const auto values = plane_of(px, n * channels + c);
        const T m = values.sum() / T(plane);
        plane_mean[n * block + c - c0] = double(m);
        sum[c - c0] += double(m) * double(plane);
        squares[c - c0] += double((values - m).square().sum());
      }
    for (std::size_t c = c0; c < c1; ++c) {
      T m, var;
      if (training) {
        const double mean_all = sum[c - c0] / double(count);
        double sq = squares[c - c0];
        for (std::size_t n = 0; n < batch; ++n) {
          const double d = plane_mean[n * block + c - c0] - mean_all;
          sq += double(plane) * d * d;
        }
        m = T(mean_all);
        var = T(sq / double(count));
        running_mean[c] = (T(1) - momentum) * running_mean[c] + momentum * m;
        running_var[c] = (T(1) - momentum) * running_var[c] + momentum * var * T(count) / T(count - 1);
      } else {
        m = running_mean[c];
        var = running_var[c];
      }
      mean[c] = m;
      inv_std[c] = T(1) / std::sqrt(var + eps);
    }
    const T slope = T(rectifier.slope);
    std::vector<T> taps(k * k * out_w), best(out_w);
    for (std::size_t n = 0; n < batch; ++n)
      for (std::size_t c = c0; c < c1; ++c) {
        // locals: the stores cannot alias them
        const T m = mean[c], sc = gamma.value()[c] * inv_std[c], sh = beta.value()[c];
        if (!k) {
          const T* in = px + (n * channels + c) * plane;
          T* out = py + (n * channels + c) * plane;
          if (rectifier.enabled)
            detail::normalise<true>(in, plane, m, sc, sh, slope, out);
          else
            detail::normalise<false>(in, plane, m, sc, sh, slope, out);
          continue;
        }
        // pooled: each output row's window taps side by side, then each window's maximum
        for (std::size_t oh = 0; oh < out_h; ++oh) {
          const std::size_t o = (n * channels + c) * pooled + oh * out_w;
          detail::window_taps(px + (n * channels + c) * plane, width, oh, k, out_w, taps.data());
          if (k == 2)  // the common 2×2 pool, its four taps unrolled
            detail::window_maxima<4>(taps.data(), k, out_w, m, sc, sh, best.data(), x_at_winner.data() + o, winner.data() + o);
          else
            detail::window_maxima<0>(taps.data(), k, out_w, m, sc, sh, best.data(), x_at_winner.data() + o, winner.data() + o);
          std::copy_n(best.data(), out_w, py + o);
          if (rectifier.enabled) detail::rectify_in_place(py + o, out_w, slope);
        }
      }
  });

  // The backward recomputes x̂ from x and the saved μ, 1/σ rather than keeping a copy of it.
  return make_op_result(
      "batch_norm", std::move(y), {&x, &gamma, &beta},
      [x, gamma, beta, mean = std::move(mean), inv_std = std::move(inv_std), training, batch, channels, plane,
       count, rectifier, k, width, out_w, pooled, winner = std::move(winner),
       x_at_winner = std::move(x_at_winner)](const Tensor<T>& gy, const Tensor<T>& y) {
        Tensor<T> dgamma = Tensor<T>::empty({channels}), dbeta = Tensor<T>::empty({channels});
        Tensor<T> dx = needs_grad(x) ? Tensor<T>::empty(x.shape()) : Tensor<T>();
        std::vector<std::size_t> tap_offset(k * k);  // window tap → offset from the window's corner
        for (std::size_t tap = 0; tap < k * k; ++tap) tap_offset[tap] = tap / k * width + tap % k;
        const T* pg = gy.data();
        const T* px = x.value().data();
        const T* py = y.data();
        // dz, the gradient at the normalisation's output, is formed on the fly in both passes;
        // the plain op is instantiated without the rectifier's select and never reads y.
        // Pooled, dz lives only at the winners: the sums run over the pooled planes, against
        // x there, and dx is the two mean terms everywhere plus dz's term at the winners
        auto per_channel = [&](auto rectified) {
          constexpr bool kRectified = decltype(rectified)::value;
          // both passes read dy, x (and y): a block of them all stays in L2 for the second
          const std::size_t arrays = kRectified ? 3 : 2;
          detail::for_each_channel_block(channels, arrays * batch * plane * sizeof(T), [&](std::size_t c0, std::size_t c1) {
            const std::size_t block = c1 - c0;
            const T slope = T(rectifier.slope);
            const std::size_t dz_size = k ? pooled : plane;
            const T* centre_of = k ? x_at_winner.data() : px;  // the x each dz multiplies
            std::vector<double> sum_dz(block), sum_dz_xc(block);  // Σ dz and Σ dz·(x − μ) per channel
            for (std::size_t n = 0; n < batch; ++n)  // image by image over the block's channels
              for (std::size_t c = c0; c < c1; ++c) {
                const std::size_t offset = (n * channels + c) * dz_size;
                detail::gradient_sums<kRectified>(pg + offset, py + offset, centre_of + offset, dz_size, mean[c], slope,
                                                  sum_dz[c - c0], sum_dz_xc[c - c0]);
              }
            for (std::size_t c = c0; c < c1; ++c) {
              dgamma[c] = T(sum_dz_xc[c - c0] * double(inv_std[c]));
              dbeta[c] = T(sum_dz[c - c0]);
            }
            if (!dx.defined()) return;
            T* pdx = dx.data();
            for (std::size_t n = 0; n < batch; ++n)
              for (std::size_t c = c0; c < c1; ++c) {
                // locals, not captures: a store through a T* could alias a captured T, which
                // would keep these loops from vectorising
                const T mu = mean[c], istd = inv_std[c];
                const double sum_dz_xhat = sum_dz_xc[c - c0] * double(istd);
                const T mean_dz = training ? T(sum_dz[c - c0] / double(count)) : T(0);
                const T mean_dz_xhat = training ? T(sum_dz_xhat / double(count)) : T(0);
                const T scale = gamma.value()[c] * istd, xhat_scale = mean_dz_xhat * istd;
                const std::size_t offset = (n * channels + c) * plane, dz_offset = (n * channels + c) * dz_size;
                const T* in = px + offset;
                const T* dy = pg + dz_offset;
                const T* out = py + dz_offset;
                T* grad = pdx + offset;
                if (k) {
#pragma omp simd
                  for (std::size_t i = 0; i < plane; ++i) grad[i] = scale * (-mean_dz - (in[i] - mu) * xhat_scale);
                  const std::uint16_t* tap_of = winner.data() + dz_offset;
                  for (std::size_t oh = 0, o = 0; oh < pooled / out_w; ++oh)
                    for (std::size_t ow = 0; ow < out_w; ++ow, ++o) {
                      const T dz = kRectified ? detail::rectified_gradient(dy[o], out[o], slope) : dy[o];
                      grad[oh * k * width + ow * k + tap_offset[tap_of[o]]] += scale * dz;
                    }
                  continue;
                }
#pragma omp simd
                for (std::size_t i = 0; i < plane; ++i) {
                  const T dz = kRectified ? detail::rectified_gradient(dy[i], out[i], slope) : dy[i];
                  grad[i] = scale * (dz - mean_dz - (in[i] - mu) * xhat_scale);
                }
              }
          });
        };
        if (rectifier.enabled)
          per_channel(std::true_type{});
        else
          per_channel(std::false_type{});
        if (dx.defined()) accumulate_grad(x, std::move(dx));
        accumulate_grad(gamma, std::move(dgamma));
        accumulate_grad(beta, std::move(dbeta));
      });
}

}  // namespace tessera
