// tessera/ops/matmul.hpp — matrix products on Eigen: matmul and the fused linear map of Dense.
#pragma once

#include "../autograd/var.hpp"
#include "../core/flops.hpp"

namespace tessera {

/// (M, K) · (K, N) → (M, N). Backward: dA = dY·Bᵀ, dB = Aᵀ·dY.
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  TESSERA_CHECK(sa.size() == 2 && sb.size() == 2 && sa[1] == sb[0],
                "matmul: shapes " << sa << " and " << sb << " do not multiply (need (M, K) and (K, N))");
  const std::size_t m = sa[0], k = sa[1], n = sb[1];
  Tensor<T> y = Tensor<T>::empty({m, n});
  detail::count_matmul_flops(m, n, k);
  y.matrix(m, n).noalias() = a.value().matrix(m, k) * b.value().matrix(k, n);
  return make_op_result("matmul", std::move(y), {&a, &b}, [a, b, m, k, n](const Tensor<T>& g, const Tensor<T>&) {
    if (needs_grad(a)) {
      Tensor<T> ga = Tensor<T>::empty({m, k});
      detail::count_matmul_flops(m, k, n);
      ga.matrix(m, k).noalias() = g.matrix(m, n) * b.value().matrix(k, n).transpose();
      accumulate_grad(a, std::move(ga));
    }
    if (needs_grad(b)) {
      Tensor<T> gb = Tensor<T>::empty({k, n});
      detail::count_matmul_flops(k, n, m);
      gb.matrix(k, n).noalias() = a.value().matrix(m, k).transpose() * g.matrix(m, n);
      accumulate_grad(b, std::move(gb));
    }
  });
}

/// y = x·Wᵀ + b for x (N, in), W (out, in) (PyTorch's layout), b (out) or undefined.
/// Backward: dx = dy·W, dW = dyᵀ·x, db = Σ_n dy.
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& weight, const Var<T>& bias = Var<T>()) {
  const Shape& sx = x.shape();
  const Shape& sw = weight.shape();
  TESSERA_CHECK(sx.size() == 2 && sw.size() == 2 && sx[1] == sw[1],
                "linear: input " << sx << " does not match weight " << sw << " (need (N, in) and (out, in))");
  const std::size_t batch = sx[0], in = sx[1], out = sw[0];
  if (bias.defined())
    TESSERA_CHECK(bias.shape() == Shape{out}, "linear: bias " << bias.shape() << " for weight " << sw);
  Tensor<T> y = Tensor<T>::empty({batch, out});
  auto ym = y.matrix(batch, out);
  detail::count_matmul_flops(batch, out, in);
  ym.noalias() = x.value().matrix(batch, in) * weight.value().matrix(out, in).transpose();
  if (bias.defined()) ym.rowwise() += bias.value().matrix(1, out).row(0);
  return make_op_result("linear", std::move(y), {&x, &weight, &bias},
                        [x, weight, bias, batch, in, out](const Tensor<T>& g, const Tensor<T>&) {
                          const auto gm = g.matrix(batch, out);
                          if (needs_grad(x)) {
                            Tensor<T> gx = Tensor<T>::empty({batch, in});
                            detail::count_matmul_flops(batch, in, out);
                            gx.matrix(batch, in).noalias() = gm * weight.value().matrix(out, in);
                            accumulate_grad(x, std::move(gx));
                          }
                          if (needs_grad(weight)) {
                            Tensor<T> gw = Tensor<T>::empty({out, in});
                            detail::count_matmul_flops(out, in, batch);
                            gw.matrix(out, in).noalias() = gm.transpose() * x.value().matrix(batch, in);
                            accumulate_grad(weight, std::move(gw));
                          }
                          if (needs_grad(bias)) {
                            Tensor<T> gb = Tensor<T>::empty({out});
                            gb.matrix(1, out) = gm.colwise().sum();
                            accumulate_grad(bias, std::move(gb));
                          }
                        });
}

}  // namespace tessera
