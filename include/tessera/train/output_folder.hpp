// tessera/train/output_folder.hpp — a training run's output folder, one run at a time: an
// advisory lock (flock) on OUT/.lock, held while the run lives, makes a second run into the same
// folder stop at once, naming the first one's process; and the temporary files of writes that a
// killed run left half-done (OUT/<name>.tmp.XXXXXX, io/file.hpp's naming) are removed.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "../core/error.hpp"

namespace tessera::train {

class OutputFolder {
 public:
  /// Locks `dir` (which must exist) for this process, or throws `Failure` (an Error type) naming
  /// the process that holds it. Then removes stale temporary files.
  template <class Failure>
  static OutputFolder lock(const std::string& dir) {
    const std::string path = dir + "/.lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw Failure("--out: cannot create " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const std::string holder = read_pid(fd);
      ::close(fd);
      if (err == EWOULDBLOCK)
        throw Failure("--out: another run" + (holder.empty() ? std::string() : " (PID " + holder + ")") + " is writing into " + dir +
                      "; wait for it to finish, or choose another --out");
      throw Failure("--out: cannot lock " + path + ": " + std::strerror(err));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";  // for the message of a run that finds it taken
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
      // the lock holds without the PID in it; the message then just names no process
    }
    remove_stale_temporaries(dir);
    return OutputFolder(fd);
  }

  OutputFolder() = default;
  OutputFolder(OutputFolder&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  OutputFolder& operator=(OutputFolder&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  OutputFolder(const OutputFolder&) = delete;
  OutputFolder& operator=(const OutputFolder&) = delete;
  ~OutputFolder() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }

  /// Whether a file's name is one io::write_file_atomically gives its temporary:
  /// "<name>.tmp.XXXXXX", six letters or digits from mkstemp.
  static bool is_temporary_name(const std::string& name) {
    static const std::regex pattern(R"(.+\.tmp\.[A-Za-z0-9]{6})");
    return std::regex_match(name, pattern);
  }

 private:
  explicit OutputFolder(int fd) : fd_(fd) {}

  static std::string read_pid(int fd) {
    char buffer[32] = {};
    const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
    std::string pid;
    for (ssize_t i = 0; i < n && buffer[i] >= '0' && buffer[i] <= '9'; ++i) pid += buffer[i];
    return pid;
  }

  // With the lock held no run of ours is writing here: a temporary of our naming is a killed
  // write's. (Best effort: what cannot be removed stays.)
  static void remove_stale_temporaries(const std::string& dir) {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code ignored;
      if (is_temporary_name(it->path().filename().string()) && it->is_regular_file(ignored)) std::filesystem::remove(it->path(), ignored);
    }
  }

  int fd_ = -1;
};

}  // namespace tessera::train
