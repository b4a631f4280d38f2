// tessera/nn/minibatch_std.hpp — the minibatch standard deviation feature (Karras et al. 2018,
// Progressive GAN): the discriminator sees how varied the batch is, so a generator that draws
// the same image for every z is told apart. The batch is cut into groups of `group` images
// (image n in group n mod (N / group)); for each group, the standard deviation over its images
// of every feature at every position, averaged to one number, becomes an extra feature map:
// (N, C, H, W) → (N, C + 1, H, W). A batch not divisible by `group` is one group.
#pragma once

#include <string>

#include "../ops/elementwise.hpp"
#include "../ops/reduce.hpp"
#include "../ops/shape.hpp"
#include "module.hpp"

namespace tessera::nn {

template <class T>
class MinibatchStd : public Module<T> {
 public:
  explicit MinibatchStd(std::size_t group = 4) : group_(group) {
    TESSERA_CHECK(group > 0, "MinibatchStd: group size must be positive");
  }

  Var<T> forward(const Var<T>& x) override {
    const Shape& s = x.shape();
    TESSERA_CHECK(s.size() == 4 && s[0] > 0, repr() << ": expected (N, C, H, W), got " << s);
    const std::size_t n = s[0], c = s[1], h = s[2], w = s[3];
    const std::size_t g = n % group_ == 0 ? group_ : n, m = n / g;  // g images per group, m groups
    const Var<T> grouped = reshape(x, Shape{g, m, c, h, w});
    const Var<T> centred = grouped - mean(grouped, {0}, /*keepdim=*/true);
    const Var<T> stddev = sqrt(mean(centred * centred, {0}) + T(1e-8));           // (m, C, H, W)
    const Var<T> per_group = mean(stddev, {1, 2, 3}, /*keepdim=*/true);           // (m, 1, 1, 1)
    const Var<T> feature = reshape(Var<T>(Tensor<T>::ones({g, m, 1, h, w})) * reshape(per_group, Shape{1, m, 1, 1, 1}),
                                   Shape{n, 1, h, w});
    return concat<T>({x, feature}, 1);
  }

  std::string repr() const override { return "MinibatchStd(group=" + std::to_string(group_) + ")"; }

 private:
  std::size_t group_;
};

}  // namespace tessera::nn
