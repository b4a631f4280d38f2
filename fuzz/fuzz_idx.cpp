// Fuzzes the idx (MNIST) reader: the first byte says how much of the rest is the label file,
// the remainder is the image file; any bytes give a dataset or an Error.
#include <tessera/data/idx.hpp>

#include "scratch_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t label_bytes = std::min<std::size_t>(size - 1, std::size_t(data[0]) * 4);
  const std::string labels = write_scratch_file("labels", data + 1, label_bytes);
  const std::string images = write_scratch_file("images", data + 1 + label_bytes, size - 1 - label_bytes);
  try {
    tessera::data::IdxDataset dataset(images, labels);
    for (std::size_t i = 0; i < dataset.size() && i < 3; ++i) {
      const auto example = dataset.get(i);
      if (example.label < 0 || std::size_t(example.label) >= dataset.classes().size()) __builtin_trap();
    }
  } catch (const tessera::Error&) {
  }
  return 0;
}
