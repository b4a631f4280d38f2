// tessera/io/image.hpp — image files ↔ tensors (C, H, W) in [0, 1], on Debian's stb_image and
// stb_image_write (linked from libstb), plus sample grids as torchvision's save_image draws them.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include <stb_image.h>
#include <stb_image_write.h>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "file.hpp"

namespace tessera::io {

/// Converts (C, H, W) between gray (1), gray + alpha (2), RGB (3) and RGBA (4) as stb_image
/// does: gray is replicated, alpha added as 1 or dropped, colour reduced to luma
/// (77 R + 150 G + 29 B) / 256.
inline Tensor<float> convert_channels(const Tensor<float>& image, std::size_t to) {
  const std::size_t from = image.shape()[0], H = image.shape()[1], W = image.shape()[2], plane = H * W;
  TESSERA_CHECK(from >= 1 && from <= 4 && to >= 1 && to <= 4,
                "convert_channels: from " << from << " to " << to << " channels is not a conversion of gray, gray+alpha, RGB, RGBA");
  if (from == to) return image;
  const bool has_color = from >= 3, has_alpha = from == 2 || from == 4;
  Tensor<float> out = Tensor<float>::empty({to, H, W});
  for (std::size_t i = 0; i < plane; ++i) {
    const float r = image[i], g = has_color ? image[plane + i] : r, b = has_color ? image[2 * plane + i] : r;
    const float alpha = has_alpha ? image[(from - 1) * plane + i] : 1.0f;
    const float gray = has_color ? (77.0f * r + 150.0f * g + 29.0f * b) / 256.0f : r;
    const float values[4] = {to >= 3 ? r : gray, to >= 3 ? g : alpha, b, alpha};
    for (std::size_t k = 0; k < to; ++k) out[k * plane + i] = values[k];
  }
  return out;
}

/// The width and height a PNG, GIF, BMP or JPEG header claims, read from the header itself
/// (stb's own check refuses images over 2^30 bytes and then reports only "unknown image type"):
/// false where the bytes hold none of these headers.
inline bool claimed_size(const std::uint8_t* data, std::size_t size, std::uint64_t& width, std::uint64_t& height) {
  auto be32 = [&](std::size_t at) { return std::uint64_t(data[at]) << 24 | std::uint64_t(data[at + 1]) << 16 | std::uint64_t(data[at + 2]) << 8 | data[at + 3]; };
  auto le32 = [&](std::size_t at) { return std::uint64_t(data[at]) | std::uint64_t(data[at + 1]) << 8 | std::uint64_t(data[at + 2]) << 16 | std::uint64_t(data[at + 3]) << 24; };
  static const std::uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 24 && std::memcmp(data, png, 8) == 0 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    width = be32(16), height = be32(20);
    return true;
  }
  if (size >= 10 && (std::memcmp(data, "GIF87a", 6) == 0 || std::memcmp(data, "GIF89a", 6) == 0)) {
    width = std::uint64_t(data[6] | data[7] << 8), height = std::uint64_t(data[8] | data[9] << 8);
    return true;
  }
  if (size >= 26 && data[0] == 'B' && data[1] == 'M') {
    width = le32(18), height = le32(22);
    height = height >= (std::uint64_t(1) << 31) ? (std::uint64_t(1) << 32) - height : height;  // top-down rows: negative
    return true;
  }
  if (size >= 4 && data[0] == 0xFF && data[1] == 0xD8) {  // JPEG: the frame header (SOFn)
    for (std::size_t at = 2; at + 9 <= size && data[at] == 0xFF;) {
      const std::uint8_t marker = data[at + 1];
      const std::size_t length = std::size_t(data[at + 2]) << 8 | data[at + 3];
      if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
        height = std::uint64_t(data[at + 5]) << 8 | data[at + 6], width = std::uint64_t(data[at + 7]) << 8 | data[at + 8];
        return true;
      }
      at += 2 + length;
    }
  }
  return false;
}

/// Why stb could not read an image header: "too large (W×H)" where the header claims more than
/// stb decodes (2^30 bytes), else stb's own reason.
inline std::string unreadable_header_reason(const std::uint8_t* data, std::size_t size) {
  std::uint64_t w = 0, h = 0;
  if (claimed_size(data, size, w, h) && w > 0 && h > 0 && double(w) * double(h) * 4 > double(1u << 30))
    return "too large (" + std::to_string(w) + "×" + std::to_string(h) + ")";
  return std::string("not a readable image (") + stbi_failure_reason() + ")";
}

/// Decodes PNG (8 and 16 bit), JPEG, BMP, TGA, GIF (first frame), PNM, PSD, HDR... from
/// memory. `channels` 0 keeps the file's; 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)
/// converts. `what` names the source in errors.
inline Tensor<float> decode_image(const std::uint8_t* data, std::size_t size, int channels, const std::string& what) {
  TESSERA_CHECK(channels >= 0 && channels <= 4, "load_image: " << what << ": channels must be 0 (as stored), 1, 2, 3 or 4, got " << channels);
  TESSERA_CHECK(size <= std::size_t(INT_MAX), "load_image: " << what << ": file too large (" << size << " bytes)");
  const int len = int(size);
  int w = 0, h = 0, stored = 0;
  TESSERA_CHECK(stbi_info_from_memory(data, len, &w, &h, &stored),
                "load_image: " << what << ": " << unreadable_header_reason(data, size));
  const int c = channels ? channels : stored;
  // A header can claim any size; refuse to decode more than the file could plausibly hold
  // (generous: 4096 decoded bytes per file byte, and always up to 64 MiB).
  const double decoded = double(w) * h * c * 2;
  TESSERA_CHECK(w > 0 && h > 0 && decoded <= std::max(64.0 * (1 << 20), 4096.0 * double(size)),
                "load_image: " << what << ": header claims " << w << "x" << h << "x" << c
                               << ", implausible for a file of " << size << " bytes");
  // Decode with the file's own channels and convert here: stb's 16-bit PNM path converts
  // channels with its 8-bit routine and returns a buffer half the size it reports (found by
  // fuzzing; regression test in test_io.cpp).
  const bool sixteen_bit = stbi_is_16_bit_from_memory(data, len);
  int got_w = 0, got_h = 0, got_c = 0;
  void* pixels = sixteen_bit ? static_cast<void*>(stbi_load_16_from_memory(data, len, &got_w, &got_h, &got_c, 0))
                             : static_cast<void*>(stbi_load_from_memory(data, len, &got_w, &got_h, &got_c, 0));
  TESSERA_CHECK(pixels, "load_image: " << what << ": cannot decode (" << stbi_failure_reason() << ")");
  const std::unique_ptr<void, void (*)(void*)> owner(pixels, stbi_image_free);
  TESSERA_CHECK(got_c >= 1 && got_c <= 4, "load_image: " << what << ": unsupported channel count " << got_c);
  const std::size_t H = std::size_t(got_h), W = std::size_t(got_w), stored_c = std::size_t(got_c);
  Tensor<float> native = Tensor<float>::empty({stored_c, H, W});
  const float scale = sixteen_bit ? 1.0f / 65535.0f : 1.0f / 255.0f;
  for (std::size_t y = 0; y < H; ++y)  // interleaved HWC → planar CHW
    for (std::size_t x = 0; x < W; ++x)
      for (std::size_t k = 0; k < stored_c; ++k) {
        const std::size_t src = (y * W + x) * stored_c + k;
        const float v = sixteen_bit ? float(static_cast<const std::uint16_t*>(pixels)[src])
                                    : float(static_cast<const std::uint8_t*>(pixels)[src]);
        native[(k * H + y) * W + x] = v * scale;
      }
  return channels ? convert_channels(native, std::size_t(channels)) : native;
}

/// load_image("brick.png", 3) → (3, H, W) in [0, 1].
inline Tensor<float> load_image(const std::string& path, int channels = 0) {
  const Bytes bytes = read_file(path);
  return decode_image(bytes.data(), bytes.size(), channels, path);
}

namespace detail {
inline std::string lowercase_extension(const std::string& path) {
  const auto dot = path.find_last_of('.');
  const auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot + 1);
  for (auto& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return ext;
}
inline void append_to_bytes(void* context, void* data, int size) {
  auto* out = static_cast<Bytes*>(context);
  const auto* p = static_cast<const std::uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}
}  // namespace detail

/// Writes (C, H, W) in [0, 1] (clamped), C = 1, 2, 3 or 4, as PNG, JPEG (.jpg/.jpeg, at
/// `jpeg_quality`), BMP or TGA by the path's extension. The file appears complete or not at all.
inline void save_image(const Tensor<float>& image, const std::string& path, int jpeg_quality = 95) {
  const Shape& s = image.shape();
  TESSERA_CHECK(s.size() == 3 && s[0] >= 1 && s[0] <= 4 && s[1] > 0 && s[2] > 0,
                "save_image: " << path << ": expected (C, H, W) with C in 1..4, got " << s);
  const std::size_t C = s[0], H = s[1], W = s[2];
  TESSERA_CHECK(H <= std::size_t(INT_MAX / 4) && W <= std::size_t(INT_MAX / 4) / C,
                "save_image: " << path << ": image " << s << " too large");
  std::vector<std::uint8_t> pixels(C * H * W);
  for (std::size_t k = 0; k < C; ++k)  // planar CHW → interleaved HWC bytes
    for (std::size_t i = 0; i < H * W; ++i) {
      const float v = std::clamp(image[k * H * W + i], 0.0f, 1.0f);
      pixels[i * C + k] = std::uint8_t(std::lround(v * 255.0f));
    }
  const std::string ext = detail::lowercase_extension(path);
  Bytes encoded;
  const int w = int(W), h = int(H), c = int(C);
  int ok = 0;
  if (ext == "png")
    ok = stbi_write_png_to_func(detail::append_to_bytes, &encoded, w, h, c, pixels.data(), w * c);
  else if (ext == "jpg" || ext == "jpeg")
    ok = stbi_write_jpg_to_func(detail::append_to_bytes, &encoded, w, h, c, pixels.data(), jpeg_quality);
  else if (ext == "bmp")
    ok = stbi_write_bmp_to_func(detail::append_to_bytes, &encoded, w, h, c, pixels.data());
  else if (ext == "tga")
    ok = stbi_write_tga_to_func(detail::append_to_bytes, &encoded, w, h, c, pixels.data());
  else
    TESSERA_FAIL("save_image: " << path << ": unknown extension \"" << ext << "\" (use .png, .jpg, .bmp or .tga)");
  TESSERA_CHECK(ok, "save_image: " << path << ": encoding failed");
  write_file_atomically(path, encoded);
}

/// The value range a grid maps to [0, 1]: {-1, 1} for tanh outputs.
struct ValueRange {
  float low = 0.0f, high = 1.0f;
};

/// Tiles a batch (N, C, H, W) into one image (C, rows·(H + pad) + pad, nrow·(W + pad) + pad),
/// nrow images per row, `padding` pixels of black between them (torchvision's make_grid),
/// mapping `range` linearly to [0, 1].
inline Tensor<float> make_grid(const Tensor<float>& batch, std::size_t nrow = 8, ValueRange range = {},
                               std::size_t padding = 2) {
  const Shape& s = batch.shape();
  TESSERA_CHECK(s.size() == 4 && s[0] > 0, "make_grid: expected a batch (N, C, H, W), got " << s);
  TESSERA_CHECK(nrow > 0, "make_grid: nrow must be positive");
  TESSERA_CHECK(range.high > range.low, "make_grid: empty value range [" << range.low << ", " << range.high << "]");
  const std::size_t N = s[0], C = s[1], H = s[2], W = s[3];
  const std::size_t cols = std::min(nrow, N), rows = (N + cols - 1) / cols;
  const std::size_t GH = rows * (H + padding) + padding, GW = cols * (W + padding) + padding;
  Tensor<float> grid = Tensor<float>::zeros({C, GH, GW});
  const float scale = 1.0f / (range.high - range.low);
  for (std::size_t n = 0; n < N; ++n) {
    const std::size_t top = padding + (n / cols) * (H + padding), left = padding + (n % cols) * (W + padding);
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t y = 0; y < H; ++y)
        for (std::size_t x = 0; x < W; ++x)
          grid[(c * GH + top + y) * GW + left + x] =
              std::clamp((batch[((n * C + c) * H + y) * W + x] - range.low) * scale, 0.0f, 1.0f);
  }
  return grid;
}

/// save_image_grid(G(z).value(), "samples.png", 8, {-1.f, 1.f}).
inline void save_image_grid(const Tensor<float>& batch, const std::string& path, std::size_t nrow = 8,
                            ValueRange range = {}, std::size_t padding = 2) {
  save_image(make_grid(batch, nrow, range, padding), path);
}

}  // namespace tessera::io
