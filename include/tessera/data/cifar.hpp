// tessera/data/cifar.hpp — CIFAR-10 in its binary version (cifar-10-binary.tar.gz, unpacked to
// cifar-10-batches-bin/). Each file is a run of 3073-byte records: one label byte (0–9), then
// 32·32 red, 32·32 green and 32·32 blue bytes, rows top to bottom (Krizhevsky, 2009;
// https://www.cs.toronto.edu/~kriz/cifar.html).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../io/file.hpp"
#include "dataset.hpp"

namespace tessera::data {

class Cifar10Dataset : public Dataset {
 public:
  static constexpr std::size_t side = 32, pixels = 3 * side * side, record = 1 + pixels;

  /// The records of the given files, in order: Cifar10Dataset({dir + "/data_batch_1.bin"}).
  explicit Cifar10Dataset(const std::vector<std::string>& files) {
    TESSERA_CHECK(!files.empty(), "Cifar10Dataset: no files given");
    for (const auto& path : files) append(path);
  }

  /// The standard split from the unpacked directory: data_batch_1..5.bin (50 000 images) when
  /// `train`, else test_batch.bin (10 000). Cifar10Dataset("cifar-10-batches-bin", true).
  Cifar10Dataset(const std::string& directory, bool train) : Cifar10Dataset(split_files(directory, train)) {}

  static std::vector<std::string> split_files(const std::string& directory, bool train) {
    if (!train) return {directory + "/test_batch.bin"};
    std::vector<std::string> files;
    for (int k = 1; k <= 5; ++k) files.push_back(directory + "/data_batch_" + std::to_string(k) + ".bin");
    return files;
  }

  static const std::vector<std::string>& class_names() {
    static const std::vector<std::string> names{"airplane", "automobile", "bird", "cat", "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};
    return names;
  }

  std::size_t size() const override { return records_.size() / record; }
  const std::vector<std::string>& classes() const override { return class_names(); }

  /// Image i as (3, 32, 32) in [0, 1]: the file's planes are already CHW.
  Example get(std::size_t i) const override {
    TESSERA_CHECK(i < size(), "Cifar10Dataset: index " << i << " out of range for " << size() << " images");
    const std::uint8_t* r = records_.data() + i * record;
    Tensor<float> image = Tensor<float>::empty({3, side, side});
    for (std::size_t k = 0; k < pixels; ++k) image[k] = float(r[1 + k]) / 255.0f;
    return {std::move(image), std::int64_t(r[0])};
  }

 private:
  // The file's size is checked before it is read: a wrong file of any size is refused at once.
  void append(const std::string& path) {
    io::Bytes bytes;
    try {
      const io::InputFile file(path);
      TESSERA_CHECK(file.size() > 0 && file.size() % record == 0,
                    "Cifar10Dataset: " << path << ": " << file.size() << " bytes is not a whole number of "
                                       << record << "-byte records (1 label + 3072 pixels)");
      bytes = file.read_all();
    } catch (const Error& e) {
      const std::string message = e.what();
      if (message.rfind("Cifar10Dataset: ", 0) == 0) throw;
      TESSERA_FAIL("Cifar10Dataset: " << message << " (expected the binary version: cifar-10-batches-bin/*.bin)");
    }
    for (std::size_t k = 0; k < bytes.size(); k += record)
      TESSERA_CHECK(bytes[k] < 10, "Cifar10Dataset: " << path << ": record " << k / record << " has label "
                                                       << int(bytes[k]) << ", not 0-9 (a CIFAR-100 file?)");
    records_.insert(records_.end(), bytes.begin(), bytes.end());
  }

  io::Bytes records_;  // every file's records, concatenated
};

}  // namespace tessera::data
