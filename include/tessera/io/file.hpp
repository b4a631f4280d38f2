// tessera/io/file.hpp — whole-file reads, atomic writes and CRC-32: what every reader and
// writer of outside bytes (images, npy/npz, checkpoints) builds on.
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/error.hpp"

namespace tessera::io {

using Bytes = std::vector<std::uint8_t>;

/// A file opened for reading, whose size is known before any of it is read: readers check a
/// header and the sizes it declares against the file's before reading the rest, so a wrong
/// file of any size is refused at once and in bounded memory.
class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    TESSERA_CHECK(fd_ >= 0, "cannot open " << path << ": " << std::strerror(errno));
    struct stat info{};
    if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
      const int err = errno;
      ::close(fd_);
      TESSERA_FAIL("cannot read " << path << ": " << (S_ISDIR(info.st_mode) ? "it is a directory" : S_ISREG(info.st_mode) ? std::strerror(err) : "not a regular file"));
    }
    size_ = std::uint64_t(info.st_size);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }

  /// `count` bytes from `offset`, or an Error naming the file: the file is shorter, or the
  /// read failed.
  Bytes read(std::uint64_t offset, std::size_t count) const {
    TESSERA_CHECK(offset <= size_ && count <= size_ - offset,
                  "cannot read " << path_ << ": truncated (" << count << " bytes at offset " << offset << " of " << size_ << ")");
    Bytes bytes(count);
    for (std::size_t done = 0; done < count;) {
      const ssize_t n = ::pread(fd_, bytes.data() + done, count - done, off_t(offset + done));
      if (n < 0 && errno == EINTR) continue;
      TESSERA_CHECK(n > 0, "cannot read " << path_ << ": " << (n == 0 ? "it shrank while being read" : std::strerror(errno)));
      done += std::size_t(n);
    }
    return bytes;
  }
  /// The first min(count, size()) bytes.
  Bytes prefix(std::size_t count) const { return read(0, std::size_t(std::min<std::uint64_t>(count, size_))); }
  /// The whole file.
  Bytes read_all() const {
    TESSERA_CHECK(size_ <= std::uint64_t(std::numeric_limits<std::ptrdiff_t>::max()), "cannot read " << path_ << ": too large");
    return read(0, std::size_t(size_));
  }

 private:
  std::string path_;
  int fd_;
  std::uint64_t size_ = 0;
};

/// The whole file, or an Error naming the path and the reason.
inline Bytes read_file(const std::string& path) { return InputFile(path).read_all(); }

namespace detail {
/// Test hook: called after the temporary file is complete and synced, just before it is
/// renamed over the target. A test makes it throw to simulate a crash at the worst moment.
inline std::function<void(const std::string& temp_path)>& before_rename_hook() {
  static std::function<void(const std::string&)> hook;
  return hook;
}

inline std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}
}  // namespace detail

/// Writes `bytes` to `path` so that readers see either the old file or the complete new one:
/// a temporary file in the same directory, flushed and fsync'ed, then renamed over the target
/// (and the directory synced). On any failure the temporary is removed, the previous file is
/// left as it was, and an Error names the path and the reason.
inline void write_file_atomically(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::string temp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(temp.data());
  TESSERA_CHECK(fd >= 0, "cannot write " << path << ": cannot create a temporary file beside it: " << std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    TESSERA_FAIL("cannot write " << path << ": " << what << ": " << std::strerror(err));
  };
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write failed");
    done += std::size_t(n);
  }
  if (::fchmod(fd, 0644) != 0) fail("chmod failed");  // mkstemp makes 0600; give the usual mode
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    TESSERA_FAIL("cannot write " << path << ": close failed: " << std::strerror(err));
  }
  try {
    if (detail::before_rename_hook()) detail::before_rename_hook()(temp);
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    TESSERA_FAIL("cannot write " << path << ": rename failed: " << std::strerror(err));
  }
  const int dir = ::open(detail::directory_of(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {  // make the rename itself durable; best effort (some filesystems refuse)
    ::fsync(dir);
    ::close(dir);
  }
}
inline void write_file_atomically(const std::string& path, const Bytes& bytes) {
  write_file_atomically(path, bytes.data(), bytes.size());
}

/// CRC-32 (IEEE 802.3, polynomial 0xEDB88320 reflected), as zip, gzip and PNG use.
inline std::uint32_t crc32(const std::uint8_t* data, std::size_t size, std::uint32_t crc = 0) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

/// Little-endian byte building and parsing with bounds checks: the one place binary formats
/// are encoded and decoded.
class ByteWriter {
 public:
  template <class Int>
  void put(Int value, std::size_t width = sizeof(Int)) {
    for (std::size_t i = 0; i < width; ++i) bytes_.push_back(std::uint8_t(std::uint64_t(value) >> (8 * i)));
  }
  void put_bytes(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    bytes_.insert(bytes_.end(), p, p + size);
  }
  void put_string(const std::string& s) {
    put<std::uint32_t>(std::uint32_t(s.size()));
    put_bytes(s.data(), s.size());
  }
  Bytes& bytes() { return bytes_; }

 private:
  Bytes bytes_;
};

class ByteReader {
 public:
  /// `what` names the source (a file path) in every error.
  ByteReader(const std::uint8_t* data, std::size_t size, std::string what) : data_(data), size_(size), what_(std::move(what)) {}

  template <class Int>
  Int get(std::size_t width = sizeof(Int)) {
    need(width);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < width; ++i) v |= std::uint64_t(data_[pos_ + i]) << (8 * i);
    pos_ += width;
    return Int(v);
  }
  const std::uint8_t* get_bytes(std::size_t size) {
    need(size);
    const std::uint8_t* p = data_ + pos_;
    pos_ += size;
    return p;
  }
  std::string get_string() {
    const auto n = get<std::uint32_t>();
    const auto* p = get_bytes(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  std::size_t position() const { return pos_; }
  std::size_t remaining() const { return size_ - pos_; }
  void seek(std::size_t pos) {
    TESSERA_CHECK(pos <= size_, what_ << ": offset " << pos << " is past the end (" << size_ << " bytes)");
    pos_ = pos;
  }
  const std::string& what() const { return what_; }

 private:
  void need(std::size_t n) const {
    TESSERA_CHECK(n <= size_ - pos_, what_ << ": truncated (needs " << n << " more bytes at offset " << pos_ << ", "
                                           << size_ - pos_ << " left)");
  }
  const std::uint8_t* data_;
  std::size_t size_, pos_ = 0;
  std::string what_;
};

}  // namespace tessera::io
