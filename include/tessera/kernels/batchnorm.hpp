// tessera/kernels/batchnorm.hpp — batch normalisation's numerics (Ioffe & Szegedy, 2015) over
// (N, C) or (N, C, H, W), per channel c over its M = N·H·W values:
//     x̂ = (x − μ_c) / sqrt(σ²_c + eps),   y = γ_c·x̂ + β_c
// Training uses the batch's μ, σ² (biased) and updates the running statistics as PyTorch:
//     running_mean ← (1 − m)·running_mean + m·μ,   running_var ← (1 − m)·running_var + m·σ²·M/(M − 1)
// Eval uses the running statistics. Backward (training; eval drops the two mean terms):
//     dx = γ·invstd · (dy − mean(dy) − x̂·mean(dy·x̂)),   dγ = Σ dy·x̂,   dβ = Σ dy
// With an epilogue (epilogue.hpp), y = max(z, slope·z) of z = γ·x̂ + β, in the same passes over
// memory; the backward first turns dy into dz = dy·(y > 0 ? 1 : slope), which y's sign alone
// decides. Pooled further over k×k windows of stride k, the output is each window's largest z
// (the first on ties), rectified — what the layers give one by one, since the rectifier is
// monotonic. Only the pooled values, each window's winning tap and x there are kept: the
// normalised plane is never written, and the backward's sums run over the winners alone (dz is
// zero everywhere else).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "epilogue.hpp"

namespace tessera::kernels {

namespace detail {
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

/// One batch normalisation of an input of `shape`: forward() computes y and keeps what
/// backward() needs (μ, 1/σ, and where pooled each window's winner), so an op holds one of these
/// in its backward closure. The epilogue's bias is unused (β is BatchNorm's own shift).
template <class T>
class BatchNormKernel {
 public:
  BatchNormKernel(const Shape& shape, bool training, const Epilogue<T>& epilogue)
      : training_(training), epilogue_(epilogue), batch_(shape[0]), channels_(shape[1]),
        plane_(shape.numel(2, shape.size())), height_(epilogue.pool ? shape[2] : 0), width_(epilogue.pool ? shape[3] : 0) {}

  /// y = γ·x̂ + β then the epilogue, x (N, C[, H, W]); in training the running statistics move.
  Tensor<T> forward(const Tensor<T>& x, const T* gamma, const T* beta, T* running_mean, T* running_var, T momentum, T eps) {
    const std::size_t batch = batch_, channels = channels_, plane = plane_, count = batch * plane, k = epilogue_.pool;
    // Each (n, c) plane is summed by Eigen (vectorised), the planes of a channel in double.
    const T* px = x.data();
    auto plane_of = [plane](const T* data, std::size_t n_c) {
      return typename Tensor<T>::ConstArrayMap(data + n_c * plane, Eigen::Index(plane));
    };
    const std::size_t out_h = k ? height_ / k : 0, out_w = k ? width_ / k : 0, pooled = out_h * out_w;
    mean_ = Tensor<T>::empty({channels});
    inv_std_ = Tensor<T>::empty({channels});
    Tensor<T> y = k ? Tensor<T>::empty({batch, channels, out_h, out_w}) : Tensor<T>::empty(x.shape());
    if (k) x_at_winner_ = Tensor<T>::empty(y.shape());
    winner_.assign(k ? y.size() : 0, 0);  // ki·k + kj of each window's maximum
    T* py = y.data();
    detail::for_each_channel_block(channels, count * sizeof(T), [&](std::size_t c0, std::size_t c1) {
      const std::size_t block = c1 - c0;
      // statistics: each plane's mean and squared deviations (two passes over a plane in cache),
      // combined exactly per channel; image by image over the block's channels
      std::vector<double> plane_mean(training_ ? batch * block : 0), sum(block), squares(block);
      for (std::size_t n = 0; training_ && n < batch; ++n)
        for (std::size_t c = c0; c < c1; ++c) {
          const auto values = plane_of(px, n * channels + c);
          const T m = values.sum() / T(plane);
          plane_mean[n * block + c - c0] = double(m);
          sum[c - c0] += double(m) * double(plane);
          squares[c - c0] += double((values - m).square().sum());
        }
      for (std::size_t c = c0; c < c1; ++c) {
        T m, var;
        if (training_) {
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
        mean_[c] = m;
        inv_std_[c] = T(1) / std::sqrt(var + eps);
      }
      const T slope = T(epilogue_.rectifier.slope);
      std::vector<T> taps(k * k * out_w), best(out_w);
      for (std::size_t n = 0; n < batch; ++n)
        for (std::size_t c = c0; c < c1; ++c) {
          // locals: the stores cannot alias them
          const T m = mean_[c], sc = gamma[c] * inv_std_[c], sh = beta[c];
          if (!k) {
            const T* in = px + (n * channels + c) * plane;
            T* out = py + (n * channels + c) * plane;
            if (epilogue_.rectifier.enabled)
              detail::normalise<true>(in, plane, m, sc, sh, slope, out);
            else
              detail::normalise<false>(in, plane, m, sc, sh, slope, out);
            continue;
          }
          // pooled: each output row's window taps side by side, then each window's largest z
          auto z_of = [m, sc, sh](T v) { return (v - m) * sc + sh; };
          for (std::size_t oh = 0; oh < out_h; ++oh) {
            const std::size_t o = (n * channels + c) * pooled + oh * out_w;
            window_taps(px + (n * channels + c) * plane, width_, oh, k, k, out_w, taps.data());
            if (k == 2)  // the common 2×2 pool, its four taps unrolled
              window_maxima<4, true, true>(taps.data(), 4, out_w, z_of, best.data(), x_at_winner_.data() + o, winner_.data() + o);
            else
              window_maxima<0, true, true>(taps.data(), k * k, out_w, z_of, best.data(), x_at_winner_.data() + o, winner_.data() + o);
            std::copy_n(best.data(), out_w, py + o);
            epilogue_.rectify(py + o, out_w);
          }
        }
    });
    return y;
  }

  /// The gradients from dy at the output y: dγ and dβ, and dx if `dx` is defined (x's shape).
  /// x̂ is recomputed from x and the saved μ, 1/σ rather than kept.
  void backward(const Tensor<T>& gy, const Tensor<T>& x, const Tensor<T>& y, const T* gamma, Tensor<T>& dx,
                Tensor<T>& dgamma, Tensor<T>& dbeta) const {
    if (epilogue_.rectifier.enabled)
      backward_as<true>(gy, x, y, gamma, dx, dgamma, dbeta);
    else
      backward_as<false>(gy, x, y, gamma, dx, dgamma, dbeta);
  }

 private:
  // dz, the gradient at the normalisation's output, is formed on the fly in both passes; the
  // plain op is instantiated without the rectifier's blend and never reads y. Pooled, dz lives
  // only at the winners: the sums run over the pooled planes, against x there, and dx is the two
  // mean terms everywhere plus dz's term at the winners.
  template <bool Rectified>
  void backward_as(const Tensor<T>& gy, const Tensor<T>& x, const Tensor<T>& y, const T* gamma, Tensor<T>& dx,
                   Tensor<T>& dgamma, Tensor<T>& dbeta) const {
    const std::size_t batch = batch_, channels = channels_, plane = plane_, count = batch * plane, k = epilogue_.pool;
    const std::size_t width = width_, out_w = k ? width / k : 0, pooled = k ? (height_ / k) * out_w : 0;
    std::vector<std::size_t> tap_offset(k * k);  // window tap → offset from the window's corner
    for (std::size_t tap = 0; tap < k * k; ++tap) tap_offset[tap] = tap / k * width + tap % k;
    const T* pg = gy.data();
    const T* px = x.data();
    const T* py = y.data();
    // both passes read dy, x (and y): a block of them all stays in L2 for the second
    const std::size_t arrays = Rectified ? 3 : 2;
    detail::for_each_channel_block(channels, arrays * count * sizeof(T), [&](std::size_t c0, std::size_t c1) {
      const std::size_t block = c1 - c0;
      const T slope = T(epilogue_.rectifier.slope);
      const std::size_t dz_size = k ? pooled : plane;
      const T* centre_of = k ? x_at_winner_.data() : px;  // the x each dz multiplies
      std::vector<double> sum_dz(block), sum_dz_xc(block);  // Σ dz and Σ dz·(x − μ) per channel
      for (std::size_t n = 0; n < batch; ++n)  // image by image over the block's channels
        for (std::size_t c = c0; c < c1; ++c) {
          const std::size_t offset = (n * channels + c) * dz_size;
          detail::gradient_sums<Rectified>(pg + offset, py + offset, centre_of + offset, dz_size, mean_[c], slope,
                                           sum_dz[c - c0], sum_dz_xc[c - c0]);
        }
      for (std::size_t c = c0; c < c1; ++c) {
        dgamma[c] = T(sum_dz_xc[c - c0] * double(inv_std_[c]));
        dbeta[c] = T(sum_dz[c - c0]);
      }
      if (!dx.defined()) return;
      T* pdx = dx.data();
      for (std::size_t n = 0; n < batch; ++n)
        for (std::size_t c = c0; c < c1; ++c) {
          // locals, not members: a store through a T* could alias a member T, which would keep
          // these loops from vectorising
          const T mu = mean_[c], istd = inv_std_[c];
          const double sum_dz_xhat = sum_dz_xc[c - c0] * double(istd);
          const T mean_dz = training_ ? T(sum_dz[c - c0] / double(count)) : T(0);
          const T mean_dz_xhat = training_ ? T(sum_dz_xhat / double(count)) : T(0);
          const T scale = gamma[c] * istd, xhat_scale = mean_dz_xhat * istd;
          const std::size_t offset = (n * channels + c) * plane, dz_offset = (n * channels + c) * dz_size;
          const T* in = px + offset;
          const T* dy = pg + dz_offset;
          const T* out = py + dz_offset;
          T* grad = pdx + offset;
          if (k) {
#pragma omp simd
            for (std::size_t i = 0; i < plane; ++i) grad[i] = scale * (-mean_dz - (in[i] - mu) * xhat_scale);
            const std::uint16_t* tap_of = winner_.data() + dz_offset;
            for (std::size_t oh = 0, o = 0; oh < pooled / out_w; ++oh)
              for (std::size_t ow = 0; ow < out_w; ++ow, ++o) {
                const T dz = Rectified ? rectified_gradient(dy[o], out[o], slope) : dy[o];
                grad[oh * k * width + ow * k + tap_offset[tap_of[o]]] += scale * dz;
              }
            continue;
          }
#pragma omp simd
          for (std::size_t i = 0; i < plane; ++i) {
            const T dz = Rectified ? rectified_gradient(dy[i], out[i], slope) : dy[i];
            grad[i] = scale * (dz - mean_dz - (in[i] - mu) * xhat_scale);
          }
        }
    });
  }

  bool training_;
  Epilogue<T> epilogue_;
  std::size_t batch_, channels_, plane_, height_, width_;
  Tensor<T> mean_, inv_std_, x_at_winner_;
  std::vector<std::uint16_t> winner_;
};

}  // namespace tessera::kernels
