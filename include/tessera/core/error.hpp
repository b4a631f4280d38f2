// tessera/core/error.hpp — the one exception type tessera throws, and the check macro.
#pragma once

#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace tessera {

/// Every error tessera reports: bad shapes, bad arguments, unreadable files.
/// The message names the operation and the offending values.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A number for a message: NaN reads "NaN" whatever its sign bit (streams print "-nan").
inline std::string number_text(double value) {
  if (std::isnan(value)) return "NaN";
  std::ostringstream os;
  os << value;
  return os.str();
}

/// A number in the shortest form that reads back to the same double (std::to_chars), for text
/// that must restore a value exactly: 0.1, 1e-300, inf, nan.
inline std::string exact_number_text(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

}  // namespace tessera

/// TESSERA_CHECK(cond, "conv2d: input channels " << c << " != weight's " << w);
/// Throws tessera::Error with the streamed message when `cond` is false.
#define TESSERA_CHECK(cond, message)                 \
  do {                                               \
    if (!(cond)) {                                   \
      std::ostringstream tessera_check_stream_;      \
      tessera_check_stream_ << message;              \
      throw ::tessera::Error(tessera_check_stream_.str()); \
    }                                                \
  } while (false)

/// Unconditional form of TESSERA_CHECK.
#define TESSERA_FAIL(message) TESSERA_CHECK(false, message)
