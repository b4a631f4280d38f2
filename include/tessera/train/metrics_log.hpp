// tessera/train/metrics_log.hpp — one CSV row of metrics per epoch (out/metrics.csv), kept in
// memory too so the loss plot can be redrawn each epoch:
//
//   auto log = ts::train::MetricsLog::open(opt.out + "/metrics.csv", /*resume=*/!opt.resume.empty());
//   log.append(epoch + 1, {{"loss_d", 0.61}, {"loss_g", 1.2}});
//
//   epoch,loss_d,loss_g
//   1,0.61,1.2
//
// The columns are fixed by the first row. A later row may leave a column out (an empty cell,
// read back as NaN: e.g. a metric computed every fifth epoch, which the first row must then
// name with NaN) but not add one. Numbers are written in the shortest form that reads back
// to the same double. Each append rewrites the file atomically (it is small), so it is never
// seen half-written.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../io/file.hpp"

namespace tessera::train {

class MetricsLog {
 public:
  using Values = std::vector<std::pair<std::string, double>>;  // name → value, in column order

  /// An empty log that will write `path` (replacing any file there) at the first append.
  explicit MetricsLog(std::string path) : path_(std::move(path)) {}

  /// With `resume`, continues the file at `path` if there is one: its rows are read back (an
  /// Error names the line if it is malformed). Without, starts empty as the constructor does.
  static MetricsLog open(const std::string& path, bool resume) {
    MetricsLog log(path);
    if (resume && std::filesystem::exists(path)) {
      const io::Bytes bytes = io::read_file(path);
      log.parse(std::string(bytes.begin(), bytes.end()));
    }
    return log;
  }

  /// Adds the row of `epoch` and rewrites the file. Rows of this epoch or later are dropped
  /// first: resuming from an earlier checkpoint rewrites history from there.
  void append(std::size_t epoch, const Values& values) {
    if (columns_.empty()) set_columns(values);
    std::vector<double> row(columns_.size(), std::numeric_limits<double>::quiet_NaN());
    for (const auto& [name, value] : values) row[column_index(name, "append")] = value;
    const auto keep = std::size_t(std::lower_bound(epochs_.begin(), epochs_.end(), epoch) - epochs_.begin());
    epochs_.resize(keep);
    rows_.resize(keep);
    epochs_.push_back(epoch);
    rows_.push_back(std::move(row));
    const std::string csv = to_csv();
    io::write_file_atomically(path_, reinterpret_cast<const std::uint8_t*>(csv.data()), csv.size());
  }

  const std::string& path() const { return path_; }
  std::size_t size() const { return epochs_.size(); }  ///< rows
  bool empty() const { return epochs_.empty(); }
  /// The metric names, in column order (without "epoch").
  const std::vector<std::string>& columns() const { return columns_; }
  const std::vector<std::size_t>& epochs() const { return epochs_; }
  /// One metric's value in every row (NaN where a row left it out).
  std::vector<double> column(const std::string& name) const {
    const std::size_t c = column_index(name, "column");
    std::vector<double> values;
    for (const auto& row : rows_) values.push_back(row[c]);
    return values;
  }

  /// The file's contents: a header row, then one row per epoch.
  std::string to_csv() const {
    std::string csv = "epoch";
    for (const auto& name : columns_) csv += "," + name;
    csv += '\n';
    for (std::size_t r = 0; r < rows_.size(); ++r) {
      csv += std::to_string(epochs_[r]);
      for (double v : rows_[r]) csv += "," + number(v);
      csv += '\n';
    }
    return csv;
  }

 private:
  /// Shortest round-trip form (std::to_chars); NaN as an empty cell, infinities as inf, -inf.
  static std::string number(double v) { return std::isnan(v) ? "" : exact_number_text(v); }

  void set_columns(const Values& values) {
    TESSERA_CHECK(!values.empty(), "MetricsLog: the first row of " << path_ << " has no values; its names fix the columns");
    std::vector<std::string> names;
    for (const auto& [name, value] : values) {
      TESSERA_CHECK(!name.empty() && name != "epoch" && name.find_first_of(",\"\r\n") == std::string::npos,
                    "MetricsLog: '" << name << "' cannot be a column name (empty, \"epoch\", or holds , \" or a newline)");
      TESSERA_CHECK(std::count(names.begin(), names.end(), name) == 0, "MetricsLog: column '" << name << "' given twice");
      names.push_back(name);
    }
    columns_ = std::move(names);
  }

  std::size_t column_index(const std::string& name, const char* op) const {
    const auto it = std::find(columns_.begin(), columns_.end(), name);
    if (it == columns_.end()) {
      std::string names = "epoch";
      for (const auto& c : columns_) names += "," + c;
      TESSERA_FAIL("MetricsLog::" << op << ": " << path_ << " has no column '" << name << "' (columns: " << names
                                  << "; the first row fixes them)");
    }
    return std::size_t(it - columns_.begin());
  }

  static std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> fields(1);
    for (char c : line)
      if (c == ',')
        fields.emplace_back();
      else
        fields.back().push_back(c);
    return fields;
  }

  /// Reads back what to_csv wrote (tolerating \r\n line ends and a missing final newline).
  void parse(const std::string& text) {
    std::istringstream lines(text);
    std::string line;
    for (std::size_t number = 1; std::getline(lines, line); ++number) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const std::vector<std::string> fields = split(line);
      if (number == 1) {
        TESSERA_CHECK(fields[0] == "epoch" && fields.size() >= 2,
                      "MetricsLog: " << path_ << " line 1: expected a header epoch,<names>, got '" << line << "'");
        Values names;
        for (std::size_t i = 1; i < fields.size(); ++i) names.emplace_back(fields[i], 0.0);
        set_columns(names);
        continue;
      }
      TESSERA_CHECK(fields.size() == columns_.size() + 1, "MetricsLog: " << path_ << " line " << number << ": expected "
                                                                          << columns_.size() + 1 << " fields, got " << fields.size());
      std::size_t epoch = 0;
      const auto [end, error] = std::from_chars(fields[0].data(), fields[0].data() + fields[0].size(), epoch);
      TESSERA_CHECK(error == std::errc() && end == fields[0].data() + fields[0].size() && !fields[0].empty() &&
                        (epochs_.empty() || epoch > epochs_.back()),
                    "MetricsLog: " << path_ << " line " << number << ": epoch '" << fields[0]
                                   << "' is not a number greater than the previous row's");
      std::vector<double> row;
      for (std::size_t i = 1; i < fields.size(); ++i) row.push_back(read_number(fields[i], number));
      epochs_.push_back(epoch);
      rows_.push_back(std::move(row));
    }
  }

  double read_number(const std::string& field, std::size_t line) const {
    if (field.empty()) return std::numeric_limits<double>::quiet_NaN();
    double v = 0;
    const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), v);
    TESSERA_CHECK(error == std::errc() && end == field.data() + field.size(),
                  "MetricsLog: " << path_ << " line " << line << ": '" << field << "' is not a number");
    return v;
  }

  std::string path_;
  std::vector<std::string> columns_;
  std::vector<std::size_t> epochs_;         // ascending
  std::vector<std::vector<double>> rows_;   // rows_[r][c]: column c of epoch epochs_[r]
};

}  // namespace tessera::train
