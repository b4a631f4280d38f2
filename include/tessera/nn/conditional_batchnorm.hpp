// tessera/nn/conditional_batchnorm.hpp — class-conditional batch normalisation (de Vries et al.
// 2017; the conditional generators of SNGAN and BigGAN): the batch statistics as BatchNorm's, but
// the affine map after them is chosen by each image's class,
//     y = γ[label]·x̂ + β[label]
// γ and β are per-class rows, weight (classes, C) from 1 and bias (classes, C) from 0: a
// generator can then draw every class from one set of convolutions. With every label equal to
// k it is BatchNorm with weight γ[k] and bias β[k]. Buffers running_mean and running_var as
// BatchNorm's.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "../ops/batchnorm.hpp"
#include "../ops/elementwise.hpp"
#include "../ops/shape.hpp"
#include "module.hpp"

namespace tessera::nn {

template <class T>
class ConditionalBatchNorm : public Module<T> {
 public:
  Var<T> weight, bias, running_mean, running_var;

  ConditionalBatchNorm(std::size_t features, std::size_t num_classes, double eps = 1e-5, double momentum = 0.1)
      : features_(features), classes_(num_classes), eps_(eps), momentum_(momentum) {
    TESSERA_CHECK(features > 0 && num_classes > 0, "ConditionalBatchNorm: features and classes must be positive");
    weight = this->register_parameter("weight", Tensor<T>::ones({num_classes, features}));
    bias = this->register_parameter("bias", Tensor<T>::zeros({num_classes, features}));
    running_mean = this->register_buffer("running_mean", Tensor<T>::zeros({features}));
    running_var = this->register_buffer("running_var", Tensor<T>::ones({features}));
  }

  /// x (N, C) or (N, C, H, W) and its N labels.
  Var<T> forward(const Var<T>& x, const std::vector<std::int64_t>& labels) {
    const Shape& s = x.shape();
    TESSERA_CHECK((s.size() == 2 || s.size() == 4) && s[1] == features_,
                  repr() << ": expected (N, " << features_ << ") or (N, " << features_ << ", H, W), got " << s);
    TESSERA_CHECK(labels.size() == s[0], repr() << ": " << labels.size() << " labels for a batch of " << s[0]);
    const Var<T> ones(Tensor<T>::ones({features_})), zeros(Tensor<T>::zeros({features_}));  // no affine of its own
    const Var<T> normalized = batch_norm(x, ones, zeros, running_mean.value(), running_var.value(), this->is_training(),
                                         T(momentum_), T(eps_));
    const Shape per_image = s.size() == 4 ? Shape{s[0], features_, 1, 1} : Shape{s[0], features_};
    return normalized * reshape(embedding(weight, labels), per_image) + reshape(embedding(bias, labels), per_image);
  }

  std::string repr() const override {
    std::ostringstream os;
    os << "ConditionalBatchNorm(" << features_ << ", classes=" << classes_ << ", eps=" << eps_ << ", momentum=" << momentum_ << ')';
    return os.str();
  }

 private:
  std::size_t features_, classes_;
  double eps_, momentum_;
};

}  // namespace tessera::nn
