// tessera/ops/batchnorm.hpp — batch normalisation (Ioffe & Szegedy, 2015) as a differentiable op:
// the argument checks, the forward call and the backward closure. The numerics, and the
// formulas, are kernels/batchnorm.hpp. A rectifier and then a k×k max-pool of stride k can
// follow in the same op (Sequential fuses BatchNorm + ReLU / LeakyReLU [+ MaxPool2D(k)] so).
#pragma once

#include <cstddef>
#include <utility>

#include "../autograd/var.hpp"
#include "../kernels/batchnorm.hpp"
#include "../kernels/epilogue.hpp"

namespace tessera {

/// Batch normalisation of x (N, C) or (N, C, H, W) with weight γ and bias β (C), training on
/// the batch's statistics (moving the running ones) or evaluating with the running ones;
/// optionally followed by a rectifier and then a max_pool × max_pool max-pool of stride
/// max_pool (0: none).
template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, Tensor<T>& running_mean,
                  Tensor<T>& running_var, bool training, T momentum = T(0.1), T eps = T(1e-5),
                  Rectifier rectifier = {}, std::size_t max_pool = 0) {
  const Shape& s = x.shape();
  TESSERA_CHECK(s.size() == 2 || s.size() == 4, "batch_norm: input must be (N, C) or (N, C, H, W), got " << s);
  const std::size_t channels = s[1], count = s[0] * s.numel(2, s.size());
  const Shape stat_shape{channels};
  TESSERA_CHECK(gamma.shape() == stat_shape && beta.shape() == stat_shape && running_mean.shape() == stat_shape &&
                    running_var.shape() == stat_shape,
                "batch_norm: input " << s << " has " << channels << " channels but weight is " << gamma.shape()
                                     << ", bias " << beta.shape() << ", running_mean " << running_mean.shape()
                                     << ", running_var " << running_var.shape());
  kernels::check_rectifier("batch_norm", rectifier);
  TESSERA_CHECK(!training || count > 1,
                "batch_norm: training needs more than one value per channel, got input " << s);
  TESSERA_CHECK(max_pool == 0 || (s.size() == 4 && max_pool <= s[2] && max_pool <= s[3] && max_pool <= 16),
                "batch_norm: a " << max_pool << "x" << max_pool << " max-pool needs (N, C, H, W) at least that large, got "
                                 << s);
  kernels::BatchNormKernel<T> kernel(s, training, kernels::Epilogue<T>{nullptr, rectifier, max_pool});
  Tensor<T> y = kernel.forward(x.value(), gamma.value().data(), beta.value().data(), running_mean.data(),
                               running_var.data(), momentum, eps);
  return make_op_result("batch_norm", std::move(y), {&x, &gamma, &beta},
                        [x, gamma, beta, kernel = std::move(kernel), channels](const Tensor<T>& gy, const Tensor<T>& y) {
                          Tensor<T> dgamma = Tensor<T>::empty({channels}), dbeta = Tensor<T>::empty({channels});
                          Tensor<T> dx = needs_grad(x) ? Tensor<T>::empty(x.shape()) : Tensor<T>();
                          kernel.backward(gy, x.value(), y, gamma.value().data(), dx, dgamma, dbeta);
                          if (dx.defined()) accumulate_grad(x, std::move(dx));
                          accumulate_grad(gamma, std::move(dgamma));
                          accumulate_grad(beta, std::move(dbeta));
                        });
}

}  // namespace tessera
