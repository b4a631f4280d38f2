// tessera/train/progress.hpp — a training loop's progress: a live bar on a terminal, one
// summary line per epoch elsewhere (log files, CI), and the epoch's running means of the
// losses for logging.
//
//   ts::train::ProgressBar bar;                              // writes to std::cerr
//   for (std::size_t epoch = start; epoch < opt.epochs; ++epoch) {
//     bar.start_epoch(epoch, opt.epochs, loader.batches_per_epoch());
//     std::size_t step = 0;
//     for (const auto& batch : loader.epoch(epoch))
//       bar.update(step++, batch.labels.size(), {{"loss_d", ld}, {"loss_g", lg}});
//     bar.end_epoch();
//     log.append(epoch + 1, bar.means());
//   }
//
// On a terminal:  epoch 2/10 [======>             ] 37/120  412 img/s  ETA 0:21  loss_d 0.612 loss_g 1.204
// (redrawn in place with '\r', at most 10 times a second), ending each epoch with the line that
// is otherwise the only output:
//                 epoch 2/10: 120 steps, 412 img/s, 29.1 s, loss_d 0.612, loss_g 1.204
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <sys/ioctl.h>
#include <unistd.h>

#include "../core/error.hpp"

namespace tessera::train {

class ProgressBar {
 public:
  using Values = std::vector<std::pair<std::string, double>>;  // name → value, in display order
  using Clock = std::function<double()>;                         // seconds, monotonic

  static double steady_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }

  /// Live bar when `out` is std::cerr/std::clog on a terminal stderr (or std::cout on a
  /// terminal stdout); one line per epoch otherwise.
  explicit ProgressBar(std::ostream& out = std::cerr) : ProgressBar(out, terminal_fd(out) >= 0) {
    winsize size{};
    if (interactive_ && ::ioctl(terminal_fd(out), TIOCGWINSZ, &size) == 0 && size.ws_col > 1) max_width_ = size.ws_col - 1;
  }
  /// `interactive` forces the mode; `clock` replaces the steady clock (for tests).
  ProgressBar(std::ostream& out, bool interactive, Clock clock = steady_seconds)
      : out_(out), interactive_(interactive), clock_(std::move(clock)) {}
  /// Ends a bar left mid-line (say, by an exception), so what is printed next starts a line.
  ~ProgressBar() {
    if (interactive_ && drawn_length_ > 0) out_ << std::endl;
  }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// `epoch` counts from 0 (as DataLoader::epoch) and is printed from 1: "epoch 1/10".
  /// steps_per_epoch 0: unknown (no bar, no ETA).
  void start_epoch(std::size_t epoch, std::size_t epochs, std::size_t steps_per_epoch) {
    epoch_ = epoch;
    epochs_ = epochs;
    steps_per_epoch_ = steps_per_epoch;
    steps_ = images_ = 0;
    sums_.clear();
    started_ = true;
    drawn_length_ = 0;
    start_time_ = last_draw_ = now_ = clock_();
  }

  /// After training step `step` (from 0) on `images` images, with that step's values (losses).
  /// Means are weighted by `images`, so a short last batch counts for what it holds.
  void update(std::size_t step, std::size_t images, const Values& values = {}) {
    TESSERA_CHECK(started_, "ProgressBar::update: call start_epoch first");
    steps_ = step + 1;
    images_ += images;
    for (const auto& [name, value] : values) add(name, value, double(images));
    now_ = clock_();
    const bool last = steps_per_epoch_ && steps_ >= steps_per_epoch_;
    if (interactive_ && (drawn_length_ == 0 || now_ - last_draw_ >= min_redraw_seconds || last)) {
      draw(live_line());
      last_draw_ = now_;
    }
  }

  /// Prints the epoch's summary line (on a terminal, in place of the bar).
  void end_epoch() {
    TESSERA_CHECK(started_, "ProgressBar::end_epoch: call start_epoch first");
    now_ = clock_();
    if (interactive_)
      draw(summary_line(), /*fit=*/false);  // the line that stays: keep all of it
    else
      out_ << summary_line();
    out_ << '\n' << std::flush;
    drawn_length_ = 0;
  }

  /// The epoch's means so far, in the order the names first appeared.
  Values means() const {
    Values m;
    for (const Sum& s : sums_) m.emplace_back(s.name, s.weight > 0 ? s.sum / s.weight : s.plain_sum / double(s.count));
    return m;
  }
  /// The mean of one value; NaN if it was never given this epoch.
  double mean(const std::string& name) const {
    for (const auto& [n, m] : means())
      if (n == name) return m;
    return std::numeric_limits<double>::quiet_NaN();
  }

  /// The epoch's sums so far as text that restore_sums() reads back exactly: a checkpoint saved
  /// mid-epoch keeps them, so that the means of an epoch resumed mid-way cover all of it.
  std::string saved_sums() const {
    std::string text;
    for (const Sum& s : sums_)
      text += s.name + '\t' + exact_number_text(s.sum) + '\t' + exact_number_text(s.weight) + '\t' +
              exact_number_text(s.plain_sum) + '\t' + std::to_string(s.count) + '\n';
    return text;
  }
  /// After start_epoch: the sums of saved_sums(), to which this epoch's steps add. An Error for
  /// text saved_sums() did not write.
  void restore_sums(const std::string& saved) {
    std::istringstream lines(saved);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      Sum s;
      std::string sum, weight, plain_sum;
      TESSERA_CHECK(std::getline(fields, s.name, '\t') && std::getline(fields, sum, '\t') && std::getline(fields, weight, '\t') &&
                        std::getline(fields, plain_sum, '\t') && (fields >> s.count),
                    "ProgressBar: cannot read the saved sums line '" << line << "'");
      s.sum = parse_number(sum), s.weight = parse_number(weight), s.plain_sum = parse_number(plain_sum);
      sums_.push_back(std::move(s));
    }
  }

  std::size_t steps() const { return steps_; }    ///< steps done this epoch
  std::size_t images() const { return images_; }  ///< images seen this epoch
  /// Seconds from start_epoch to end_epoch (or to the last update while the epoch runs).
  double seconds() const { return now_ - start_time_; }
  double images_per_second() const { return seconds() > 0 ? double(images_) / seconds() : 0.0; }
  bool interactive() const { return interactive_; }

  static constexpr double min_redraw_seconds = 0.1;
  static constexpr std::size_t bar_width = 20;

 private:
  struct Sum {
    std::string name;
    double sum = 0, weight = 0, plain_sum = 0;  // plain_sum: unweighted, for steps of 0 images
    std::size_t count = 0;
  };

  static double parse_number(const std::string& text) {
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    TESSERA_CHECK(error == std::errc() && end == text.data() + text.size(), "ProgressBar: '" << text << "' is not a number");
    return value;
  }

  /// The file descriptor behind `out` if it is a terminal, else −1.
  static int terminal_fd(const std::ostream& out) {
    const int fd = &out == &std::cerr || &out == &std::clog ? ::fileno(stderr) : &out == &std::cout ? ::fileno(stdout) : -1;
    return fd >= 0 && ::isatty(fd) ? fd : -1;
  }

  void add(const std::string& name, double value, double weight) {
    auto it = std::find_if(sums_.begin(), sums_.end(), [&](const Sum& s) { return s.name == name; });
    if (it == sums_.end()) it = sums_.insert(sums_.end(), Sum{name});
    it->sum += weight * value;
    it->weight += weight;
    it->plain_sum += value;
    ++it->count;
  }

  static std::string format(const char* spec, double value) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, spec, value);
    return buffer;
  }
  /// 412 img/s, 41.2 img/s.
  static std::string rate(double images_per_second) { return format(images_per_second >= 100 ? "%.0f" : "%.1f", images_per_second); }
  /// m:ss, or h:mm:ss from an hour.
  static std::string clock_time(double seconds) {
    const long long s = std::llround(std::max(0.0, seconds));
    char buffer[32];
    if (s >= 3600)
      std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
      std::snprintf(buffer, sizeof buffer, "%lld:%02lld", s / 60, s % 60);
    return buffer;
  }

  std::string epoch_label() const {
    return "epoch " + std::to_string(epoch_ + 1) + (epochs_ ? "/" + std::to_string(epochs_) : std::string());
  }

  std::string live_line() const {
    std::string line = epoch_label() + " ";
    if (steps_per_epoch_) {
      const std::size_t filled = std::min(bar_width, steps_ * bar_width / steps_per_epoch_);
      line += "[" + std::string(filled, '=') + (filled < bar_width ? ">" : "") +
              std::string(bar_width - filled - (filled < bar_width), ' ') + "] ";
      line += std::to_string(steps_) + "/" + std::to_string(steps_per_epoch_);
    } else {
      line += "step " + std::to_string(steps_);
    }
    line += "  " + rate(images_per_second()) + " img/s";
    if (steps_per_epoch_ && steps_ > 0 && steps_ < steps_per_epoch_)
      line += "  ETA " + clock_time(seconds() / double(steps_) * double(steps_per_epoch_ - steps_));
    if (!sums_.empty()) line += " ";
    for (const auto& [name, value] : means()) line += " " + name + " " + format("%.4g", value);
    return line;
  }

  std::string summary_line() const {
    std::string line = epoch_label() + ": " + std::to_string(steps_) + (steps_ == 1 ? " step, " : " steps, ") +
                       rate(images_per_second()) + " img/s, " + format("%.1f", seconds()) + " s";
    for (const auto& [name, value] : means()) line += ", " + name + " " + format("%.4g", value);
    return line;
  }

  /// Overwrites the current terminal line (padding with spaces over a longer previous one),
  /// cut to the terminal's width when `fit`: a wrapped line could not be redrawn with '\r'.
  void draw(std::string line, bool fit = true) {
    if (fit && max_width_ && line.size() > max_width_) line.resize(max_width_);
    out_ << '\r' << line;
    if (line.size() < drawn_length_) out_ << std::string(drawn_length_ - line.size(), ' ');
    out_ << std::flush;
    drawn_length_ = std::max<std::size_t>(line.size(), 1);
  }

  std::ostream& out_;
  bool interactive_;
  Clock clock_;
  std::size_t epoch_ = 0, epochs_ = 0, steps_per_epoch_ = 0, steps_ = 0, images_ = 0;
  std::vector<Sum> sums_;
  bool started_ = false;
  std::size_t max_width_ = 0;     // terminal columns − 1; 0: no limit
  std::size_t drawn_length_ = 0;  // characters on the terminal line now; 0: nothing drawn this epoch
  double start_time_ = 0, last_draw_ = 0, now_ = 0;  // now_: the time of the last update or end_epoch
};

}  // namespace tessera::train
