// tessera/data/dataset.hpp — what every dataset is: a size, class names, and example i as an
// image (C, H, W) in [0, 1] with its integer label.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.hpp"

namespace tessera::data {

struct Example {
  Tensor<float> image;  // (C, H, W), values in [0, 1]
  std::int64_t label = 0;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::size_t size() const = 0;
  /// Example i; the same i always gives the same example.
  virtual Example get(std::size_t i) const = 0;
  /// Class names, indexed by label.
  virtual const std::vector<std::string>& classes() const = 0;
};

}  // namespace tessera::data
