// tessera/io/state_mismatch.hpp — what a saved state and the model it is loaded into disagree
// on, gathered while walking the model and reported as one line, the same for checkpoints and
// .npz state dicts:
//   missing: "0.bias"; unexpected: "9.weight"; shape mismatch: "4.weight" file (128, 1) vs model (1, 128)
#pragma once

#include <array>
#include <sstream>
#include <string>
#include <vector>

namespace tessera::io {

class StateMismatch {
 public:
  enum Category { missing, unexpected, wrong_kind, shape_mismatch };

  void add(Category category, std::string item) { items_[category].push_back(std::move(item)); }
  bool empty() const {
    for (const auto& list : items_)
      if (!list.empty()) return false;
    return true;
  }

  /// "missing: a, b; shape mismatch: c", each list cut after `shown` items ("and 12 more"):
  /// a different architecture can disagree on hundreds of names, and one line must stay readable.
  std::string summary(std::size_t shown = 6) const {
    static const std::array<const char*, 4> labels{"missing", "unexpected", "wrong kind", "shape mismatch"};
    std::ostringstream os;
    const char* separator = "";
    for (std::size_t c = 0; c < items_.size(); ++c) {
      const auto& list = items_[c];
      if (list.empty()) continue;
      os << separator << labels[c] << ": ";
      for (std::size_t i = 0; i < list.size() && i < shown; ++i) os << (i ? ", " : "") << list[i];
      if (list.size() > shown) os << " and " << list.size() - shown << " more";
      separator = "; ";
    }
    return os.str();
  }

 private:
  std::array<std::vector<std::string>, 4> items_;
};

}  // namespace tessera::io
