// tessera/data/idx.hpp — MNIST-style idx files (MNIST, Fashion-MNIST, KMNIST, EMNIST), plain or
// gzipped (recognised by gzip's magic bytes, whatever the file is called).
//
// Format (LeCun et al., http://yann.lecun.com/exdb/mnist/), all integers big-endian:
//   images: magic 0x00000803 (unsigned bytes, 3 dimensions), N, H, W, then N·H·W pixels
//   labels: magic 0x00000801 (unsigned bytes, 1 dimension),  N,       then N labels
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../io/compress.hpp"
#include "../io/file.hpp"
#include "dataset.hpp"

namespace tessera::data {

namespace detail {

/// The file's bytes, gunzipped if they start with gzip's magic.
inline io::Bytes read_maybe_gzipped(const std::string& path, const char* who) {
  try {
    io::Bytes bytes = io::read_file(path);
    return io::is_gzip(bytes) ? io::gunzip(bytes, path) : bytes;
  } catch (const Error& e) {
    TESSERA_FAIL(who << ": " << e.what());
  }
}

inline std::uint32_t big_endian_u32(io::ByteReader& r) {
  const std::uint8_t* b = r.get_bytes(4);
  return std::uint32_t(b[0]) << 24 | std::uint32_t(b[1]) << 16 | std::uint32_t(b[2]) << 8 | std::uint32_t(b[3]);
}

/// Reads an idx header with `dims` dimensions, checks its magic and that the data that follows
/// is exactly the product of the dimensions; returns the dimensions.
inline std::vector<std::size_t> read_idx_header(const io::Bytes& bytes, std::size_t dims, const std::string& path,
                                                const char* kind) {
  io::ByteReader r(bytes.data(), bytes.size(), "IdxDataset: " + path);
  const std::uint32_t expected = 0x0800u | std::uint32_t(dims), magic = big_endian_u32(r);
  TESSERA_CHECK(magic == expected, "IdxDataset: " << path << ": magic 0x" << std::hex << magic << " is not an idx " << kind
                                                  << " file (expected 0x" << expected << std::dec << ": unsigned bytes, "
                                                  << dims << " dimension" << (dims == 1 ? "" : "s") << ")");
  std::vector<std::size_t> shape;
  std::size_t count = 1;
  for (std::size_t d = 0; d < dims; ++d) {
    shape.push_back(big_endian_u32(r));
    // no overflow: refuse products that could not fit in the address space
    TESSERA_CHECK(shape.back() == 0 || count <= std::numeric_limits<std::size_t>::max() / shape.back(),
                  "IdxDataset: " << path << ": dimensions too large");
    count *= shape.back();
  }
  TESSERA_CHECK(r.remaining() == count, "IdxDataset: " << path << ": header says " << Shape(shape) << " = " << count
                                                       << " bytes of " << kind << " data, but the file has " << r.remaining()
                                                       << (r.remaining() < count ? " (truncated)" : " (trailing bytes)"));
  return shape;
}

}  // namespace detail

/// An idx image file and its label file: IdxDataset("train-images-idx3-ubyte.gz",
/// "train-labels-idx1-ubyte.gz"). Images are (1, H, W) in [0, 1]; the pixels stay in memory
/// as bytes (47 MB for MNIST's training set). Class names are "0", "1", ..., up to the largest
/// label but always at least "0".."9", unless `class_names` are given (e.g. Fashion-MNIST's).
class IdxDataset : public Dataset {
 public:
  IdxDataset(const std::string& images_path, const std::string& labels_path,
             std::vector<std::string> class_names = {})
      : classes_(std::move(class_names)) {
    pixels_ = detail::read_maybe_gzipped(images_path, "IdxDataset");
    const auto image_shape = detail::read_idx_header(pixels_, 3, images_path, "image");
    labels_ = detail::read_maybe_gzipped(labels_path, "IdxDataset");
    const auto label_shape = detail::read_idx_header(labels_, 1, labels_path, "label");
    count_ = image_shape[0];
    height_ = image_shape[1];
    width_ = image_shape[2];
    TESSERA_CHECK(count_ == label_shape[0], "IdxDataset: " << images_path << " has " << count_ << " images but "
                                                          << labels_path << " has " << label_shape[0] << " labels");
    TESSERA_CHECK(count_ == 0 || (height_ > 0 && width_ > 0),
                  "IdxDataset: " << images_path << ": images of size " << height_ << "x" << width_);
    pixels_.erase(pixels_.begin(), pixels_.begin() + 16);  // drop the headers: data only
    labels_.erase(labels_.begin(), labels_.begin() + 8);
    const std::size_t max_label = labels_.empty() ? 0 : *std::max_element(labels_.begin(), labels_.end());
    if (classes_.empty()) {
      for (std::size_t k = 0; k < std::max<std::size_t>(10, max_label + 1); ++k) classes_.push_back(std::to_string(k));
    }
    TESSERA_CHECK(max_label < classes_.size(), "IdxDataset: " << labels_path << ": label " << max_label << " but only "
                                                              << classes_.size() << " class names");
  }

  /// Fashion-MNIST's class names, by label.
  static std::vector<std::string> fashion_mnist_classes() {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  }

  std::size_t size() const override { return count_; }
  const std::vector<std::string>& classes() const override { return classes_; }
  std::size_t height() const { return height_; }
  std::size_t width() const { return width_; }

  Example get(std::size_t i) const override {
    TESSERA_CHECK(i < count_, "IdxDataset: index " << i << " out of range for " << count_ << " images");
    const std::size_t plane = height_ * width_;
    Tensor<float> image = Tensor<float>::empty({1, height_, width_});
    for (std::size_t k = 0; k < plane; ++k) image[k] = float(pixels_[i * plane + k]) / 255.0f;
    return {std::move(image), std::int64_t(labels_[i])};
  }

 private:
  io::Bytes pixels_, labels_;  // N·H·W pixel bytes and N label bytes
  std::size_t count_ = 0, height_ = 0, width_ = 0;
  std::vector<std::string> classes_;
};

}  // namespace tessera::data
