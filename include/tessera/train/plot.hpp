// tessera/train/plot.hpp — loss curves as a line chart: one coloured line per series against
// the epoch, axes with a few round-numbered ticks, a legend. Written as a self-contained SVG,
// or as a PNG drawn by tessera itself (Canvas, its own bitmap font). Redrawn by the examples
// after every epoch:
//
//   ts::train::write_loss_plot_svg(opt.out + "/loss.svg", "DCGAN losses", log);   // a MetricsLog
//   ts::train::write_loss_plot_png(opt.out + "/loss.png", "DCGAN losses", log);
//   ts::train::write_loss_plot_svg("loss.svg", "losses", {{"train", {0.9, 0.5, 0.4}}});  // x = 1, 2, 3
//
// Points that are NaN or infinite (or beyond ±1e300) are left out (the line joins their neighbours); a series
// with one point shows as a dot; a constant series as a flat line.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../io/file.hpp"
#include "../io/image.hpp"
#include "canvas.hpp"
#include "metrics_log.hpp"

namespace tessera::train {

/// One line of a chart: y[i] plotted at x[i].
struct Series {
  std::string name;
  std::vector<double> x, y;
  Series(std::string name, std::vector<double> x, std::vector<double> y) : name(std::move(name)), x(std::move(x)), y(std::move(y)) {
    TESSERA_CHECK(this->x.size() == this->y.size(),
                  "Series '" << this->name << "': " << this->x.size() << " x values for " << this->y.size() << " y values");
  }
};

/// The size of a loss plot, in pixels (SVG user units).
inline constexpr int chart_width = 640, chart_height = 400;

namespace detail {

/// An axis and its ticks: the axis spans the data plus a margin; the ticks are the round
/// values inside it, steps of 1, 2 or 5 × 10^k ("nice numbers", Heckbert, Graphics Gems 1990).
struct Ticks {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> values;
};

/// The nice number nearest x: 1, 2 or 5 × 10^k.
inline double nice_number(double x) {
  const double magnitude = std::pow(10.0, std::floor(std::log10(x)));
  const double f = x / magnitude;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude;
}

/// About `target` ticks on an axis over [lo, hi] widened by `margin` of its span on each side
/// (so no point sits on the frame); whole-number steps when `integer` (epochs).
inline Ticks nice_ticks(double lo, double hi, std::size_t target, bool integer, double margin) {
  const double span = hi - lo;
  const double pad = span > 1e-12 * std::max(std::abs(lo), std::abs(hi)) ? span * margin
                     : lo == 0                                          ? 1.0
                                                                        : std::abs(lo) * 0.1;  // one value: centre it
  Ticks t;
  t.lo = lo - pad;
  t.hi = hi + pad;
  t.step = nice_number((t.hi - t.lo) / double(std::max<std::size_t>(target, 2) - 1));
  if (integer) t.step = std::max(t.step, 1.0);
  const double first = std::ceil(t.lo / t.step), count = std::floor(t.hi / t.step) - first;
  if (!(count >= 0 && count <= 50)) {  // overflow or NaN from extreme values: label the ends
    t.values = {t.lo, t.hi};
    t.step = t.hi - t.lo;
    return t;
  }
  for (int i = 0; i <= int(count); ++i) {
    const double v = (first + i) * t.step;
    t.values.push_back(std::abs(v) < t.step * 1e-9 ? 0.0 : v);  // no "-0"
  }
  return t;
}

/// A tick label with as many decimals as the step needs: 0.25 → "0.25", 2 → "2".
inline std::string tick_label(double v, double step) {
  char buffer[32];
  if (std::abs(v) >= 1e6 || step < 1e-4)
    std::snprintf(buffer, sizeof buffer, "%g", v);
  else
    std::snprintf(buffer, sizeof buffer, "%.*f", std::max(0, int(-std::floor(std::log10(step) + 1e-9))), v);
  return buffer;
}

inline std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

/// matplotlib's "tab10" colours.
inline const char* series_color(std::size_t i) {
  static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return colors[i % 10];
}

/// Where the plot area and the ticks go, in pixels (y down).
struct ChartLayout {
  double width = chart_width, height = chart_height;
  double left = 64, right = 0, top = 44, bottom = 0;  // the plot area
  Ticks x, y;
  std::vector<std::vector<std::pair<double, double>>> points;  // per series, finite points only

  double to_px(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * (right - left); }
  double to_py(double v) const { return bottom - (v - y.lo) / (y.hi - y.lo) * (bottom - top); }
};

inline std::string legend_label(const std::string& name, bool has_points) { return has_points ? name : name + " (no data)"; }

/// Finite and short of overflowing the axis arithmetic.
inline bool plottable(double x, double y) { return std::abs(x) < 1e300 && std::abs(y) < 1e300; }

inline ChartLayout layout_chart(const std::vector<Series>& series) {
  ChartLayout c;
  std::size_t longest_label = 0;
  constexpr double inf = std::numeric_limits<double>::infinity();
  double x_lo = inf, x_hi = -inf, y_lo = inf, y_hi = -inf;
  for (const Series& s : series) {
    bool any = false;
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (plottable(s.x[i], s.y[i])) {
        x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, s.y[i]), y_hi = std::max(y_hi, s.y[i]);
        any = true;
      }
    longest_label = std::max(longest_label, legend_label(s.name, any).size());
  }
  if (x_lo > x_hi) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;  // no data: empty axes
  c.right = std::round(c.width - 56 - 7.5 * double(std::min<std::size_t>(longest_label, 40)));  // room for the legend
  c.bottom = c.height - 52;
  c.x = nice_ticks(x_lo, x_hi, 8, /*integer=*/true, /*margin=*/0.03);
  c.y = nice_ticks(y_lo, y_hi, 6, /*integer=*/false, /*margin=*/0.06);
  for (const Series& s : series) {
    c.points.emplace_back();
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (plottable(s.x[i], s.y[i])) c.points.back().emplace_back(c.to_px(s.x[i]), c.to_py(s.y[i]));
  }
  return c;
}

/// One thing to draw; the SVG writer and the Canvas each render a list of these.
struct Shape {
  enum class Kind { line, polyline, dot, text } kind;
  std::vector<std::pair<double, double>> points;  // line: 2; polyline: any; dot: centre; text: anchor on the baseline
  std::string color;                              // #rrggbb
  double size = 1;                                // stroke width, dot radius or font size
  std::string text;
  Canvas::Align align = Canvas::Align::left;
};

/// The whole chart as shapes, back to front. Axis-parallel 1-pixel lines sit on pixel
/// centres (x.5) so they are sharp in both renderings.
inline std::vector<Shape> chart_shapes(const std::string& title, const std::vector<Series>& series, const std::string& x_label) {
  using K = Shape::Kind;
  const ChartLayout c = layout_chart(series);
  const char *grid = "#e6e6e6", *frame = "#888888", *ink = "#333333";
  auto crisp = [](double v) { return std::floor(v) + 0.5; };
  std::vector<Shape> shapes;
  shapes.push_back({K::text, {{(c.left + c.right) / 2, 26}}, "#000000", 16, title, Canvas::Align::center});
  for (double v : c.x.values) {
    const double x = crisp(c.to_px(v));
    shapes.push_back({K::line, {{x, c.top}, {x, c.bottom}}, grid, 1, "", {}});
    shapes.push_back({K::text, {{x, c.bottom + 18}}, ink, 12, tick_label(v, c.x.step), Canvas::Align::center});
  }
  for (double v : c.y.values) {
    const double y = crisp(c.to_py(v));
    shapes.push_back({K::line, {{c.left, y}, {c.right, y}}, grid, 1, "", {}});
    shapes.push_back({K::text, {{c.left - 8, y + 4}}, ink, 12, tick_label(v, c.y.step), Canvas::Align::right});
  }
  shapes.push_back({K::text, {{(c.left + c.right) / 2, c.bottom + 40}}, ink, 12, x_label, Canvas::Align::center});
  const double l = crisp(c.left), r = crisp(c.right), t = crisp(c.top), b = crisp(c.bottom);
  const std::pair<double, double> corners[] = {{l, t}, {r, t}, {r, b}, {l, b}};
  for (int i = 0; i < 4; ++i) shapes.push_back({K::line, {corners[i], corners[(i + 1) % 4]}, frame, 1, "", {}});
  for (std::size_t s = 0; s < series.size(); ++s) {
    shapes.push_back({K::polyline, c.points[s], series_color(s), 2, "", {}});
    if (c.points[s].size() <= 40)  // dots while they can be told apart; a lone point needs one to show at all
      for (const auto& point : c.points[s]) shapes.push_back({K::dot, {point}, series_color(s), 2.5, "", {}});
  }
  for (std::size_t s = 0; s < series.size(); ++s) {
    const double y = c.top + 10 + 20.0 * double(s), x = c.right + 16;
    shapes.push_back({K::line, {{x, y}, {x + 20, y}}, series_color(s), 2, "", {}});
    shapes.push_back({K::text, {{x + 26, y + 4}}, ink, 12, legend_label(series[s].name, !c.points[s].empty()), {}});
  }
  return shapes;
}

inline std::string px(double v) {  // SVG coordinates: a tenth of a pixel is plenty
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", v);
  return buffer;
}

/// Series given as values only, at epochs 1, 2, 3, ...; in name order.
inline std::vector<Series> series_of(const std::map<std::string, std::vector<double>>& values) {
  std::vector<Series> lines;
  for (const auto& [name, ys] : values) {
    std::vector<double> epochs(ys.size());
    for (std::size_t i = 0; i < ys.size(); ++i) epochs[i] = double(i + 1);
    lines.emplace_back(name, std::move(epochs), ys);
  }
  return lines;
}

/// The columns of a log (all, or those named) against its epochs.
inline std::vector<Series> series_of(const MetricsLog& log, const std::vector<std::string>& columns) {
  const std::vector<double> epochs(log.epochs().begin(), log.epochs().end());
  std::vector<Series> lines;
  for (const std::string& name : columns.empty() ? log.columns() : columns) lines.emplace_back(name, epochs, log.column(name));
  return lines;
}

inline void write_text(const std::string& path, const std::string& text) {
  io::write_file_atomically(path, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

}  // namespace detail

/// The chart as SVG text: one <polyline> per series (in order), dots on the points when a
/// series has few of them, a legend naming each series.
inline std::string loss_plot_svg(const std::string& title, const std::vector<Series>& series, const std::string& x_label = "epoch") {
  using detail::px;
  using K = detail::Shape::Kind;
  const std::string w = std::to_string(chart_width), h = std::to_string(chart_height);
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + w + "\" height=\"" + h + "\" viewBox=\"0 0 " + w +
                    " " + h + "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n" +
                    "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (const detail::Shape& s : detail::chart_shapes(title, series, x_label)) {
    switch (s.kind) {
      case K::line:
        svg += "<line x1=\"" + px(s.points[0].first) + "\" y1=\"" + px(s.points[0].second) + "\" x2=\"" + px(s.points[1].first) +
               "\" y2=\"" + px(s.points[1].second) + "\" stroke=\"" + s.color + "\" stroke-width=\"" + px(s.size) + "\"/>\n";
        break;
      case K::polyline:
        svg += "<polyline fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"" + px(s.size) +
               "\" stroke-linejoin=\"round\" stroke-linecap=\"round\" points=\"";
        for (std::size_t i = 0; i < s.points.size(); ++i) svg += (i ? " " : "") + px(s.points[i].first) + "," + px(s.points[i].second);
        svg += "\"/>\n";
        break;
      case K::dot:
        svg += "<circle cx=\"" + px(s.points[0].first) + "\" cy=\"" + px(s.points[0].second) + "\" r=\"" + px(s.size) +
               "\" fill=\"" + s.color + "\"/>\n";
        break;
      case K::text:
        svg += "<text x=\"" + px(s.points[0].first) + "\" y=\"" + px(s.points[0].second) + "\" font-size=\"" + px(s.size) +
               "\" fill=\"" + s.color + "\"" +
               (s.align == Canvas::Align::center ? " text-anchor=\"middle\"" : s.align == Canvas::Align::right ? " text-anchor=\"end\"" : "") +
               ">" + detail::xml_escape(s.text) + "</text>\n";
        break;
    }
  }
  return svg + "</svg>\n";
}

/// The same chart drawn into an RGB image (3, 400, 640) in [0, 1], text in Canvas's bitmap
/// font (titles at twice its size).
inline Tensor<float> loss_plot_image(const std::string& title, const std::vector<Series>& series, const std::string& x_label = "epoch") {
  using K = detail::Shape::Kind;
  Canvas canvas(chart_width, chart_height);
  for (const detail::Shape& s : detail::chart_shapes(title, series, x_label)) {
    const Rgb color = hex_color(s.color);
    switch (s.kind) {
      case K::line:
        canvas.line(s.points[0].first, s.points[0].second, s.points[1].first, s.points[1].second, s.size, color);
        break;
      case K::polyline:
        for (std::size_t i = 1; i < s.points.size(); ++i)
          canvas.line(s.points[i - 1].first, s.points[i - 1].second, s.points[i].first, s.points[i].second, s.size, color);
        break;
      case K::dot:
        canvas.disc(s.points[0].first, s.points[0].second, s.size, color);
        break;
      case K::text:
        canvas.text(s.points[0].first, s.points[0].second, s.text, color, s.size >= 15 ? 2 : 1, s.align);
        break;
    }
  }
  return canvas.image();
}

/// Writes loss_plot_svg atomically to `path`.
inline void write_loss_plot_svg(const std::string& path, const std::string& title, const std::vector<Series>& series) {
  detail::write_text(path, loss_plot_svg(title, series));
}
/// Series given as values only, plotted at epochs 1, 2, 3, ...; legend in name order.
inline void write_loss_plot_svg(const std::string& path, const std::string& title,
                                const std::map<std::string, std::vector<double>>& series) {
  write_loss_plot_svg(path, title, detail::series_of(series));
}
/// The columns of a MetricsLog (all of them, or those named) against its epochs. (A template
/// only so that a braced list of series, as above, is never taken for a MetricsLog.)
template <class Log, class = std::enable_if_t<std::is_same_v<Log, MetricsLog>>>
void write_loss_plot_svg(const std::string& path, const std::string& title, const Log& log,
                         const std::vector<std::string>& columns = {}) {
  write_loss_plot_svg(path, title, detail::series_of(log, columns));
}

/// Writes loss_plot_image as a PNG (or JPEG, BMP, TGA by the extension) through io::save_image,
/// which writes atomically.
inline void write_loss_plot_png(const std::string& path, const std::string& title, const std::vector<Series>& series) {
  io::save_image(loss_plot_image(title, series), path);
}
inline void write_loss_plot_png(const std::string& path, const std::string& title,
                                const std::map<std::string, std::vector<double>>& series) {
  write_loss_plot_png(path, title, detail::series_of(series));
}
template <class Log, class = std::enable_if_t<std::is_same_v<Log, MetricsLog>>>
void write_loss_plot_png(const std::string& path, const std::string& title, const Log& log,
                         const std::vector<std::string>& columns = {}) {
  write_loss_plot_png(path, title, detail::series_of(log, columns));
}

}  // namespace tessera::train
