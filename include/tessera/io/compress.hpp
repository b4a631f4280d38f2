// tessera/io/compress.hpp — DEFLATE decoding (RFC 1951) and the gzip wrapper (RFC 1952), on
// the zlib decoder that ships inside Debian's stb_image. Used by .npz (zip members) and by
// gzip-compressed MNIST idx files.
#pragma once

#include <climits>
#include <cstdint>
#include <string>

#include <stb_image.h>

#include "../core/error.hpp"
#include "file.hpp"

namespace tessera::io {

/// Inflates a raw DEFLATE stream that must decode to exactly `expected_size` bytes.
inline Bytes inflate_raw(const std::uint8_t* data, std::size_t size, std::size_t expected_size, const std::string& what) {
  TESSERA_CHECK(size <= std::size_t(INT_MAX) - 8 && expected_size < std::size_t(INT_MAX),
                what << ": compressed data too large for the built-in inflater (" << size << " -> " << expected_size << " bytes)");
  // DEFLATE expands at most 1032:1 (a 258-byte match in two bits): a larger claim is a lie,
  // and believing it would allocate gigabytes for a 40-byte file.
  TESSERA_CHECK(expected_size <= 1032 * size + 1024, what << ": claims " << expected_size << " bytes inflated from " << size
                                                          << " compressed, more than DEFLATE can encode (corrupt file)");
  // stb's decoder refills its bit buffer 16 bits ahead and rejects a stream whose last code
  // ends within that distance of the input's end ("bad huffman code" on valid data), so the
  // input gets zero bytes of slack, as the checksum after a PNG's deflate data gives it.
  Bytes padded(data, data + size);
  padded.resize(size + 8, 0);
  // The decoder writes at most olen bytes; one spare byte tells "exactly" from "more".
  Bytes out(expected_size + 1);
  const int got = stbi_zlib_decode_noheader_buffer(reinterpret_cast<char*>(out.data()), int(out.size()),
                                                   reinterpret_cast<const char*>(padded.data()), int(padded.size()));
  TESSERA_CHECK(got >= 0 && std::size_t(got) == expected_size,
                what << ": corrupt compressed data (inflated " << (got < 0 ? std::string("nothing") : std::to_string(got))
                     << " bytes, expected " << expected_size << ")");
  out.resize(expected_size);
  return out;
}

/// True for data starting with gzip's magic bytes 1f 8b.
inline bool is_gzip(const Bytes& bytes) { return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b; }

/// Decompresses a single-member gzip file, checking its CRC-32 and length.
inline Bytes gunzip(const Bytes& bytes, const std::string& what) {
  ByteReader r(bytes.data(), bytes.size(), what);
  TESSERA_CHECK(r.get<std::uint8_t>() == 0x1f && r.get<std::uint8_t>() == 0x8b, what << ": not a gzip file");
  TESSERA_CHECK(r.get<std::uint8_t>() == 8, what << ": unknown gzip compression method");
  const auto flags = r.get<std::uint8_t>();
  r.get_bytes(6);  // mtime, extra flags, OS
  if (flags & 0x04) r.get_bytes(r.get<std::uint16_t>());  // FEXTRA
  if (flags & 0x08) while (r.get<std::uint8_t>() != 0) {}  // FNAME, zero-terminated
  if (flags & 0x10) while (r.get<std::uint8_t>() != 0) {}  // FCOMMENT
  if (flags & 0x02) r.get_bytes(2);                         // FHCRC
  TESSERA_CHECK(r.remaining() >= 8, what << ": truncated gzip file");
  const std::size_t start = r.position(), compressed = r.remaining() - 8;
  r.seek(bytes.size() - 8);
  const auto crc = r.get<std::uint32_t>();
  const auto length = r.get<std::uint32_t>();  // uncompressed size mod 2^32
  Bytes out = inflate_raw(bytes.data() + start, compressed, length, what);
  TESSERA_CHECK(crc32(out.data(), out.size()) == crc, what << ": gzip CRC mismatch (corrupt file)");
  return out;
}

}  // namespace tessera::io
