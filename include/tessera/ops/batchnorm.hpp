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
#pragma once

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../autograd/var.hpp"
#include "../core/parallel.hpp"

namespace tessera {

/// What follows the normalisation inside batch_norm: nothing, or max(z, slope·z).
struct Rectifier {
  bool enabled = false;
  double slope = 0;  // ≥ 0
};

template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, Tensor<T>& running_mean,
                  Tensor<T>& running_var, bool training, T momentum = T(0.1), T eps = T(1e-5),
                  Rectifier rectifier = {}) {
  const Shape& s = x.shape();
  TESSERA_CHECK(s.size() == 2 || s.size() == 4, "batch_norm: input must be (N, C) or (N, C, H, W), got " << s);
  const std::size_t batch = s[0], channels = s[1], plane = s.numel(2, s.size()), count = batch * plane;
  const Shape stat_shape{channels};
  TESSERA_CHECK(gamma.shape() == stat_shape && beta.shape() == stat_shape && running_mean.shape() == stat_shape &&
                    running_var.shape() == stat_shape,
                "batch_norm: input " << s << " has " << channels << " channels but weight is " << gamma.shape()
                                     << ", bias " << beta.shape() << ", running_mean " << running_mean.shape()
                                     << ", running_var " << running_var.shape());
  TESSERA_CHECK(!rectifier.enabled || rectifier.slope >= 0,
                "batch_norm: the rectifier's slope must be non-negative, got " << rectifier.slope);
  TESSERA_CHECK(!training || count > 1,
                "batch_norm: training needs more than one value per channel, got input " << s);

  // Each (n, c) plane is summed by Eigen (vectorised), the planes of a channel in double.
  const T* px = x.value().data();
  auto plane_of = [plane](const T* data, std::size_t n_c) {
    return typename Tensor<T>::ConstArrayMap(data + n_c * plane, Eigen::Index(plane));
  };
  Tensor<T> mean = Tensor<T>::empty(stat_shape), inv_std = Tensor<T>::empty(stat_shape);
  Tensor<T> y = Tensor<T>::empty(s);
  T* py = y.data();
  parallel_for(0, channels, 1, [&](std::size_t c) {
    T mu, var;
    if (training) {  // two passes: stable for large M and large means
      double sum = 0, sq = 0;
      for (std::size_t n = 0; n < batch; ++n) sum += double(plane_of(px, n * channels + c).sum());
      mu = T(sum / double(count));
      for (std::size_t n = 0; n < batch; ++n) sq += double((plane_of(px, n * channels + c) - mu).square().sum());
      var = T(sq / double(count));
      running_mean[c] = (T(1) - momentum) * running_mean[c] + momentum * mu;
      running_var[c] = (T(1) - momentum) * running_var[c] + momentum * var * T(count) / T(count - 1);
    } else {
      mu = running_mean[c];
      var = running_var[c];
    }
    const T istd = T(1) / std::sqrt(var + eps), scale = gamma.value()[c] * istd, shift = beta.value()[c];
    mean[c] = mu;
    inv_std[c] = istd;
    const bool rectify = rectifier.enabled;
    const T slope = T(rectifier.slope);
    for (std::size_t n = 0; n < batch; ++n) {
      const T* in = px + (n * channels + c) * plane;
      T* out = py + (n * channels + c) * plane;
      for (std::size_t i = 0; i < plane; ++i) {
        const T z = (in[i] - mu) * scale + shift;  // γ·x̂ + β
        out[i] = rectify && !(z > T(0)) ? slope * z + T(0) : z;  // + 0: relu's +0, not −0
      }
    }
  });

  // The backward recomputes x̂ from x and the saved μ, 1/σ rather than keeping a copy of it.
  return make_op_result(
      "batch_norm", std::move(y), {&x, &gamma, &beta},
      [x, gamma, beta, mean = std::move(mean), inv_std = std::move(inv_std), training, batch, channels, plane,
       count, plane_of, rectifier](const Tensor<T>& gy, const Tensor<T>& y) {
        Tensor<T> dgamma = Tensor<T>::empty({channels}), dbeta = Tensor<T>::empty({channels});
        Tensor<T> dx = needs_grad(x) ? Tensor<T>::empty(x.shape()) : Tensor<T>();
        const T* pg = gy.data();
        const T* px = x.value().data();
        const T* py = y.data();
        // dz, the gradient at the normalisation's output, is formed on the fly in both passes;
        // the plain op is instantiated without the rectifier's select and never reads y
        auto per_channel = [&](auto rectified) {
          parallel_for(0, channels, 1, [&](std::size_t c) {
            // locals, not captures: a store through a T* could alias a captured T, which
            // would keep these loops from vectorising
            const T mu = mean[c], istd = inv_std[c], slope = T(rectifier.slope);
            double sum_dz = 0, sum_dz_xc = 0;  // Σ dz and Σ dz·(x − μ)
            // a rectified plane's dz goes through a cache-sized buffer: Eigen 3.4 does not
            // vectorise select(), a plain loop does. A tensor, so 64-byte aligned: Eigen's sum
            // splits at alignment, and a malloc'd buffer would change the rounding run to run
            Tensor<T> dz_plane = decltype(rectified)::value ? Tensor<T>::empty({plane}) : Tensor<T>();
            for (std::size_t n = 0; n < batch; ++n) {
              const T* dz = pg + (n * channels + c) * plane;
              if constexpr (decltype(rectified)::value) {
                const T* out = py + (n * channels + c) * plane;
                for (std::size_t i = 0; i < plane; ++i) dz_plane[i] = out[i] > T(0) ? dz[i] : slope * dz[i];
                dz = dz_plane.data();
              }
              const auto dz_map = plane_of(dz, 0);
              sum_dz += double(dz_map.sum());
              sum_dz_xc += double(((plane_of(px, n * channels + c) - mu) * dz_map).sum());
            }
            const double sum_dz_xhat = sum_dz_xc * double(istd);
            dgamma[c] = T(sum_dz_xhat);
            dbeta[c] = T(sum_dz);
            if (!dx.defined()) return;
            const T mean_dz = training ? T(sum_dz / double(count)) : T(0);
            const T mean_dz_xhat = training ? T(sum_dz_xhat / double(count)) : T(0);
            const T scale = gamma.value()[c] * istd, xhat_scale = mean_dz_xhat * istd;
            T* pdx = dx.data();
            for (std::size_t n = 0; n < batch; ++n) {
              const std::size_t offset = (n * channels + c) * plane;
              const T* dy = pg + offset;
              const T* in = px + offset;
              const T* out = py + offset;
              T* grad = pdx + offset;
              for (std::size_t i = 0; i < plane; ++i) {
                T dz = dy[i];
                if constexpr (decltype(rectified)::value) dz = out[i] > T(0) ? dz : slope * dz;
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
