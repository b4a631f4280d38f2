// tessera/train/canvas.hpp — a small RGB raster with anti-aliased lines and dots, filled
// rectangles and text in a built-in bitmap font: enough to draw a chart into a Tensor<float>
// (3, H, W) for io::save_image, with no font files or graphics library.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace tessera::train {

struct Rgb {
  float r = 0, g = 0, b = 0;
};

/// "#1f77b4" → (0.12, 0.47, 0.71).
inline Rgb hex_color(const std::string& hex) {
  TESSERA_CHECK(hex.size() == 7 && hex[0] == '#', "hex_color: expected #rrggbb, got '" << hex << "'");
  const unsigned long v = std::strtoul(hex.c_str() + 1, nullptr, 16);
  return {float((v >> 16) & 0xFF) / 255.0f, float((v >> 8) & 0xFF) / 255.0f, float(v & 0xFF) / 255.0f};
}

namespace detail {

/// tessera's own 5 × 7 pixel font (drawn for this file), printable ASCII 32..126. Nine rows
/// per glyph: seven above the baseline, two for descenders (g, j, p, q, y, comma, underscore).
/// Bit 4 is the leftmost column.
constexpr int glyph_width = 5, glyph_rows = 9, glyph_ascent = 7;
inline const std::uint8_t (&glyph(char c))[glyph_rows] {
  static constexpr std::uint8_t font[95][glyph_rows] = {
      {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000},  // ' '
      {0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100, 0b00000, 0b00000},  // '!'
      {0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000},  // '"'
      {0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010, 0b00000, 0b00000},  // '#'
      {0b00100, 0b01111, 0b10100, 0b01110, 0b00101, 0b11110, 0b00100, 0b00000, 0b00000},  // '$'
      {0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011, 0b00000, 0b00000},  // '%'
      {0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101, 0b00000, 0b00000},  // '&'
      {0b00100, 0b00100, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000},  // '\''
      {0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010, 0b00000, 0b00000},  // '('
      {0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000, 0b00000, 0b00000},  // ')'
      {0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000, 0b00000, 0b00000},  // '*'
      {0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000, 0b00000, 0b00000},  // '+'
      {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000},  // ','
      {0b00000, 0b00000, 0b00000, 0b01110, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000},  // '-'
      {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100, 0b00000, 0b00000},  // '.'
      {0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000, 0b00000, 0b00000},  // '/'
      {0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110, 0b00000, 0b00000},  // '0'
      {0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000, 0b00000},  // '1'
      {0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111, 0b00000, 0b00000},  // '2'
      {0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110, 0b00000, 0b00000},  // '3'
      {0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010, 0b00000, 0b00000},  // '4'
      {0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110, 0b00000, 0b00000},  // '5'
      {0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110, 0b00000, 0b00000},  // '6'
      {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00000, 0b00000},  // '7'
      {0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110, 0b00000, 0b00000},  // '8'
      {0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100, 0b00000, 0b00000},  // '9'
      {0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000, 0b00000, 0b00000},  // ':'
      {0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00100, 0b01000, 0b00000},  // ';'
      {0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00000, 0b00000},  // '<'
      {0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000, 0b00000},  // '='
      {0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000, 0b00000, 0b00000},  // '>'
      {0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100, 0b00000, 0b00000},  // '?'
      {0b01110, 0b10001, 0b10111, 0b10101, 0b10111, 0b10000, 0b01110, 0b00000, 0b00000},  // '@'
      {0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001, 0b00000, 0b00000},  // 'A'
      {0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110, 0b00000, 0b00000},  // 'B'
      {0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110, 0b00000, 0b00000},  // 'C'
      {0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100, 0b00000, 0b00000},  // 'D'
      {0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111, 0b00000, 0b00000},  // 'E'
      {0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000, 0b00000, 0b00000},  // 'F'
      {0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111, 0b00000, 0b00000},  // 'G'
      {0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001, 0b00000, 0b00000},  // 'H'
      {0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000, 0b00000},  // 'I'
      {0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100, 0b00000, 0b00000},  // 'J'
      {0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001, 0b00000, 0b00000},  // 'K'
      {0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111, 0b00000, 0b00000},  // 'L'
      {0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001, 0b00000, 0b00000},  // 'M'
      {0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001, 0b00000, 0b00000},  // 'N'
      {0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000, 0b00000},  // 'O'
      {0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000, 0b00000, 0b00000},  // 'P'
      {0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101, 0b00000, 0b00000},  // 'Q'
      {0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001, 0b00000, 0b00000},  // 'R'
      {0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110, 0b00000, 0b00000},  // 'S'
      {0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00000},  // 'T'
      {0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000, 0b00000},  // 'U'
      {0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00000, 0b00000},  // 'V'
      {0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010, 0b00000, 0b00000},  // 'W'
      {0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001, 0b00000, 0b00000},  // 'X'
      {0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00000},  // 'Y'
      {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111, 0b00000, 0b00000},  // 'Z'
      {0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110, 0b00000, 0b00000},  // '['
      {0b00000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0b00000, 0b00000, 0b00000},  // '\\'
      {0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110, 0b00000, 0b00000},  // ']'
      {0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000},  // '^'
      {0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111, 0b00000},  // '_'
      {0b01000, 0b00100, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000},  // '`'
      {0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111, 0b00000, 0b00000},  // 'a'
      {0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110, 0b00000, 0b00000},  // 'b'
      {0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110, 0b00000, 0b00000},  // 'c'
      {0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111, 0b00000, 0b00000},  // 'd'
      {0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110, 0b00000, 0b00000},  // 'e'
      {0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000, 0b00000, 0b00000},  // 'f'
      {0b00000, 0b00000, 0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110},  // 'g'
      {0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0b00000, 0b00000},  // 'h'
      {0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000, 0b00000},  // 'i'
      {0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100},  // 'j'
      {0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b00000, 0b00000},  // 'k'
      {0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000, 0b00000},  // 'l'
      {0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10101, 0b10101, 0b00000, 0b00000},  // 'm'
      {0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0b00000, 0b00000},  // 'n'
      {0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000, 0b00000},  // 'o'
      {0b00000, 0b00000, 0b11110, 0b10001, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000},  // 'p'
      {0b00000, 0b00000, 0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001},  // 'q'
      {0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000, 0b00000, 0b00000},  // 'r'
      {0b00000, 0b00000, 0b01111, 0b10000, 0b01110, 0b00001, 0b11110, 0b00000, 0b00000},  // 's'
      {0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110, 0b00000, 0b00000},  // 't'
      {0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101, 0b00000, 0b00000},  // 'u'
      {0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00000, 0b00000},  // 'v'
      {0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010, 0b00000, 0b00000},  // 'w'
      {0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b00000, 0b00000},  // 'x'
      {0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110},  // 'y'
      {0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111, 0b00000, 0b00000},  // 'z'
      {0b00010, 0b00100, 0b00100, 0b01000, 0b00100, 0b00100, 0b00010, 0b00000, 0b00000},  // '{'
      {0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00000},  // '|'
      {0b01000, 0b00100, 0b00100, 0b00010, 0b00100, 0b00100, 0b01000, 0b00000, 0b00000},  // '}'
      {0b00000, 0b00000, 0b01000, 0b10101, 0b00010, 0b00000, 0b00000, 0b00000, 0b00000},  // '~'
  };
  const auto code = static_cast<unsigned char>(c);
  return font[code >= 32 && code < 127 ? code - 32 : '?' - 32];  // anything else (UTF-8 bytes too) as '?'
}

inline bool is_utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace detail

/// Draws in pixel coordinates (x right, y down; pixel (i, j) covers [i, i+1) × [j, j+1)).
class Canvas {
 public:
  enum class Align { left, center, right };

  Canvas(std::size_t width, std::size_t height, Rgb background = {1, 1, 1})
      : width_(width), height_(height) {
    TESSERA_CHECK(width > 0 && height > 0, "Canvas: size " << width << "x" << height << " is empty");
    image_ = Tensor<float>::zeros({3, height, width});  // zeros, not empty: blending reads the old value
    fill_rect(0, 0, double(width), double(height), background);
  }

  /// Pixels whose centre lies in [x0, x1) × [y0, y1).
  void fill_rect(double x0, double y0, double x1, double y1, Rgb color) {
    for (long y = std::max(0L, long(std::ceil(y0 - 0.5))); y < std::min(long(height_), long(std::ceil(y1 - 0.5))); ++y)
      for (long x = std::max(0L, long(std::ceil(x0 - 0.5))); x < std::min(long(width_), long(std::ceil(x1 - 0.5))); ++x)
        blend(x, y, 1.0, color);
  }

  /// A segment `thickness` wide with round ends, anti-aliased: each pixel is covered by
  /// (half width + ½ − distance from its centre to the segment), clamped to [0, 1].
  void line(double x0, double y0, double x1, double y1, double thickness, Rgb color) {
    const double half = thickness / 2, dx = x1 - x0, dy = y1 - y0, length2 = dx * dx + dy * dy;
    for_pixels_near(std::min(x0, x1) - half, std::min(y0, y1) - half, std::max(x0, x1) + half, std::max(y0, y1) + half, [&](long x, long y) {
      const double px = double(x) + 0.5 - x0, py = double(y) + 0.5 - y0;
      const double t = length2 > 0 ? std::clamp((px * dx + py * dy) / length2, 0.0, 1.0) : 0.0;
      return half + 0.5 - std::hypot(px - t * dx, py - t * dy);
    }, color);
  }

  /// A filled, anti-aliased disc.
  void disc(double cx, double cy, double radius, Rgb color) {
    for_pixels_near(cx - radius, cy - radius, cx + radius, cy + radius,
                    [&](long x, long y) { return radius + 0.5 - std::hypot(double(x) + 0.5 - cx, double(y) + 0.5 - cy); }, color);
  }

  /// Text with its baseline at y, each font pixel drawn as a `scale` × `scale` square.
  /// Characters outside printable ASCII show as '?' (one per UTF-8 sequence).
  void text(double x, double y, const std::string& text, Rgb color, int scale = 1, Align align = Align::left) {
    const double width = text_width(text, scale);
    double left = align == Align::left ? x : align == Align::center ? x - width / 2 : x - width;
    left = std::round(left);
    const double top = std::round(y) - detail::glyph_ascent * scale;
    for (char c : text) {
      if (detail::is_utf8_continuation(c)) continue;
      const auto& rows = detail::glyph(c);
      for (int row = 0; row < detail::glyph_rows; ++row)
        for (int col = 0; col < detail::glyph_width; ++col)
          if (rows[row] >> (detail::glyph_width - 1 - col) & 1)
            fill_rect(left + col * scale, top + row * scale, left + (col + 1) * scale, top + (row + 1) * scale, color);
      left += advance * scale;
    }
  }
  /// Pixels `text` spans at `scale`: 6 per character (5 and a gap), less the last gap.
  static double text_width(const std::string& text, int scale = 1) {
    const auto characters = std::size_t(std::count_if(text.begin(), text.end(), [](char c) { return !detail::is_utf8_continuation(c); }));
    return characters ? double(characters * advance - 1) * scale : 0.0;
  }

  std::size_t width() const { return width_; }
  std::size_t height() const { return height_; }
  /// The picture as (3, H, W) in [0, 1], as io::save_image takes it.
  const Tensor<float>& image() const { return image_; }

  static constexpr std::size_t advance = detail::glyph_width + 1;

 private:
  /// Blends `color` into the pixels of the box with the coverage coverage(x, y) returns.
  template <class Coverage>
  void for_pixels_near(double x0, double y0, double x1, double y1, Coverage&& coverage, Rgb color) {
    for (long y = std::max(0L, long(std::floor(y0 - 1))); y <= std::min(long(height_) - 1, long(std::ceil(y1 + 1))); ++y)
      for (long x = std::max(0L, long(std::floor(x0 - 1))); x <= std::min(long(width_) - 1, long(std::ceil(x1 + 1))); ++x) {
        const double c = coverage(x, y);
        if (c > 0) blend(x, y, std::min(c, 1.0), color);
      }
  }

  void blend(long x, long y, double alpha, Rgb color) {
    const std::size_t plane = width_ * height_, i = std::size_t(y) * width_ + std::size_t(x);
    const float a = float(alpha);
    image_[i] += a * (color.r - image_[i]);
    image_[plane + i] += a * (color.g - image_[plane + i]);
    image_[2 * plane + i] += a * (color.b - image_[2 * plane + i]);
  }

  std::size_t width_, height_;
  Tensor<float> image_;
};

}  // namespace tessera::train
