// tessera/io/npy.hpp — NumPy's .npy arrays and .npz archives, and a Module's state dict as .npz
// under PyTorch's names, so weights move between tessera, NumPy and PyTorch.
//
//   Tensor<float> a = load_npy<float>("a.npy");          save_npy("b.npy", a);
//   auto arrays = load_npz<float>("ref.npz");             save_npz("out.npz", arrays);
//   save_npz(model, "g.npz");                             load_npz(model, "g.npz");
//
// .npy (numpy.lib.format, NEP 1): "\x93NUMPY", major, minor, the header length (uint16 LE in
// version 1.0, uint32 LE in 2.0 and 3.0), then a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces and '\n',
// then the raw elements.
// .npz: a zip archive (zip.hpp) of NAME.npy members, stored (numpy.savez) or deflated
// (numpy.savez_compressed); numpy writes every member with a zip64 extra field.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "../nn/module.hpp"
#include "file.hpp"
#include "state_mismatch.hpp"
#include "zip.hpp"

namespace tessera::io {

namespace npy_detail {

// ---- overflow-safe sizes (every size here comes from an untrusted file) ---------------------

inline std::size_t checked_mul(std::size_t a, std::size_t b, const std::string& what, const char* quantity) {
  TESSERA_CHECK(b == 0 || a <= std::numeric_limits<std::size_t>::max() / b,
                what << ": " << quantity << " overflows (" << a << " * " << b << ")");
  return a * b;
}

/// Number of elements of `dims`; 0 if any axis is 0 (even when the others would overflow).
inline std::size_t element_count(const std::vector<std::size_t>& dims, const std::string& what) {
  for (std::size_t d : dims)
    if (d == 0) return 0;
  std::size_t n = 1;
  for (std::size_t d : dims) n = checked_mul(n, d, what, "element count");
  return n;
}

// ---- dtypes -----------------------------------------------------------------------------------

enum class Kind { floating, signed_int, unsigned_int, boolean };

struct Dtype {
  Kind kind;
  std::size_t size;  // bytes per element
  bool big_endian;
};

/// Parses a descr such as '<f4', '>i8', '|u1', '|b1': byte order, kind, size in bytes.
inline Dtype parse_descr(const std::string& descr, const std::string& what) {
  auto unsupported = [&] {
    TESSERA_FAIL(what << ": unsupported dtype '" << descr
                      << "' (supported: float16/32/64, int8/16/32/64, uint8/16/32/64, bool)");
  };
  if (descr.size() != 3) unsupported();
  const char order = descr[0], kind = descr[1], digit = descr[2];
  if (order != '<' && order != '>' && order != '|' && order != '=') unsupported();
  if (digit != '1' && digit != '2' && digit != '4' && digit != '8') unsupported();
  const std::size_t size = std::size_t(digit - '0');
  Dtype d{Kind::floating, size, order == '>'};
  switch (kind) {
    case 'f': d.kind = Kind::floating; break;
    case 'i': d.kind = Kind::signed_int; break;
    case 'u': d.kind = Kind::unsigned_int; break;
    case 'b': d.kind = Kind::boolean; break;
    default: unsupported();
  }
  if ((d.kind == Kind::floating && size == 1) || (d.kind == Kind::boolean && size != 1)) unsupported();
  if (order == '|' && size != 1) unsupported();  // '|' means "no byte order": 1-byte types only
  if (order == '=') {                            // native order
    const std::uint16_t probe = 1;
    std::uint8_t first;
    std::memcpy(&first, &probe, 1);
    d.big_endian = first == 0;
  }
  return d;
}

template <class T>
const char* descr_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "npy: T must be float or double");
  return std::is_same_v<T, float> ? "<f4" : "<f8";
}

// ---- element conversion -----------------------------------------------------------------------

/// The unsigned integer in the sizeof(UInt) bytes at p, in the file's byte order.
template <class UInt>
UInt load_uint(const std::uint8_t* p, bool big_endian) {
  UInt v = 0;
  for (std::size_t i = 0; i < sizeof(UInt); ++i) v |= UInt(UInt(p[big_endian ? sizeof(UInt) - 1 - i : i]) << (8 * i));
  return v;
}

template <class To, class From>
To bit_cast(From from) {
  static_assert(sizeof(To) == sizeof(From));
  To to;
  std::memcpy(&to, &from, sizeof(To));
  return to;
}

/// IEEE 754 binary16 → binary32: sign 1 bit, exponent 5 bits (bias 15), mantissa 10 bits.
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h >> 15) << 31;
  const std::uint32_t exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  if (exponent == 0) {  // zero or subnormal: mantissa · 2^-24
    const float magnitude = float(mantissa) * (1.0f / 16777216.0f);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));  // inf, nan
  return bit_cast<float>(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

template <class UInt, class T, class Convert>
void convert_elements(const std::uint8_t* src, std::size_t n, bool big_endian, T* dst, Convert convert) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(convert(load_uint<UInt>(src + i * sizeof(UInt), big_endian)));
}

/// Converts n elements of dtype `d` at src into T, in file order.
template <class T>
void convert_to(const Dtype& d, const std::uint8_t* src, std::size_t n, T* dst) {
  const bool be = d.big_endian;
  switch (d.kind) {
    case Kind::floating:
      if (d.size == 2) return convert_elements<std::uint16_t>(src, n, be, dst, half_to_float);
      if (d.size == 4) return convert_elements<std::uint32_t>(src, n, be, dst, [](std::uint32_t v) { return bit_cast<float>(v); });
      return convert_elements<std::uint64_t>(src, n, be, dst, [](std::uint64_t v) { return bit_cast<double>(v); });
    case Kind::signed_int:
      if (d.size == 1) return convert_elements<std::uint8_t>(src, n, be, dst, [](std::uint8_t v) { return std::int8_t(v); });
      if (d.size == 2) return convert_elements<std::uint16_t>(src, n, be, dst, [](std::uint16_t v) { return std::int16_t(v); });
      if (d.size == 4) return convert_elements<std::uint32_t>(src, n, be, dst, [](std::uint32_t v) { return std::int32_t(v); });
      return convert_elements<std::uint64_t>(src, n, be, dst, [](std::uint64_t v) { return std::int64_t(v); });
    case Kind::unsigned_int:
      if (d.size == 1) return convert_elements<std::uint8_t>(src, n, be, dst, [](std::uint8_t v) { return v; });
      if (d.size == 2) return convert_elements<std::uint16_t>(src, n, be, dst, [](std::uint16_t v) { return v; });
      if (d.size == 4) return convert_elements<std::uint32_t>(src, n, be, dst, [](std::uint32_t v) { return v; });
      return convert_elements<std::uint64_t>(src, n, be, dst, [](std::uint64_t v) { return v; });
    case Kind::boolean:
      return convert_elements<std::uint8_t>(src, n, be, dst, [](std::uint8_t v) { return v != 0 ? 1 : 0; });
  }
}

/// Reorders column-major (Fortran) data into row-major: walks the C-order multi-index like an
/// odometer, keeping the Fortran offset (strides 1, d0, d0·d1, ...) in step.
template <class T>
void fortran_to_c(const std::vector<T>& fortran, const std::vector<std::size_t>& dims, T* out) {
  const std::size_t rank = dims.size();
  std::vector<std::size_t> stride(rank), index(rank, 0);
  for (std::size_t k = 0, s = 1; k < rank; s *= dims[k], ++k) stride[k] = s;
  std::size_t f = 0;
  for (std::size_t c = 0; c < fortran.size(); ++c) {
    out[c] = fortran[f];
    for (std::size_t k = rank; k-- > 0;) {
      f += stride[k];
      if (++index[k] < dims[k]) break;
      f -= stride[k] * dims[k];
      index[k] = 0;
    }
  }
}

// ---- the header dict --------------------------------------------------------------------------

/// Parses the Python literal the header holds: a dict with string keys and string, bool or
/// integer-tuple values; keys in any order, any spacing, trailing commas.
class HeaderParser {
 public:
  HeaderParser(std::string text, std::string what) : text_(std::move(text)), what_(std::move(what)) {}

  struct Result {
    std::string descr;
    bool fortran_order = false;
    std::vector<std::size_t> shape;
  };

  Result parse() {
    Result r;
    std::set<std::string> seen;
    expect('{');
    while (!accept('}')) {
      const std::string key = parse_string();
      TESSERA_CHECK(seen.insert(key).second, what_ << ": header has key '" << key << "' twice");
      expect(':');
      if (key == "descr") {
        skip_space();
        TESSERA_CHECK(pos_ < text_.size() && (text_[pos_] == '\'' || text_[pos_] == '"'),
                      what_ << ": unsupported dtype (structured or non-string 'descr' in header: " << text_ << ")");
        r.descr = parse_string();
      } else if (key == "fortran_order") {
        r.fortran_order = parse_bool();
      } else if (key == "shape") {
        r.shape = parse_shape();
      } else {
        TESSERA_FAIL(what_ << ": header has unknown key '" << key << "' (expected 'descr', 'fortran_order', 'shape')");
      }
      if (!accept(',')) {
        expect('}');
        break;
      }
    }
    skip_space();
    TESSERA_CHECK(pos_ == text_.size(), what_ << ": unexpected text after the header dict at byte " << pos_);
    for (const char* key : {"descr", "fortran_order", "shape"})
      TESSERA_CHECK(seen.count(key), what_ << ": header has no '" << key << "'");
    return r;
  }

 private:
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  bool accept(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    TESSERA_CHECK(accept(c), what_ << ": malformed header: expected '" << c << "' at byte " << pos_ << " of " << text_.size());
  }
  std::string parse_string() {
    skip_space();
    TESSERA_CHECK(pos_ < text_.size() && (text_[pos_] == '\'' || text_[pos_] == '"'),
                  what_ << ": malformed header: expected a quoted string at byte " << pos_);
    const char quote = text_[pos_++];
    const std::size_t end = text_.find(quote, pos_);
    TESSERA_CHECK(end != std::string::npos, what_ << ": malformed header: unterminated string");
    std::string s = text_.substr(pos_, end - pos_);
    TESSERA_CHECK(s.find('\\') == std::string::npos, what_ << ": malformed header: escapes in string '" << s << "'");
    pos_ = end + 1;
    return s;
  }
  bool parse_bool() {
    skip_space();
    for (const char* word : {"True", "False"}) {
      if (text_.compare(pos_, std::strlen(word), word) == 0) {
        pos_ += std::strlen(word);
        return word[0] == 'T';
      }
    }
    TESSERA_FAIL(what_ << ": malformed header: 'fortran_order' must be True or False");
  }
  std::size_t parse_size() {
    skip_space();
    TESSERA_CHECK(pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_])),
                  what_ << ": malformed header: expected a non-negative integer in 'shape' at byte " << pos_);
    std::size_t v = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      const std::size_t digit = std::size_t(text_[pos_++] - '0');
      TESSERA_CHECK(v <= (std::numeric_limits<std::size_t>::max() - digit) / 10, what_ << ": 'shape' entry overflows");
      v = v * 10 + digit;
    }
    if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2 long literal, in old files
    return v;
  }
  std::vector<std::size_t> parse_shape() {
    std::vector<std::size_t> dims;
    expect('(');
    while (!accept(')')) {
      dims.push_back(parse_size());
      if (!accept(',')) {
        expect(')');
        break;
      }
    }
    return dims;
  }

  std::string text_;
  std::string what_;
  std::size_t pos_ = 0;
};

struct NpyHeader {
  Dtype dtype;
  bool fortran_order;
  std::vector<std::size_t> shape;
  std::size_t data_offset;  // where the elements start
};

inline NpyHeader read_npy_header(const std::uint8_t* data, std::size_t size, const std::string& what) {
  static const std::uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  TESSERA_CHECK(size >= 6 && std::memcmp(data, magic, 6) == 0, what << ": bad magic (not a .npy file)");
  ByteReader r(data, size, what);
  r.get_bytes(6);
  const auto major = r.get<std::uint8_t>(), minor = r.get<std::uint8_t>();
  TESSERA_CHECK((major == 1 || major == 2 || major == 3) && minor == 0,
                what << ": unsupported .npy format version " << int(major) << "." << int(minor) << " (known: 1.0, 2.0, 3.0)");
  const std::size_t header_length = major == 1 ? r.get<std::uint16_t>() : r.get<std::uint32_t>();
  TESSERA_CHECK(header_length <= r.remaining(),
                what << ": truncated header: expected " << header_length << " bytes, got " << r.remaining());
  const auto* text = reinterpret_cast<const char*>(r.get_bytes(header_length));
  const auto dict = HeaderParser(std::string(text, header_length), what).parse();
  return {parse_descr(dict.descr, what), dict.fortran_order, dict.shape, r.position()};
}

// ---- .npy decode / encode -----------------------------------------------------------------------

/// The bytes of data a header declares; an Error where they are not exactly `got`, the bytes
/// after the header (checked before anything is allocated, and before the data is read).
inline std::size_t check_npy_data_size(const NpyHeader& h, std::uint64_t got, const std::string& what) {
  TESSERA_CHECK(h.shape.size() <= Shape::max_rank,
                what << ": " << h.shape.size() << " axes, more than tessera's " << Shape::max_rank);
  const std::size_t count = element_count(h.shape, what);
  const std::size_t expected = checked_mul(count, h.dtype.size, what, "data size");
  TESSERA_CHECK(got >= expected, what << ": truncated data: expected " << expected << " bytes, got " << got);
  TESSERA_CHECK(got == expected, what << ": " << (got - expected) << " bytes after the data (expected " << expected
                                      << " bytes for shape " << Shape(h.shape) << ")");
  return count;
}

template <class T>
Tensor<T> decode_npy(const std::uint8_t* data, std::size_t size, const std::string& what) {
  const NpyHeader h = read_npy_header(data, size, what);
  const std::size_t count = check_npy_data_size(h, size - h.data_offset, what);
  Tensor<T> out = Tensor<T>::empty(Shape(h.shape));
  const std::uint8_t* elements = data + h.data_offset;
  if (!h.fortran_order || h.shape.size() < 2) {
    convert_to(h.dtype, elements, count, out.data());
  } else {
    std::vector<T> file_order(count);
    convert_to(h.dtype, elements, count, file_order.data());
    fortran_to_c(file_order, h.shape, out.data());
  }
  return out;
}

/// Python's tuple syntax: (), (5,), (3, 4).
inline std::string shape_literal(const Shape& s) {
  std::ostringstream os;
  os << '(';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  if (s.size() == 1) os << ',';
  os << ')';
  return os.str();
}

/// A .npy file as numpy ≥ 1.13 writes it (format.write_array): byte-identical to np.save.
template <class T>
Bytes encode_npy(const Tensor<T>& t, const std::string& what) {
  TESSERA_CHECK(t.defined(), what << ": the tensor is undefined");
  const std::string dict =
      std::string("{'descr': '") + descr_of<T>() + "', 'fortran_order': False, 'shape': " + shape_literal(t.shape()) + ", }";
  // numpy's _wrap_header: pad with spaces so magic (6) + version (2) + length field + header
  // + '\n' is a multiple of 64 (ARRAY_ALIGN); version 2.0 only when the length needs 4 bytes.
  auto padding = [&](std::size_t length_field) { return 64 - (8 + length_field + dict.size() + 1) % 64; };
  const bool version2 = dict.size() + 1 + padding(2) > 0xFFFF;
  const std::size_t header_length = dict.size() + padding(version2 ? 4 : 2) + 1;
  ByteWriter w;
  w.put_bytes("\x93NUMPY", 6);
  w.put<std::uint8_t>(version2 ? 2 : 1);
  w.put<std::uint8_t>(0);
  w.put<std::uint32_t>(std::uint32_t(header_length), version2 ? 4 : 2);
  w.put_bytes(dict.data(), dict.size());
  w.bytes().resize(w.bytes().size() + header_length - dict.size() - 1, ' ');
  w.put<std::uint8_t>('\n');
  Bytes& out = w.bytes();
  const std::size_t start = out.size();
  out.resize(start + t.size() * sizeof(T));
  using UInt = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  for (std::size_t i = 0; i < t.size(); ++i) {  // little-endian whatever the host
    const UInt bits = bit_cast<UInt>(t[i]);
    for (std::size_t b = 0; b < sizeof(T); ++b) out[start + i * sizeof(T) + b] = std::uint8_t(bits >> (8 * b));
  }
  return std::move(out);
}

// ---- .npz ---------------------------------------------------------------------------------------

/// Every array of an .npz archive held in memory; `what` names the function and the file.
template <class T>
std::map<std::string, Tensor<T>> decode_npz(const Bytes& archive, const std::string& what) {
  const zip::Directory directory = zip::read_directory(archive, what);
  std::map<std::string, Tensor<T>> arrays;
  for (const zip::Entry& e : directory.entries) {
    const std::string suffix = ".npy";
    TESSERA_CHECK(e.name.size() > suffix.size() && e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0,
                  what << ": member '" << e.name << "' is not a .npy array");
    const std::string key = e.name.substr(0, e.name.size() - suffix.size());
    TESSERA_CHECK(!arrays.count(key), what << ": member '" << e.name << "' appears twice");
    const Bytes npy = zip::read_member(archive, directory, e, what);
    arrays.emplace(key, decode_npy<T>(npy.data(), npy.size(), what + ": member '" + e.name + "'"));
  }
  return arrays;
}

/// Runs f; an Error from the file layer (which names the path) gets the function's name in front.
template <class F>
auto naming_function(const char* function, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(std::string(function) + ": " + e.what());
  }
}


/// A .npy file's bytes, its header read and its declared data size checked against the file's
/// size before the data is read (a wrong file of any size is refused at once).
inline Bytes read_npy_file(const std::string& path) {
  const InputFile file(path);
  const Bytes start = file.prefix(12);  // magic, version and header length
  static const std::uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  TESSERA_CHECK(start.size() >= 6 && std::memcmp(start.data(), magic, 6) == 0, path << ": bad magic (not a .npy file)");
  std::size_t header_size = start.size();  // the version and length fields, read (and checked) as decode reads them
  if (start.size() >= 10) {
    const std::size_t length_bytes = start[6] == 1 ? 2 : 4;
    std::size_t length = 0;
    for (std::size_t i = 0; i < length_bytes && 8 + i < start.size(); ++i) length |= std::size_t(start[8 + i]) << (8 * i);
    header_size = std::size_t(std::min<std::uint64_t>(file.size(), 8 + length_bytes + std::uint64_t(length)));
  }
  const Bytes head = file.prefix(header_size);
  const NpyHeader h = read_npy_header(head.data(), head.size(), path);
  check_npy_data_size(h, file.size() - h.data_offset, path);
  return file.read_all();
}

/// A .npz file's bytes, after its last 64 KB are found to end with a zip archive's End of
/// Central Directory record (a wrong file of any size is refused at once).
inline Bytes read_npz_file(const std::string& path) {
  const InputFile file(path);
  TESSERA_CHECK(file.size() >= zip::end_record_size, path << ": not a zip archive (" << file.size()
                                                           << " bytes, too small for an End of Central Directory record)");
  const std::uint64_t tail_size = std::min<std::uint64_t>(file.size(), zip::end_record_size + 0xFFFF);
  const Bytes tail = file.read(file.size() - tail_size, std::size_t(tail_size));
  bool found = false;
  for (std::size_t pos = tail.size() >= zip::end_record_size ? tail.size() - zip::end_record_size + 1 : 0; !found && pos-- > 0;)
    found = zip::detail::le32(tail, pos) == zip::end_signature && pos + zip::end_record_size + zip::detail::le16(tail, pos + 20) == tail.size();
  TESSERA_CHECK(found, path << ": not a zip archive (no End of Central Directory record)");
  return file.read_all();
}

template <class T>
void write_npz(const std::string& path, const std::vector<std::pair<std::string, const Tensor<T>*>>& arrays) {
  const std::string what = "save_npz: " + path;
  std::vector<std::pair<std::string, Bytes>> members;
  for (const auto& [key, tensor] : arrays) {
    TESSERA_CHECK(!key.empty(), what << ": empty array name");
    members.emplace_back(key + ".npy", encode_npy(*tensor, what + ": array '" + key + "'"));
  }
  const Bytes archive = zip::write_stored(members);
  naming_function("save_npz", [&] { write_file_atomically(path, archive); });
}

inline bool is_num_batches_tracked(const std::string& key) {
  const std::string name = "num_batches_tracked";
  return key == name || (key.size() > name.size() && key.compare(key.size() - name.size() - 1, name.size() + 1, "." + name) == 0);
}

}  // namespace npy_detail

// ---- public API ---------------------------------------------------------------------------------

/// Reads a .npy file (format 1.0, 2.0 or 3.0; float16/32/64, (u)int8-64 or bool, either byte
/// order, C or Fortran order), converting the values to T and the layout to row-major.
template <class T>
Tensor<T> load_npy(const std::string& path) {
  const Bytes bytes = npy_detail::naming_function("load_npy", [&] { return npy_detail::read_npy_file(path); });
  return npy_detail::decode_npy<T>(bytes.data(), bytes.size(), "load_npy: " + path);
}

/// Writes `tensor` as .npy ('<f4' for float, '<f8' for double, C order), atomically.
template <class T>
void save_npy(const std::string& path, const Tensor<T>& tensor) {
  const Bytes bytes = npy_detail::encode_npy(tensor, "save_npy: " + path);
  npy_detail::naming_function("save_npy", [&] { write_file_atomically(path, bytes); });
}

/// Every array of an .npz archive (numpy.savez or savez_compressed), by name without ".npy".
template <class T>
std::map<std::string, Tensor<T>> load_npz(const std::string& path) {
  const Bytes archive = npy_detail::naming_function("load_npz", [&] { return npy_detail::read_npz_file(path); });
  return npy_detail::decode_npz<T>(archive, "load_npz: " + path);
}

/// Writes the arrays as an uncompressed .npz (like numpy.savez), atomically.
template <class T>
void save_npz(const std::string& path, const std::map<std::string, Tensor<T>>& arrays) {
  std::vector<std::pair<std::string, const Tensor<T>*>> list;
  for (const auto& [key, tensor] : arrays) list.emplace_back(key, &tensor);
  npy_detail::write_npz(path, list);
}

/// A module's parameters and buffers under their state-dict names ("0.weight",
/// "1.running_mean"): np.load gives PyTorch's state_dict() for the same architecture.
template <class T>
void save_npz(const nn::Module<T>& module, const std::string& path) {
  auto parameters = module.named_parameters();
  std::vector<std::pair<std::string, const Tensor<T>*>> list;
  for (const auto& [name, p] : parameters) list.emplace_back(name, &p.value());
  for (const auto& [name, buffer] : module.named_buffers()) list.emplace_back(name, &buffer);
  npy_detail::write_npz(path, list);
}

/// Loads a state dict saved by save_npz or by numpy.savez(**torch_model.state_dict()), strictly:
/// every parameter and buffer must be present with the model's shape, and no other keys
/// (PyTorch's "num_batches_tracked" buffers excepted, and ignored). On any mismatch one Error
/// lists every offending key and the module is left untouched. Values convert to T.
template <class T>
void load_npz(nn::Module<T>& module, const std::string& path) {
  std::map<std::string, Tensor<T>> file = load_npz<T>(path);
  auto parameters = module.named_parameters();
  std::vector<std::pair<std::string, Tensor<T>*>> targets;
  for (auto& [name, p] : parameters) targets.emplace_back(name, &p.value());
  for (auto& [name, buffer] : module.named_buffers()) targets.emplace_back(name, &buffer);

  StateMismatch mismatch;
  std::set<std::string> model_keys;
  for (const auto& [name, target] : targets) {
    model_keys.insert(name);
    const auto found = file.find(name);
    if (found == file.end()) {
      mismatch.add(StateMismatch::missing, '"' + name + '"');
    } else if (found->second.shape() != target->shape()) {
      std::ostringstream os;
      os << '"' << name << "\" file " << found->second.shape() << " vs model " << target->shape();
      mismatch.add(StateMismatch::shape_mismatch, os.str());
    }
  }
  for (const auto& [key, value] : file)
    if (!model_keys.count(key) && !npy_detail::is_num_batches_tracked(key))
      mismatch.add(StateMismatch::unexpected, '"' + key + '"');
  TESSERA_CHECK(mismatch.empty(), "load_npz: " << path << ": does not match the model, nothing was loaded; " << mismatch.summary());
  for (auto& [name, target] : targets) {
    const Tensor<T>& source = file.at(name);
    std::copy(source.begin(), source.end(), target->begin());
  }
}

}  // namespace tessera::io
