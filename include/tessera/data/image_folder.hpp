// tessera/data/image_folder.hpp — a dataset from a folder of images with one subfolder per
// class, the layout of DTD, KTH-TIPS, Brodatz sets, torchvision's ImageFolder and Keras'
// image_dataset_from_directory:
//
//   textures/banded/banded_0001.jpg      class 0 "banded"
//   textures/banded/more/banded_0002.jpg (subfolders of a class folder belong to it)
//   textures/bricks/b01.png              class 1 "bricks"
//
// Class names are the subfolder names sorted; each class's files are sorted by path. Hidden
// folders and files (".ipynb_checkpoints", macOS "._x.jpg") and files in root itself are ignored.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <stb_image.h>

#include "../core/error.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../io/file.hpp"
#include "../io/image.hpp"
#include "dataset.hpp"
#include "transforms.hpp"

namespace tessera::data {

/// What ImageFolder does with a file it cannot read.
enum class OnError {
  skip,         // leave it out (counted in skipped(), one warning line on stderr)
  throw_error,  // throw a tessera::Error naming the file
};

struct ImageFolderOptions {
  int channels = 3;             // 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA, converted from what files store;
                                // 0: the data's own, 1 if every image is gray (with or without alpha), else 3
  std::size_t image_size = 0;   // 0: keep each file's size. Otherwise every image is resized so its
                                // shorter side is image_size (aspect kept), then centre-cropped
                                // to image_size × image_size (torchvision Resize + CenterCrop).
  OnError on_error = OnError::skip;
  bool preload = false;         // decode everything once at construction and keep it in memory
                                // (C·S·S·4 bytes per image): for small sets trained many epochs
};

/// Files are found at construction; images are decoded by get(i) (or all at once by preload).
///
/// Unreadable files, with on_error = skip:
///  - At construction every file's header is read (stbi_info, no decoding). Files whose header
///    is unreadable are left out; one line on stderr gives the count and the first of them.
///  - A file whose header is fine but whose data is corrupt is found when get(i) decodes it.
///    Indices must stay stable, so size() still counts it: get(i) returns instead the example
///    of the next index (i+1, i+2, ... wrapping around) that decodes, with that image's label.
///    The file is then remembered as bad (never decoded again), added to skipped(), and the
///    first such file per dataset is reported on stderr. Since the bad files are a property of
///    the data, get(i) is the same whatever order indices are asked in.
///  - With preload, corrupt data is found at construction instead and such files are left out
///    like those with bad headers, so size() counts only images that decode.
/// With on_error = throw_error the first unreadable file throws, naming its path and the reason.
class ImageFolder : public Dataset {
 public:
  using Options = ImageFolderOptions;

  explicit ImageFolder(const std::string& root, Options options = {})
      : root_(root), options_(options), state_(std::make_unique<GetState>()) {
    TESSERA_CHECK(options.channels >= 0 && options.channels <= 4,
                  "ImageFolder: " << root << ": channels must be 0 (the data's own), 1, 2, 3 or 4, got " << options.channels);
    find_files();
    check_headers();
    if (options_.channels == 0) options_.channels = all_gray_ ? 1 : 3;
    if (options_.preload) preload_all();
    report_skipped();
    TESSERA_CHECK(!files_.empty(), "ImageFolder: " << root << ": no readable images in " << classes_.size()
                                                   << " class folders (extensions: " << extension_list() << ")");
    state_->bad.assign(files_.size(), 0);
  }

  std::size_t size() const override { return files_.size(); }
  const std::vector<std::string>& classes() const override { return classes_; }

  Example get(std::size_t i) const override {
    TESSERA_CHECK(i < files_.size(), "ImageFolder: index " << i << " out of range for " << files_.size() << " images under " << root_);
    if (!preloaded_.empty()) return {preloaded_[i], files_[i].label};
    for (std::size_t step = 0; step < files_.size(); ++step) {
      const std::size_t j = (i + step) % files_.size();
      if (is_bad(j)) continue;
      std::string reason;
      try {
        return {load(files_[j].path), files_[j].label};
      } catch (const Error& e) {
        reason = without_prefix(e.what());
      }
      TESSERA_CHECK(options_.on_error == OnError::skip, "ImageFolder: " << reason);
      mark_bad(j, reason);
    }
    TESSERA_FAIL("ImageFolder: none of the " << files_.size() << " images under " << root_ << " can be decoded");
  }

  /// The file behind index i, and its class (known without decoding).
  const std::string& path(std::size_t i) const { return files_.at(i).path; }
  std::int64_t label(std::size_t i) const { return files_.at(i).label; }
  const std::string& root() const { return root_; }

  /// How many files were left out as unreadable, and which (in the order found). Grows when
  /// get() meets a file with corrupt data (see the class comment).
  std::size_t skipped() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->skipped.size();
  }
  std::vector<std::string> skipped_files() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->skipped;
  }

  /// True for the extensions ImageFolder reads (case-insensitive).
  static bool is_image_path(const std::string& path) {
    const std::string ext = io::detail::lowercase_extension(path);
    const auto& known = extensions();
    return std::find(known.begin(), known.end(), ext) != known.end();
  }
  static const std::vector<std::string>& extensions() {
    static const std::vector<std::string> list{"png", "jpg", "jpeg", "bmp", "tga", "gif", "pnm", "ppm", "pgm"};
    return list;
  }

 private:
  struct File {
    std::string path;
    std::int64_t label;
  };
  // What get() learns about corrupt files; behind a pointer so ImageFolder stays movable.
  struct GetState {
    std::mutex mutex;
    std::vector<char> bad;              // per index: data found corrupt by get()
    std::vector<std::string> skipped;   // every file left out, in the order found
    bool warned = false;
  };

  static bool is_hidden(const std::filesystem::path& p) { return p.filename().string().rfind('.', 0) == 0; }

  // Class folders (followed if links), then each one's images, walked without following links
  // to folders (so a link loop cannot trap the walk). A folder that cannot be listed, or an
  // entry that cannot be examined (a link loop, a dangling link), is skipped like an unreadable
  // file: counted in skipped(), reported in the one warning line.
  void find_files() {
    namespace fs = std::filesystem;
    std::error_code ec;
    TESSERA_CHECK(fs::is_directory(root_, ec), "ImageFolder: " << root_ << ": not a directory"
                                                               << (ec ? " (" + ec.message() + ")" : std::string()));
    for_each_entry(root_, [&](const fs::directory_entry& entry) {
      std::error_code status_error;
      const bool is_folder = entry.is_directory(status_error);  // a link to a folder counts
      if (status_error)
        skip_at_construction(entry.path().string(), entry.path().string() + ": cannot examine it (" + status_error.message() + ")");
      else if (is_folder && !is_hidden(entry.path()))
        classes_.push_back(entry.path().filename().string());
    });
    std::sort(classes_.begin(), classes_.end());
    TESSERA_CHECK(!classes_.empty(), "ImageFolder: " << root_ << ": no class subfolders (expected root/<class>/<image>)");
    for (std::size_t label = 0; label < classes_.size(); ++label) {
      std::vector<std::string> paths, folders{(fs::path(root_) / classes_[label]).string()};
      while (!folders.empty()) {
        const std::string folder = folders.back();
        folders.pop_back();
        for_each_entry(folder, [&](const fs::directory_entry& entry) {
          if (is_hidden(entry.path())) return;
          std::error_code status_error;
          const fs::file_status own = entry.symlink_status(status_error);
          if (!status_error && fs::is_directory(own)) return folders.push_back(entry.path().string());
          const fs::file_status target = status_error ? own : entry.status(status_error);  // links: what they point to
          if (status_error)
            skip_at_construction(entry.path().string(), entry.path().string() + ": cannot examine it (" + status_error.message() + ")");
          else if (fs::is_regular_file(target) && is_image_path(entry.path().string()))
            paths.push_back(entry.path().string());
        });
      }
      std::sort(paths.begin(), paths.end());
      for (auto& p : paths) files_.push_back({std::move(p), std::int64_t(label)});
    }
  }

  // visit(entry) for each entry of `folder`; a folder that cannot be listed (or stops being
  // listable) is skipped with its reason.
  template <class Visit>
  void for_each_entry(const std::string& folder, Visit&& visit) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) visit(*it);
    if (ec) skip_at_construction(folder, folder + ": cannot list it (" + ec.message() + ")");
  }

  // Reads the first bytes of `path` (the whole file if it is shorter).
  static io::Bytes read_prefix(const std::string& path, std::size_t limit) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    TESSERA_CHECK(f, path << ": cannot open (" << std::strerror(errno) << ")");
    std::error_code ec;
    const auto file_size = std::filesystem::file_size(path, ec);
    io::Bytes bytes(ec ? limit : std::min<std::size_t>(limit, std::size_t(file_size)));
    const std::size_t got = std::fread(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
    bytes.resize(got);
    return bytes;
  }

  // Why the header of `path` is unreadable, or "" if it is fine. Reads the first 4 KiB, which
  // hold nearly every file's header; a JPEG with large metadata before its frame header is
  // read further, 16 times as much each time.
  static std::string header_problem(const std::string& path, int& channels) {
    try {
      const std::size_t most = std::size_t(1) << 28;  // past 256 MiB without a header: give up
      for (std::size_t limit = 4096;; limit *= 16) {
        const io::Bytes bytes = read_prefix(path, limit);
        int w = 0, h = 0, c = 0;
        if (stbi_info_from_memory(bytes.data(), int(bytes.size()), &w, &h, &c)) {
          channels = c;
          if (w > 0 && h > 0) return "";
          return path + ": image header claims size " + std::to_string(w) + "x" + std::to_string(h);
        }
        if (bytes.size() < limit || limit >= most) return path + ": " + io::unreadable_header_reason(bytes.data(), bytes.size());
      }
    } catch (const Error& e) {
      return e.what();
    }
  }

  void check_headers() {
    std::vector<File> readable;
    for (auto& file : files_) {
      int channels = 0;
      const std::string problem = header_problem(file.path, channels);
      if (problem.empty()) {
        readable.push_back(std::move(file));
        all_gray_ = all_gray_ && channels <= 2;
      } else {
        skip_at_construction(file.path, problem);
      }
    }
    files_ = std::move(readable);
  }

  // Decodes every image once, in parallel; corrupt ones are left out (or throw).
  void preload_all() {
    std::vector<Tensor<float>> images(files_.size());
    std::vector<std::string> problems(files_.size());
    parallel_for(0, files_.size(), 1, [&](std::size_t i) {
      try {
        images[i] = load(files_[i].path);
      } catch (const std::exception& e) {  // exceptions must not leave an OpenMP thread
        problems[i] = without_prefix(e.what());
      }
    });
    std::vector<File> good;
    for (std::size_t i = 0; i < files_.size(); ++i) {
      if (!problems[i].empty()) {
        skip_at_construction(files_[i].path, problems[i]);
        continue;
      }
      good.push_back(std::move(files_[i]));
      preloaded_.push_back(std::move(images[i]));
    }
    files_ = std::move(good);
  }

  void skip_at_construction(const std::string& path, const std::string& problem) {
    TESSERA_CHECK(options_.on_error == OnError::skip, "ImageFolder: " << problem);
    if (state_->skipped.empty()) first_problem_ = problem;
    state_->skipped.push_back(path);
  }

  // One line for everything left out at construction.
  void report_skipped() const {
    const std::size_t n = state_->skipped.size();
    if (n == 0) return;
    std::cerr << "ImageFolder: skipped " << n << " unreadable file" << (n == 1 ? "" : "s") << " under " << root_
              << " (first: " << first_problem_ << ")\n";
  }

  Tensor<float> load(const std::string& path) const {
    Tensor<float> image = io::load_image(path, options_.channels);
    if (options_.image_size == 0) return image;
    image = resize_shorter_side(image, options_.image_size);
    return center_crop(image, options_.image_size, options_.image_size);
  }

  bool is_bad(std::size_t i) const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->bad[i] != 0;
  }

  void mark_bad(std::size_t i, const std::string& reason) const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->bad[i]) return;  // another thread found it first
    state_->bad[i] = 1;
    state_->skipped.push_back(files_[i].path);
    if (!state_->warned) {
      state_->warned = true;
      std::cerr << "ImageFolder: " << reason << "; skipping it: get() returns the next readable image in its place"
                << " (later corrupt files are only counted in skipped())\n";
    }
  }

  // load_image's messages start with its own name; ImageFolder's name its class instead.
  static std::string without_prefix(const std::string& message) {
    const std::string prefix = "load_image: ";
    return message.compare(0, prefix.size(), prefix) == 0 ? message.substr(prefix.size()) : message;
  }

  static std::string extension_list() {
    std::string list;
    for (const auto& ext : extensions()) list += (list.empty() ? "" : " ") + ext;
    return list;
  }

  std::string root_;
  Options options_;
  std::vector<std::string> classes_;
  std::vector<File> files_;
  std::vector<Tensor<float>> preloaded_;  // empty unless options.preload
  std::string first_problem_;
  bool all_gray_ = true;  // every readable file stores gray (with or without alpha)
  std::unique_ptr<GetState> state_;
};

}  // namespace tessera::data
