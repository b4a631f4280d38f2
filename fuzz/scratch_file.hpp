// A per-process scratch file for fuzz targets whose readers take paths, not bytes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

inline std::string write_scratch_file(const char* name, const std::uint8_t* data, std::size_t size) {
  const std::string path = "/tmp/tessera-fuzz-" + std::to_string(::getpid()) + "-" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) __builtin_trap();  // the fuzzer itself cannot work
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}
