// tessera/nn/padding.hpp — a convolution's padding: a number, or Keras' "same" / "valid".
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>

#include "../core/error.hpp"

namespace tessera::nn {

/// Conv2D(3, 64, 4, 2, 1) or Conv2D(3, 64, 4, 2, "same"), as Keras' padding='same'.
struct Padding {
  std::size_t value = 0;
  bool same = false;

  template <class Int, std::enable_if_t<std::is_integral_v<Int>, int> = 0>
  Padding(Int p) : value(static_cast<std::size_t>(p)) {  // NOLINT: implicit on purpose
    TESSERA_CHECK(p >= 0, "padding must be non-negative, got " << p);
  }
  Padding(const char* mode) : Padding(std::string(mode)) {}  // NOLINT
  Padding(const std::string& mode) {  // NOLINT
    TESSERA_CHECK(mode == "same" || mode == "valid", "padding must be a number, \"same\" or \"valid\", got \"" << mode << '"');
    same = mode == "same";
  }

  /// The symmetric padding that gives Keras' 'same' output size (H/stride for a convolution,
  /// H·stride for a transposed one): (kernel − stride) / 2, which must be whole.
  std::size_t resolve(const char* layer, std::size_t kernel, std::size_t stride) const {
    if (!same) return value;
    TESSERA_CHECK(kernel >= stride && (kernel - stride) % 2 == 0,
                  layer << ": padding \"same\" with kernel " << kernel << " and stride " << stride
                        << " would need asymmetric padding; give the padding as a number");
    return (kernel - stride) / 2;
  }
};

}  // namespace tessera::nn
