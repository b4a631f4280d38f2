// tessera/io/zip.hpp — zip archives held in memory: reading the central directory (zip64
// included) and stored or deflated members, CRC-checked; writing stored archives. The
// container of .npz files (npy.hpp).
//
// Record layouts: PKWARE APPNOTE.TXT 4.3.7 (local file header), 4.3.12 (central directory
// header), 4.3.14-16 (zip64 end of central directory record and locator, end of central
// directory record), 4.5.3 (zip64 extended information extra field, id 0x0001).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "compress.hpp"
#include "file.hpp"

namespace tessera::io::zip {

constexpr std::uint32_t local_header_signature = 0x04034b50;
constexpr std::uint32_t central_header_signature = 0x02014b50;
constexpr std::uint32_t zip64_end_signature = 0x06064b50;
constexpr std::uint32_t zip64_locator_signature = 0x07064b50;
constexpr std::uint32_t end_signature = 0x06054b50;
constexpr std::size_t local_header_size = 30, central_header_size = 46, end_record_size = 22;
constexpr std::size_t zip64_end_record_size = 56, zip64_locator_size = 20;
constexpr std::uint32_t zip64_marker = 0xFFFFFFFF;  // "the real value is in the zip64 field"

/// One member as the central directory describes it (zip64 values already applied).
struct Entry {
  std::string name;
  std::uint16_t flags = 0, method = 0;
  std::uint32_t crc = 0;
  std::uint64_t compressed_size = 0, uncompressed_size = 0, local_header_offset = 0;
};

struct Directory {
  std::vector<Entry> entries;
  std::uint64_t members_end = 0;  // members lie before the central directory
};

namespace detail {

inline std::uint32_t le32(const Bytes& b, std::size_t pos) {
  return std::uint32_t(b[pos]) | std::uint32_t(b[pos + 1]) << 8 | std::uint32_t(b[pos + 2]) << 16 | std::uint32_t(b[pos + 3]) << 24;
}
inline std::uint16_t le16(const Bytes& b, std::size_t pos) { return std::uint16_t(b[pos] | b[pos + 1] << 8); }

struct EndRecord {
  std::uint64_t entries = 0, offset = 0, size = 0;  // of the central directory
  std::uint64_t end = 0;                            // where the central directory must end
};

/// Finds the End of Central Directory record by searching backwards (it is followed only by
/// the archive comment, at most 65535 bytes), then the zip64 record if a locator precedes it.
inline EndRecord find_end_record(const Bytes& zip, const std::string& what) {
  TESSERA_CHECK(zip.size() >= end_record_size,
                what << ": not a zip archive (" << zip.size() << " bytes, too small for an End of Central Directory record)");
  const std::size_t last = zip.size() - end_record_size;
  const std::size_t lowest = last - std::min<std::size_t>(last, 0xFFFF);
  std::size_t eocd = std::string::npos;
  for (std::size_t pos = last + 1; pos-- > lowest;) {
    // the comment length must reach exactly to the end, so a signature inside a comment is skipped
    if (le32(zip, pos) == end_signature && pos + end_record_size + le16(zip, pos + 20) == zip.size()) {
      eocd = pos;
      break;
    }
  }
  TESSERA_CHECK(eocd != std::string::npos, what << ": not a zip archive (no End of Central Directory record)");
  ByteReader r(zip.data(), zip.size(), what);
  r.seek(eocd + 4);
  const auto disk = r.get<std::uint16_t>(), cd_disk = r.get<std::uint16_t>();
  const auto disk_entries = r.get<std::uint16_t>(), entries = r.get<std::uint16_t>();
  const auto cd_size = r.get<std::uint32_t>(), cd_offset = r.get<std::uint32_t>();
  EndRecord end{entries, cd_offset, cd_size, eocd};

  const bool has_locator = eocd >= zip64_locator_size && le32(zip, eocd - zip64_locator_size) == zip64_locator_signature;
  if (!has_locator) {
    TESSERA_CHECK(disk == 0 && cd_disk == 0 && disk_entries == entries, what << ": multi-disk zip archives are not supported");
    TESSERA_CHECK(entries != 0xFFFF && cd_size != zip64_marker && cd_offset != zip64_marker,
                  what << ": End of Central Directory defers to a zip64 record, but there is no zip64 locator");
    return end;
  }
  const std::size_t locator = eocd - zip64_locator_size;
  r.seek(locator + 4);
  const auto zip64_disk = r.get<std::uint32_t>();
  const auto record = r.get<std::uint64_t>();
  const auto disks = r.get<std::uint32_t>();
  TESSERA_CHECK(zip64_disk == 0 && disks <= 1, what << ": multi-disk zip archives are not supported");
  TESSERA_CHECK(record <= locator && locator - record >= zip64_end_record_size,
                what << ": zip64 End of Central Directory record offset " << record << " is outside the archive");
  r.seek(std::size_t(record));
  TESSERA_CHECK(r.get<std::uint32_t>() == zip64_end_signature, what << ": bad zip64 End of Central Directory signature");
  r.get<std::uint64_t>();  // size of the rest of the record
  r.get<std::uint32_t>();  // versions made by / needed
  const auto disk64 = r.get<std::uint32_t>(), cd_disk64 = r.get<std::uint32_t>();
  const auto disk_entries64 = r.get<std::uint64_t>();
  end.entries = r.get<std::uint64_t>();
  end.size = r.get<std::uint64_t>();
  end.offset = r.get<std::uint64_t>();
  end.end = record;
  TESSERA_CHECK(disk64 == 0 && cd_disk64 == 0 && disk_entries64 == end.entries,
                what << ": multi-disk zip archives are not supported");
  return end;
}

/// Replaces the 0xFFFFFFFF size and offset fields by those in the zip64 extra field (0x0001),
/// which holds, in this order, only the fields that overflowed.
inline void apply_zip64_extra(Entry& e, const std::uint8_t* extra, std::size_t size, const std::string& what) {
  ByteReader x(extra, size, what + ": member '" + e.name + "': extra field");
  while (x.remaining() >= 4) {
    const auto id = x.get<std::uint16_t>(), length = x.get<std::uint16_t>();
    const std::uint8_t* body = x.get_bytes(length);
    if (id != 0x0001) continue;
    ByteReader z(body, length, what + ": member '" + e.name + "': zip64 extra field");
    if (e.uncompressed_size == zip64_marker) e.uncompressed_size = z.get<std::uint64_t>();
    if (e.compressed_size == zip64_marker) e.compressed_size = z.get<std::uint64_t>();
    if (e.local_header_offset == zip64_marker) e.local_header_offset = z.get<std::uint64_t>();
  }
}

/// Deflate expands at most 1032:1 (a 258-byte match costs at least 2 bits), so a larger claim
/// is a corrupt or hostile header; checking it first avoids a huge allocation.
inline bool plausible_inflated_size(std::uint64_t compressed, std::uint64_t uncompressed) {
  return uncompressed / 1032 <= compressed + 1;
}

}  // namespace detail

/// The central directory: every member's name, method, CRC, sizes and offset. `what` names
/// the function and the file in every error.
inline Directory read_directory(const Bytes& zip, const std::string& what) {
  const detail::EndRecord end = detail::find_end_record(zip, what);
  TESSERA_CHECK(end.offset <= end.end && end.size <= end.end - end.offset,
                what << ": central directory (offset " << end.offset << ", " << end.size << " bytes) runs past its end at "
                     << end.end);
  TESSERA_CHECK(end.entries <= end.size / central_header_size,
                what << ": central directory of " << end.size << " bytes cannot hold " << end.entries << " entries");
  ByteReader r(zip.data(), std::size_t(end.offset + end.size), what + ": central directory");
  r.seek(std::size_t(end.offset));
  Directory directory{{}, end.offset};
  for (std::uint64_t i = 0; i < end.entries; ++i) {
    TESSERA_CHECK(r.get<std::uint32_t>() == central_header_signature,
                  what << ": central directory entry " << i << " has a bad signature");
    Entry e;
    r.get<std::uint32_t>();  // versions made by / needed
    e.flags = r.get<std::uint16_t>();
    e.method = r.get<std::uint16_t>();
    r.get<std::uint32_t>();  // modification time and date
    e.crc = r.get<std::uint32_t>();
    e.compressed_size = r.get<std::uint32_t>();
    e.uncompressed_size = r.get<std::uint32_t>();
    const auto name_length = r.get<std::uint16_t>(), extra_length = r.get<std::uint16_t>();
    const auto comment_length = r.get<std::uint16_t>();
    r.get_bytes(8);  // disk number start, internal and external attributes
    e.local_header_offset = r.get<std::uint32_t>();
    e.name = std::string(reinterpret_cast<const char*>(r.get_bytes(name_length)), name_length);
    detail::apply_zip64_extra(e, r.get_bytes(extra_length), extra_length, what);
    r.get_bytes(comment_length);
    directory.entries.push_back(std::move(e));
  }
  return directory;
}

/// A member's bytes, decompressed (stored or deflate) and checked against its CRC-32.
inline Bytes read_member(const Bytes& zip, const Directory& directory, const Entry& e, const std::string& what) {
  const std::string member = what + ": member '" + e.name + "'";
  TESSERA_CHECK(!(e.flags & 0x0001), member << ": encrypted members are not supported");
  TESSERA_CHECK(e.method == 0 || e.method == 8,
                member << ": unsupported compression method " << e.method << " (only stored (0) and deflate (8))");
  TESSERA_CHECK(e.local_header_offset <= directory.members_end, member << ": local header offset " << e.local_header_offset
                                                                       << " is past the members' end at "
                                                                       << directory.members_end);
  ByteReader r(zip.data(), std::size_t(directory.members_end), member);
  r.seek(std::size_t(e.local_header_offset));
  TESSERA_CHECK(r.get<std::uint32_t>() == local_header_signature, member << ": bad local header signature");
  r.get_bytes(22);  // version, flags, method, time, date, crc, sizes: the central directory's are used
  const auto name_length = r.get<std::uint16_t>(), extra_length = r.get<std::uint16_t>();
  const std::string local_name(reinterpret_cast<const char*>(r.get_bytes(name_length)), name_length);
  TESSERA_CHECK(local_name == e.name, member << ": local header names it '" << local_name << "'");
  r.get_bytes(extra_length);
  TESSERA_CHECK(e.compressed_size <= r.remaining(), member << ": " << e.compressed_size << " bytes of data claimed, only "
                                                           << r.remaining() << " before the central directory");
  const std::uint8_t* data = r.get_bytes(std::size_t(e.compressed_size));
  Bytes out;
  if (e.method == 0) {
    TESSERA_CHECK(e.compressed_size == e.uncompressed_size,
                  member << ": stored member with sizes " << e.compressed_size << " and " << e.uncompressed_size);
    out.assign(data, data + e.compressed_size);
  } else {
    TESSERA_CHECK(detail::plausible_inflated_size(e.compressed_size, e.uncompressed_size),
                  member << ": claims " << e.uncompressed_size << " bytes from " << e.compressed_size
                         << " compressed bytes, more than deflate can expand");
    out = inflate_raw(data, std::size_t(e.compressed_size), std::size_t(e.uncompressed_size), member);
  }
  const std::uint32_t crc = crc32(out.data(), out.size());
  TESSERA_CHECK(crc == e.crc, member << ": CRC-32 mismatch (stored " << std::hex << e.crc << ", computed " << crc
                                     << "): corrupt data");
  return out;
}

/// A zip archive of stored (uncompressed) members, dated 1980-01-01 so output is reproducible.
/// Zip64 records are written when sizes or counts need them (or when forced, for tests).
inline Bytes write_stored(const std::vector<std::pair<std::string, Bytes>>& members, bool force_zip64 = false) {
  std::uint64_t total = end_record_size;
  for (const auto& [name, data] : members) total += local_header_size + central_header_size + 2 * name.size() + data.size();
  const bool zip64 = force_zip64 || members.size() >= 0xFFFF || total >= zip64_marker;
  const std::uint16_t version = zip64 ? 45 : 20;       // 4.5: zip64; 2.0: plain stored
  const std::uint16_t date = (0 << 9) | (1 << 5) | 1;  // MS-DOS date: (year − 1980) << 9 | month << 5 | day
  auto flags_for = [](const std::string& name) {       // bit 11: the name is UTF-8
    for (unsigned char c : name)
      if (c >= 0x80) return std::uint16_t(0x0800);
    return std::uint16_t(0);
  };
  auto field32 = [&](std::uint64_t v) { return zip64 ? zip64_marker : std::uint32_t(v); };

  ByteWriter w;
  std::vector<std::uint64_t> offsets;
  std::vector<std::uint32_t> crcs;
  for (const auto& [name, data] : members) {
    TESSERA_CHECK(!name.empty() && name.size() <= 0xFFFF, "zip: member name of " << name.size() << " bytes");
    offsets.push_back(w.bytes().size());
    crcs.push_back(crc32(data.data(), data.size()));
    w.put<std::uint32_t>(local_header_signature);
    w.put<std::uint16_t>(version);
    w.put<std::uint16_t>(flags_for(name));
    w.put<std::uint16_t>(0);  // method: stored
    w.put<std::uint16_t>(0);  // time 00:00:00
    w.put<std::uint16_t>(date);
    w.put<std::uint32_t>(crcs.back());
    w.put<std::uint32_t>(field32(data.size()));
    w.put<std::uint32_t>(field32(data.size()));
    w.put<std::uint16_t>(std::uint16_t(name.size()));
    w.put<std::uint16_t>(zip64 ? 20 : 0);
    w.put_bytes(name.data(), name.size());
    if (zip64) {  // id, length, uncompressed size, compressed size
      w.put<std::uint16_t>(0x0001);
      w.put<std::uint16_t>(16);
      w.put<std::uint64_t>(data.size());
      w.put<std::uint64_t>(data.size());
    }
    w.put_bytes(data.data(), data.size());
  }
  const std::uint64_t cd_offset = w.bytes().size();
  for (std::size_t i = 0; i < members.size(); ++i) {
    const auto& [name, data] = members[i];
    w.put<std::uint32_t>(central_header_signature);
    w.put<std::uint16_t>(std::uint16_t(3 << 8 | version));  // made by: Unix, so the mode below counts
    w.put<std::uint16_t>(version);
    w.put<std::uint16_t>(flags_for(name));
    w.put<std::uint16_t>(0);
    w.put<std::uint16_t>(0);
    w.put<std::uint16_t>(date);
    w.put<std::uint32_t>(crcs[i]);
    w.put<std::uint32_t>(field32(data.size()));
    w.put<std::uint32_t>(field32(data.size()));
    w.put<std::uint16_t>(std::uint16_t(name.size()));
    w.put<std::uint16_t>(zip64 ? 28 : 0);
    w.put<std::uint16_t>(0);                             // comment length
    w.put<std::uint16_t>(0);                             // disk number start
    w.put<std::uint16_t>(0);                             // internal attributes
    w.put<std::uint32_t>(std::uint32_t(0100644) << 16);  // external attributes: regular file, rw-r--r--
    w.put<std::uint32_t>(field32(offsets[i]));
    w.put_bytes(name.data(), name.size());
    if (zip64) {
      w.put<std::uint16_t>(0x0001);
      w.put<std::uint16_t>(24);
      w.put<std::uint64_t>(data.size());
      w.put<std::uint64_t>(data.size());
      w.put<std::uint64_t>(offsets[i]);
    }
  }
  const std::uint64_t cd_size = w.bytes().size() - cd_offset;
  if (zip64) {
    const std::uint64_t record = w.bytes().size();
    w.put<std::uint32_t>(zip64_end_signature);
    w.put<std::uint64_t>(zip64_end_record_size - 12);  // size of the rest of the record
    w.put<std::uint16_t>(std::uint16_t(3 << 8 | version));
    w.put<std::uint16_t>(version);
    w.put<std::uint32_t>(0);  // this disk
    w.put<std::uint32_t>(0);  // disk with the central directory
    w.put<std::uint64_t>(members.size());
    w.put<std::uint64_t>(members.size());
    w.put<std::uint64_t>(cd_size);
    w.put<std::uint64_t>(cd_offset);
    w.put<std::uint32_t>(zip64_locator_signature);
    w.put<std::uint32_t>(0);  // disk with the zip64 record
    w.put<std::uint64_t>(record);
    w.put<std::uint32_t>(1);  // total disks
  }
  w.put<std::uint32_t>(end_signature);
  w.put<std::uint16_t>(0);
  w.put<std::uint16_t>(0);
  w.put<std::uint16_t>(zip64 ? 0xFFFF : std::uint16_t(members.size()));
  w.put<std::uint16_t>(zip64 ? 0xFFFF : std::uint16_t(members.size()));
  w.put<std::uint32_t>(field32(cd_size));
  w.put<std::uint32_t>(field32(cd_offset));
  w.put<std::uint16_t>(0);  // comment length
  return std::move(w.bytes());
}

}  // namespace tessera::io::zip
