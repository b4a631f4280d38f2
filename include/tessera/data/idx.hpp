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

inline std::uint32_t big_endian_u32(io::ByteReader& r) {
  const std::uint8_t* b = r.get_bytes(4);
  return std::uint32_t(b[0]) << 24 | std::uint32_t(b[1]) << 16 | std::uint32_t(b[2]) << 8 | std::uint32_t(b[3]);
}

/// Reads an idx header with `dims` dimensions from `header` (at least its 4 + 4·dims bytes),
/// checks its magic and that `data_bytes`, what follows the header, is exactly the product of
/// the dimensions; returns the dimensions.
inline std::vector<std::size_t> read_idx_header(const io::Bytes& header, std::uint64_t data_bytes, std::size_t dims,
                                                const std::string& path, const char* kind) {
  io::ByteReader r(header.data(), header.size(), "IdxDataset: " + path);
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
  TESSERA_CHECK(data_bytes == count, "IdxDataset: " << path << ": header says " << Shape(shape) << " = " << count
                                                    << " bytes of " << kind << " data, but the file has " << data_bytes
                                                    << (data_bytes < count ? " (truncated)" : " (trailing bytes)"));
  return shape;
}

/// An idx file's data (after its header) and its dimensions, gunzipped first if the file
/// starts with gzip's magic. A plain file's header is checked against the file's size before
/// the rest is read: a wrong file of any size is refused at once.
inline io::Bytes read_idx_file(const std::string& path, std::size_t dims, const char* kind, std::vector<std::size_t>& shape) {
  const std::size_t header_size = 4 + 4 * dims;
  io::Bytes bytes;
  try {
    const io::InputFile file(path);
    const io::Bytes head = file.prefix(header_size);
    if (io::is_gzip(head)) {
      bytes = io::gunzip(file.read_all(), path);
    } else {
      shape = read_idx_header(head, file.size() - head.size(), dims, path, kind);
      bytes = file.read(header_size, std::size_t(file.size() - header_size));
      return bytes;
    }
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.rfind("IdxDataset: ", 0) == 0) throw;
    TESSERA_FAIL("IdxDataset: " << message);
  }
  shape = read_idx_header(bytes, bytes.size() - std::min(bytes.size(), header_size), dims, path, kind);
  bytes.erase(bytes.begin(), bytes.begin() + std::ptrdiff_t(header_size));
  return bytes;
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
    std::vector<std::size_t> image_shape, label_shape;
    pixels_ = detail::read_idx_file(images_path, 3, "image", image_shape);
    labels_ = detail::read_idx_file(labels_path, 1, "label", label_shape);
    count_ = image_shape[0];
    height_ = image_shape[1];
    width_ = image_shape[2];
    TESSERA_CHECK(count_ == label_shape[0], "IdxDataset: " << images_path << " has " << count_ << " images but "
                                                          << labels_path << " has " << label_shape[0] << " labels");
    TESSERA_CHECK(count_ == 0 || (height_ > 0 && width_ > 0),
                  "IdxDataset: " << images_path << ": images of size " << height_ << "x" << width_);
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
