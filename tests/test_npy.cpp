// .npy / .npz: round trips, files written by NumPy (tests/data/npy, from make_fixtures.py), header
// parsing, zip details (zip64, comments, deflate), strict state-dict loading, a PyTorch model
// (tests/reference/torch_interop.py), and corrupt files.
//
// Fixture values are arange-based: ramp(i) = 0.25·i − 1, as in make_fixtures.py.
// The hidden cases tagged [npy_export] / [npz_export] write files for tests/numpy_roundtrip.py
// and tests/reference/torch_interop.py (ctest npy_numpy_roundtrip, npz_torch_roundtrip).
#include "gradcheck.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace tessera;
using tessera::testing::error_of;
using tessera::testing::TempDir;
using tessera::testing::write_bytes;
namespace fs = std::filesystem;
namespace npy = tessera::io::npy_detail;

namespace {

std::string fixture(const std::string& name) { return std::string(TESSERA_TEST_DATA_DIR) + "/npy/" + name; }


/// True when f throws tessera::Error; any other exception escapes and fails the test.
template <class F>
bool throws_error(F&& f) {
  try {
    f();
  } catch (const Error&) {
    return true;
  }
  return false;
}

double ramp(std::size_t i) { return 0.25 * double(i) - 1.0; }

template <class T>
Tensor<T> ramp_tensor(const Shape& shape) {
  Tensor<T> t = Tensor<T>::empty(shape);
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = T(ramp(i));
  return t;
}

/// Shape and every value: expected(i) for the i-th element in row-major order.
template <class T, class F>
void check_tensor(const Tensor<T>& t, const Shape& shape, F expected) {
  REQUIRE(t.shape() == shape);
  for (std::size_t i = 0; i < t.size(); ++i) {
    INFO("element " << i);
    CHECK(double(t[i]) == double(expected(i)));
  }
}

template <class T>
bool identical(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() && std::equal(a.begin(), a.end(), b.begin());
}

template <class T>
bool identical(const std::map<std::string, Tensor<T>>& a, const std::map<std::string, Tensor<T>>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [key, t] : a)
    if (!b.count(key) || !identical(t, b.at(key))) return false;
  return true;
}

void put_u16(io::Bytes& b, std::size_t pos, std::uint16_t v) {
  b[pos] = std::uint8_t(v);
  b[pos + 1] = std::uint8_t(v >> 8);
}
void put_u32(io::Bytes& b, std::size_t pos, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[pos + i] = std::uint8_t(v >> (8 * i));
}
std::uint32_t get_u32(const io::Bytes& b, std::size_t pos) {
  return std::uint32_t(b[pos]) | std::uint32_t(b[pos + 1]) << 8 | std::uint32_t(b[pos + 2]) << 16 | std::uint32_t(b[pos + 3]) << 24;
}
std::uint16_t get_u16(const io::Bytes& b, std::size_t pos) { return std::uint16_t(b[pos] | b[pos + 1] << 8); }

/// Offset of the first central directory entry of a plain (non-zip64, comment-free) archive.
std::size_t central_directory_of(const io::Bytes& zip) { return get_u32(zip, zip.size() - 22 + 16); }

/// A .npy file with this header dict text (padded with spaces to a multiple of 64 unless not
/// `aligned`) and payload.
io::Bytes make_npy(const std::string& dict, const io::Bytes& payload, int major = 1, bool aligned = true) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  while (aligned && (prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  io::ByteWriter w;
  w.put_bytes("\x93NUMPY", 6);
  w.put<std::uint8_t>(std::uint8_t(major));
  w.put<std::uint8_t>(0);
  w.put<std::uint32_t>(std::uint32_t(header.size()), major == 1 ? 2 : 4);
  w.put_bytes(header.data(), header.size());
  w.put_bytes(payload.data(), payload.size());
  return w.bytes();
}

/// n little-endian float32s 0, 1, 2, ...
io::Bytes float_payload(std::size_t n) {
  io::ByteWriter w;
  for (std::size_t i = 0; i < n; ++i) w.put<std::uint32_t>(npy::bit_cast<std::uint32_t>(float(i)));
  return w.bytes();
}

Tensor<float> decode(const io::Bytes& bytes) { return npy::decode_npy<float>(bytes.data(), bytes.size(), "test.npy"); }

/// nn.Sequential(Conv2d(3, 8, 4, 2, 1), BatchNorm2d(8), LeakyReLU(0.2), Flatten(), Linear(8*4*4, 1)),
/// as in tests/reference/torch_interop.py.
template <class T>
std::unique_ptr<nn::Sequential<T>> torch_like_model() {
  auto m = std::make_unique<nn::Sequential<T>>();
  m->template add<nn::Conv2D>(3, 8, 4, 2, 1);
  m->template add<nn::BatchNorm>(8);
  m->template add<nn::LeakyReLU>(0.2);
  m->template add<nn::Flatten>();
  m->template add<nn::Dense>(8 * 4 * 4, 1);
  return m;
}

/// Every parameter and buffer value, by state-dict name.
template <class T>
std::map<std::string, Tensor<T>> state_of(const nn::Module<T>& m) {
  std::map<std::string, Tensor<T>> out;
  for (const auto& [name, p] : m.named_parameters()) out.emplace(name, p.value());
  for (const auto& [name, b] : m.named_buffers()) out.emplace(name, b);
  return out;
}

/// Runs a few training-mode forwards so BatchNorm's running statistics move away from (0, 1).
template <class T>
void warm_up(nn::Sequential<T>& m, std::uint64_t seed) {
  Rng rng(seed);
  m.train();
  for (int i = 0; i < 3; ++i) m(Var<T>(Tensor<T>::randn({4, 3, 8, 8}, rng, T(0.5), T(2))));
  m.eval();
}

std::string export_dir() {
  const char* dir = std::getenv("TESSERA_NPY_EXPORT_DIR");
  REQUIRE(dir != nullptr);  // set by tests/numpy_roundtrip.py and tests/reference/torch_interop.py
  return dir;
}

}  // namespace

// ---- .npy ---------------------------------------------------------------------------------------

TEST_CASE("npy round trip keeps shape and values", "[io][npy]") {
  TempDir dir;
  const auto f = ramp_tensor<float>({3, 4});
  const auto d = ramp_tensor<double>({2, 3, 4, 5});
  const auto scalar = Tensor<float>::scalar(3.5f);
  const auto vector = ramp_tensor<double>({5});
  const auto empty = Tensor<float>::zeros({0, 3});
  io::save_npy(dir / "f.npy", f);
  io::save_npy(dir / "d.npy", d);
  io::save_npy(dir / "scalar.npy", scalar);
  io::save_npy(dir / "vector.npy", vector);
  io::save_npy(dir / "empty.npy", empty);

  CHECK(identical(io::load_npy<float>(dir / "f.npy"), f));
  CHECK(identical(io::load_npy<double>(dir / "d.npy"), d));
  CHECK(identical(io::load_npy<float>(dir / "scalar.npy"), scalar));
  CHECK(identical(io::load_npy<double>(dir / "vector.npy"), vector));
  CHECK(identical(io::load_npy<float>(dir / "empty.npy"), empty));
  // across types: values convert
  CHECK(identical(io::load_npy<double>(dir / "f.npy"), f.cast<double>()));
  CHECK(identical(io::load_npy<float>(dir / "d.npy"), d.cast<float>()));
  // the header is padded to a multiple of 64 bytes and ends in '\n'
  const io::Bytes bytes = io::read_file(dir / "d.npy");
  const std::size_t header_end = bytes.size() - d.size() * sizeof(double);
  CHECK(header_end % 64 == 0);
  CHECK(bytes[header_end - 1] == '\n');
  CHECK(error_of([] { io::save_npy("unused.npy", Tensor<float>()); }) == "save_npy: unused.npy: the tensor is undefined");
}

TEST_CASE("npy writer output is byte-identical to np.save", "[io][npy]") {
  TempDir dir;
  io::save_npy(dir / "f4.npy", ramp_tensor<float>({3, 4}));
  io::save_npy(dir / "f8.npy", ramp_tensor<double>({3, 4}));
  CHECK(io::read_file(dir / "f4.npy") == io::read_file(fixture("f4_le.npy")));
  CHECK(io::read_file(dir / "f8.npy") == io::read_file(fixture("f8_le.npy")));
}

TEST_CASE("npy files written by numpy: dtypes, byte orders, Fortran order, versions", "[io][npy]") {
  for (const char* name : {"f4_le.npy", "f4_be.npy", "f8_le.npy", "f8_be.npy", "f2_le.npy"}) {
    INFO(name);
    check_tensor(io::load_npy<float>(fixture(name)), {3, 4}, ramp);
    check_tensor(io::load_npy<double>(fixture(name)), {3, 4}, ramp);
  }
  auto index = [](std::size_t i) { return double(i); };
  // column-major on disk, row-major in memory: C-order element i holds i
  check_tensor(io::load_npy<float>(fixture("fortran_2d.npy")), {3, 4}, index);
  const auto fortran3 = io::load_npy<double>(fixture("fortran_3d.npy"));
  check_tensor(fortran3, {2, 3, 4}, index);
  CHECK(fortran3.at(1, 2, 3) == 23.0);

  check_tensor(io::load_npy<float>(fixture("i1.npy")), {8}, [](std::size_t i) { return double(i) - 4; });
  check_tensor(io::load_npy<float>(fixture("i2_be.npy")), {6}, [](std::size_t i) { return (double(i) - 3) * 1000; });
  check_tensor(io::load_npy<double>(fixture("i4.npy")), {10}, [](std::size_t i) { return (double(i) - 5) * 100000; });
  const std::vector<double> i8{-std::ldexp(1.0, 40), -1, 0, 1, std::ldexp(1.0, 40)};
  check_tensor(io::load_npy<double>(fixture("i8.npy")), {5}, [&](std::size_t i) { return i8[i]; });
  check_tensor(io::load_npy<float>(fixture("i8.npy")), {5}, [&](std::size_t i) { return i8[i]; });
  check_tensor(io::load_npy<float>(fixture("u1.npy")), {6}, [](std::size_t i) { return 250.0 + double(i); });
  const std::vector<double> u8{0, 1, std::ldexp(1.0, 40)};
  check_tensor(io::load_npy<double>(fixture("u8_be.npy")), {3}, [&](std::size_t i) { return u8[i]; });
  check_tensor(io::load_npy<float>(fixture("b1.npy")), {6}, [](std::size_t i) { return i % 3 == 0 ? 1.0 : 0.0; });

  check_tensor(io::load_npy<float>(fixture("v2.npy")), {2, 3}, index);
  check_tensor(io::load_npy<double>(fixture("v3.npy")), {3, 2}, index);

  const auto scalar = io::load_npy<double>(fixture("scalar.npy"));
  CHECK(scalar.shape() == Shape{});
  CHECK(scalar.item() == 3.5);
  const auto empty = io::load_npy<float>(fixture("empty.npy"));
  CHECK(empty.shape() == Shape{0, 3});
  CHECK(empty.size() == 0);
}

TEST_CASE("npy header dict: any key order, spacing, quotes, trailing commas, tuples", "[io][npy]") {
  auto index = [](std::size_t i) { return double(i); };
  const io::Bytes six = float_payload(6);
  check_tensor(decode(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", six)), {2, 3}, index);
  check_tensor(decode(make_npy("{'shape':(2,3),'fortran_order':False,'descr':'<f4'}", six)), {2, 3}, index);
  check_tensor(decode(make_npy("{ \"descr\" : \"<f4\" ,\n 'shape' : ( 6 , ) , 'fortran_order' : False , }", six)), {6}, index);
  check_tensor(decode(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6L,)}", six)), {6}, index);
  check_tensor(decode(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 1, 3)}", six, 2)), {1, 2, 1, 3}, index);
  check_tensor(decode(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", six, 3)), {2, 3}, index);
  // Fortran (3, 2): file order runs down the columns, so C-order (i, j) holds file element j·3 + i
  const std::vector<double> transposed{0, 3, 1, 4, 2, 5};
  check_tensor(decode(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2)}", six)), {3, 2},
               [&](std::size_t i) { return transposed[i]; });
  // rank 0 and rank 1 are the same in either order
  check_tensor(decode(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': ()}", float_payload(1))), {}, index);
  check_tensor(decode(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (6,)}", six)), {6}, index);
  // an empty axis makes any other size fine: no elements, no bytes
  CHECK(decode(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904)}", {})).size() == 0);
}

TEST_CASE("npy errors name the function, the file and the reason", "[io][npy]") {
  TempDir dir;
  auto load_error = [&](const io::Bytes& bytes) {
    write_bytes(dir / "bad.npy", bytes);
    return error_of([&] { io::load_npy<float>(dir / "bad.npy"); });
  };
  auto header_error = [&](const std::string& dict, const io::Bytes& payload = {}) { return load_error(make_npy(dict, payload)); };
  const std::string prefix = "load_npy: " + (dir / "bad.npy") + ": ";
  using Catch::Matchers::Contains;
  using Catch::Matchers::StartsWith;

  CHECK_THAT(error_of([&] { io::load_npy<float>(dir / "missing.npy"); }),
             StartsWith("load_npy: cannot open " + (dir / "missing.npy")) && Contains("No such file"));
  CHECK(load_error({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0}) == prefix + "bad magic (not a .npy file)");
  CHECK(load_error({}) == prefix + "bad magic (not a .npy file)");
  io::Bytes v4 = make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': ()}", float_payload(1));
  v4[6] = 4;
  CHECK(load_error(v4) == prefix + "unsupported .npy format version 4.0 (known: 1.0, 2.0, 3.0)");
  io::Bytes long_header = make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': ()}", {});
  const int header_length = long_header[8];
  long_header[8] = 0xFF;
  CHECK(load_error(long_header) == prefix + "truncated header: expected 255 bytes, got " + std::to_string(header_length));

  for (const char* descr : {"<c8", "|O", "<U3", "<f16", "|f4", "<b2", "|f1", "<M8[ns]", "float32"})
    CHECK(header_error(std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': ()}") ==
          prefix + "unsupported dtype '" + descr + "' (supported: float16/32/64, int8/16/32/64, uint8/16/32/64, bool)");
  CHECK_THAT(header_error("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': ()}"),
             StartsWith(prefix + "unsupported dtype (structured"));

  const std::string f4_23 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}";
  CHECK(header_error(f4_23, float_payload(5)) == prefix + "truncated data: expected 24 bytes, got 20");
  CHECK(header_error(f4_23, float_payload(7)) == prefix + "4 bytes after the data (expected 24 bytes for shape (2, 3))");
  // a tiny file claiming 2^40 elements: refused before anything is allocated
  const io::Bytes huge = make_npy("{'descr':'<f4','fortran_order':False,'shape':(1099511627776,)}", io::Bytes(27, 0), 1, false);
  CHECK(huge.size() == 100);
  CHECK(load_error(huge) == prefix + "truncated data: expected 4398046511104 bytes, got 27");
  CHECK(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16)}") ==
        prefix + "element count overflows (4294967296 * 4294967296)");
  CHECK(header_error("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,)}") ==
        prefix + "data size overflows (4611686018427387904 * 8)");
  CHECK(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}") ==
        prefix + "'shape' entry overflows");
  CHECK(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1)}") ==
        prefix + "9 axes, more than tessera's 8");

  CHECK(header_error("{'descr': '<f4', 'shape': (2, 3)}") == prefix + "header has no 'fortran_order'");
  CHECK(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'extra': 1}") ==
        prefix + "header has unknown key 'extra' (expected 'descr', 'fortran_order', 'shape')");
  CHECK(header_error("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}") ==
        prefix + "header has key 'descr' twice");
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}"),
             StartsWith(prefix + "malformed header: expected a non-negative integer in 'shape'"));
  CHECK(header_error("{'descr': '<f4', 'fortran_order': 0, 'shape': ()}") ==
        prefix + "malformed header: 'fortran_order' must be True or False");
  CHECK(header_error("{'descr': '<f4, 'fortran_order': False, 'shape': ()}").rfind(prefix + "malformed header", 0) == 0);
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': ()} x"),
             StartsWith(prefix + "unexpected text after the header dict"));
  CHECK_THAT(header_error("['descr', '<f4']"), StartsWith(prefix + "malformed header: expected '{'"));
}

TEST_CASE("npy corrupt files: truncations and header damage are Errors, never crashes", "[io][npy]") {
  for (const char* name : {"f4_le.npy", "fortran_3d.npy", "i8.npy", "v3.npy"}) {
    INFO(name);
    const io::Bytes good = io::read_file(fixture(name));
    const auto reference = npy::decode_npy<double>(good.data(), good.size(), name);
    const std::size_t header_end = good.size() - reference.size() * npy::read_npy_header(good.data(), good.size(), name).dtype.size;
    for (std::size_t n = 0; n < good.size(); ++n) {
      INFO("truncated to " << n << " bytes");
      // a fresh copy of exactly n bytes, so a sanitizer sees any read past the end
      const io::Bytes cut(good.begin(), good.begin() + std::ptrdiff_t(n));
      CHECK(throws_error([&] { npy::decode_npy<double>(cut.data(), cut.size(), name); }));
    }
    for (std::size_t i = 0; i < good.size(); ++i) {
      INFO("byte " << i << " flipped");
      io::Bytes bad = good;
      bad[i] ^= 0xFF;
      if (i < header_end) {
        CHECK(throws_error([&] { npy::decode_npy<double>(bad.data(), bad.size(), name); }));
      } else {  // data damage cannot be detected without a checksum: the values change, nothing breaks
        CHECK_FALSE(identical(npy::decode_npy<double>(bad.data(), bad.size(), name), reference));
      }
      for (int bit = 0; bit < 8; ++bit) {  // single bit flips may give another valid header; never a crash
        io::Bytes flipped = good;
        flipped[i] ^= std::uint8_t(1 << bit);
        throws_error([&] { npy::decode_npy<double>(flipped.data(), flipped.size(), name); });
      }
    }
  }
}

// ---- .npz ---------------------------------------------------------------------------------------

TEST_CASE("npz archives from numpy.savez and numpy.savez_compressed", "[io][npy]") {
  for (const char* name : {"savez.npz", "savez_compressed.npz"}) {
    INFO(name);
    const auto arrays = io::load_npz<float>(fixture(name));
    const bool compressed = std::string(name) == "savez_compressed.npz";
    CHECK(arrays.size() == (compressed ? 4u : 3u));
    check_tensor(arrays.at("a"), {2, 3}, [](std::size_t i) { return double(i); });
    check_tensor(arrays.at("b"), {5}, ramp);
    check_tensor(arrays.at("c"), {4}, [](std::size_t i) { return double(i) - 2; });
    if (compressed) check_tensor(arrays.at("big"), {40, 100}, [](std::size_t i) { return double(i % 7); });
    const auto as_double = io::load_npz<double>(fixture(name));
    check_tensor(as_double.at("b"), {5}, ramp);
  }
  // a plain (non-zip64) archive with an archive comment
  const auto commented = io::load_npz<double>(fixture("comment.npz"));
  REQUIRE(commented.size() == 1);
  check_tensor(commented.at("x"), {3}, [](std::size_t i) { return double(i); });
}

TEST_CASE("npz round trip, zip64 records and archive comments", "[io][npy]") {
  TempDir dir;
  std::map<std::string, Tensor<float>> arrays{{"weight", ramp_tensor<float>({3, 4})},
                                              {"scalar", Tensor<float>::scalar(-2.5f)},
                                              {"empty", Tensor<float>::zeros({0, 3})},
                                              {"nested/name", ramp_tensor<float>({2, 1, 2})}};
  io::save_npz<float>(dir / "out.npz", arrays);
  CHECK(identical(io::load_npz<float>(dir / "out.npz"), arrays));
  const auto as_double = io::load_npz<double>(dir / "out.npz");
  CHECK(identical(as_double.at("weight"), arrays.at("weight").cast<double>()));
  // written atomically: nothing else is left in the directory
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);

  io::save_npz(dir / "none.npz", std::map<std::string, Tensor<double>>{});
  CHECK(io::load_npz<double>(dir / "none.npz").empty());

  SECTION("zip64: 0xFFFFFFFF sizes and offsets, zip64 extra fields, zip64 end record and locator") {
    std::vector<std::pair<std::string, io::Bytes>> members;
    for (const auto& [key, t] : arrays) members.emplace_back(key + ".npy", npy::encode_npy(t, key));
    const io::Bytes zip = io::zip::write_stored(members, /*force_zip64=*/true);
    CHECK(get_u32(zip, zip.size() - 22 - 20) == io::zip::zip64_locator_signature);
    CHECK(get_u32(zip, 18) == 0xFFFFFFFFu);  // first local header's compressed size
    CHECK(identical(npy::decode_npz<float>(zip, "zip64.npz"), arrays));
  }
  SECTION("local headers with 0xFFFFFFFF sizes, as older Pythons write numpy.savez members") {
    io::Bytes zip = io::read_file(fixture("savez.npz"));
    REQUIRE(get_u16(zip, 28) == 20);  // the zip64 extra field numpy forces
    put_u32(zip, 18, 0xFFFFFFFF);
    put_u32(zip, 22, 0xFFFFFFFF);
    CHECK(identical(npy::decode_npz<float>(zip, "patched.npz"), io::load_npz<float>(fixture("savez.npz"))));
  }
  SECTION("a comment that contains an End of Central Directory signature") {
    io::Bytes zip = io::read_file(dir / "out.npz");
    const std::string comment = "PK\x05\x06 is the End of Central Directory signature";
    put_u16(zip, zip.size() - 2, std::uint16_t(comment.size()));
    zip.insert(zip.end(), comment.begin(), comment.end());
    CHECK(identical(npy::decode_npz<float>(zip, "commented.npz"), arrays));
  }
}

TEST_CASE("npz errors name the archive, the member and the reason", "[io][npy]") {
  TempDir dir;
  using Catch::Matchers::Contains;
  using Catch::Matchers::StartsWith;
  io::save_npz<float>(dir / "good.npz", {{"a", ramp_tensor<float>({2, 3})}, {"b", ramp_tensor<float>({4})}});
  const io::Bytes good = io::read_file(dir / "good.npz");
  const std::size_t cd = central_directory_of(good);
  auto load_error = [&](const io::Bytes& bytes) {
    write_bytes(dir / "bad.npz", bytes);
    return error_of([&] { io::load_npz<float>(dir / "bad.npz"); });
  };
  const std::string prefix = "load_npz: " + (dir / "bad.npz") + ": ";
  const std::string member_a = prefix + "member 'a.npy': ";

  CHECK_THAT(error_of([&] { io::load_npz<float>(dir / "missing.npz"); }), StartsWith("load_npz: cannot open "));
  CHECK(load_error({'h', 'e', 'l', 'l', 'o'}) ==
        prefix + "not a zip archive (5 bytes, too small for an End of Central Directory record)");
  CHECK(load_error(io::read_file(fixture("f4_le.npy"))) == prefix + "not a zip archive (no End of Central Directory record)");

  io::Bytes method = good;
  put_u16(method, cd + 10, 12);  // bzip2
  CHECK(load_error(method) == member_a + "unsupported compression method 12 (only stored (0) and deflate (8))");
  io::Bytes encrypted = good;
  put_u16(encrypted, cd + 8, 1);
  CHECK(load_error(encrypted) == member_a + "encrypted members are not supported");
  io::Bytes flipped = good;
  flipped[cd - 1] ^= 0x01;  // last data byte of the last member, 'b.npy'
  CHECK_THAT(load_error(flipped), StartsWith(prefix + "member 'b.npy': CRC-32 mismatch") && Contains("corrupt data"));
  io::Bytes oversized = good;
  put_u32(oversized, cd + 20, 0x7FFFFFFF);
  put_u32(oversized, cd + 24, 0x7FFFFFFF);
  CHECK_THAT(load_error(oversized), StartsWith(member_a + "2147483647 bytes of data claimed, only "));
  io::Bytes sizes_differ = good;
  put_u32(sizes_differ, cd + 24, get_u32(good, cd + 24) + 1);
  CHECK_THAT(load_error(sizes_differ), StartsWith(member_a + "stored member with sizes"));
  io::Bytes offset = good;
  put_u32(offset, cd + 42, 0x10000000);
  CHECK_THAT(load_error(offset), StartsWith(member_a + "local header offset 268435456 is past the members' end"));
  io::Bytes renamed = good;
  renamed[30] = 'z';  // the first local header's name
  CHECK(load_error(renamed) == member_a + "local header names it 'z.npy'");
  io::Bytes cd_past_end = good;
  put_u32(cd_past_end, cd_past_end.size() - 22 + 16, std::uint32_t(cd + 1));
  CHECK_THAT(load_error(cd_past_end), StartsWith(prefix + "central directory (offset"));
  io::Bytes too_many = good;
  put_u16(too_many, too_many.size() - 22 + 8, 3);
  put_u16(too_many, too_many.size() - 22 + 10, 3);
  CHECK_THAT(load_error(too_many), StartsWith(prefix + "central directory of ") && Contains("cannot hold 3 entries"));

  // savez_compressed members: a size claim deflate cannot reach, and a damaged stream
  const io::Bytes deflated = io::read_file(fixture("savez_compressed.npz"));
  const std::size_t dcd = central_directory_of(deflated);
  io::Bytes bomb = deflated;
  put_u32(bomb, dcd + 24, 0x7FFFFFF0);
  CHECK_THAT(load_error(bomb), StartsWith(member_a + "claims 2147483632 bytes from ") &&
                                   Contains("compressed bytes, more than deflate can expand"));
  io::Bytes bad_stream = deflated;
  bad_stream[30 + 5 + get_u16(deflated, 28) + 10] ^= 0x55;  // inside 'a.npy's deflate stream
  CHECK_THAT(load_error(bad_stream), StartsWith(member_a) && (Contains("corrupt compressed data") || Contains("CRC-32 mismatch")));

  const io::Bytes not_npy = io::zip::write_stored({{"readme.txt", {'h', 'i'}}});
  CHECK(load_error(not_npy) == prefix + "member 'readme.txt' is not a .npy array");
  const io::Bytes a = npy::encode_npy(ramp_tensor<float>({2}), "a");
  CHECK(load_error(io::zip::write_stored({{"a.npy", a}, {"a.npy", a}})) == prefix + "member 'a.npy' appears twice");
  CHECK(load_error(io::zip::write_stored({{"a.npy", {1, 2, 3}}})) == member_a + "bad magic (not a .npy file)");
}

TEST_CASE("npz corrupt archives: truncations and damage are Errors, never crashes or wrong values", "[io][npy]") {
  for (const char* name : {"savez.npz", "savez_compressed.npz"}) {
    INFO(name);
    const io::Bytes good = io::read_file(fixture(name));
    const auto reference = npy::decode_npz<double>(good, name);
    for (std::size_t n = 0; n < good.size(); ++n) {
      INFO("truncated to " << n << " bytes");
      const io::Bytes cut(good.begin(), good.begin() + std::ptrdiff_t(n));
      CHECK(throws_error([&] { npy::decode_npz<double>(cut, name); }));
    }
    // Every flipped byte is caught (signatures, sizes, names, CRC-32 over the data) or lies in
    // metadata the reader does not use (times, versions, attributes, the local zip64 field).
    const auto directory = io::zip::read_directory(good, name);
    std::vector<bool> in_data(good.size(), false);
    for (const auto& e : directory.entries) {
      const std::size_t start = std::size_t(e.local_header_offset) + 30 + get_u16(good, std::size_t(e.local_header_offset) + 26) +
                                get_u16(good, std::size_t(e.local_header_offset) + 28);
      for (std::size_t i = start; i < start + e.compressed_size; ++i) in_data[i] = true;
    }
    for (std::size_t i = 0; i < good.size(); ++i) {
      INFO("byte " << i << " flipped");
      io::Bytes bad = good;
      bad[i] ^= 0xFF;
      std::map<std::string, Tensor<double>> loaded;
      const bool error = throws_error([&] { loaded = npy::decode_npz<double>(bad, name); });
      if (in_data[i]) CHECK(error);
      if (!error) CHECK(identical(loaded, reference));
    }
  }
}

// ---- a Module's state dict ----------------------------------------------------------------------

TEST_CASE("save_npz(module) and load_npz(module) round trip every parameter and buffer", "[io][npy]") {
  TempDir dir;
  manual_seed(1);
  auto saved = torch_like_model<double>();
  warm_up(*saved, 7);
  io::save_npz(*saved, dir / "model.npz");

  const auto file = io::load_npz<double>(dir / "model.npz");
  std::vector<std::string> keys;
  for (const auto& [key, value] : file) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"0.bias", "0.weight", "1.bias", "1.running_mean", "1.running_var", "1.weight",
                                         "4.bias", "4.weight"});
  CHECK(file.at("0.weight").shape() == Shape{8, 3, 4, 4});
  CHECK(file.at("4.weight").shape() == Shape{1, 128});

  manual_seed(2);
  auto loaded = torch_like_model<double>();
  CHECK_FALSE(identical(state_of(*loaded), state_of(*saved)));
  io::load_npz(*loaded, dir / "model.npz");
  CHECK(identical(state_of(*loaded), state_of(*saved)));

  // a float64 file into a float model: values convert
  auto single = torch_like_model<float>();
  io::load_npz(*single, dir / "model.npz");
  for (const auto& [key, value] : state_of(*single)) {
    INFO(key);
    CHECK(identical(value, state_of(*saved).at(key).cast<float>()));
  }
}

TEST_CASE("load_npz(module) is strict and all-or-nothing", "[io][npy]") {
  TempDir dir;
  manual_seed(3);
  auto model = torch_like_model<float>();
  const auto before = state_of(*model);
  std::map<std::string, Tensor<float>> file;
  for (const auto& [key, value] : before) file.emplace(key, ramp_tensor<float>(value.shape()));
  using Catch::Matchers::Contains;
  auto load_error = [&](const std::map<std::string, Tensor<float>>& arrays) {
    io::save_npz(dir / "state.npz", arrays);
    return error_of([&] { io::load_npz(*model, dir / "state.npz"); });
  };
  const std::string prefix = "load_npz: " + (dir / "state.npz") + ": does not match the model, nothing was loaded; ";

  auto missing = file;
  missing.erase("0.bias");
  CHECK(load_error(missing) == prefix + "missing: \"0.bias\"");
  auto unexpected = file;
  unexpected.emplace("9.weight", ramp_tensor<float>({2}));
  CHECK(load_error(unexpected) == prefix + "unexpected: \"9.weight\"");
  auto transposed = file;
  transposed["4.weight"] = ramp_tensor<float>({128, 1});
  CHECK(load_error(transposed) == prefix + "shape mismatch: \"4.weight\" file (128, 1) vs model (1, 128)");

  auto everything = file;
  everything.erase("0.bias");
  everything.erase("1.running_var");
  everything.emplace("9.weight", ramp_tensor<float>({2}));
  everything.emplace("extra", ramp_tensor<float>({}));
  everything["0.weight"] = ramp_tensor<float>({3, 8, 4, 4});
  everything["1.running_mean"] = ramp_tensor<float>({});
  CHECK(load_error(everything) == prefix + "missing: \"0.bias\", \"1.running_var\"; unexpected: \"9.weight\", \"extra\"; "
                                           "shape mismatch: \"0.weight\" file (3, 8, 4, 4) vs model (8, 3, 4, 4), "
                                           "\"1.running_mean\" file () vs model (8)");
  // a damaged file is refused the same way
  write_bytes(dir / "state.npz", {'P', 'K'});
  CHECK(throws_error([&] { io::load_npz(*model, dir / "state.npz"); }));
  CHECK(identical(state_of(*model), before));  // untouched by every failure above

  // PyTorch's num_batches_tracked buffers are accepted and ignored
  auto with_counter = file;
  with_counter.emplace("1.num_batches_tracked", Tensor<float>::scalar(3));
  io::save_npz(dir / "state.npz", with_counter);
  io::load_npz(*model, dir / "state.npz");
  CHECK(identical(state_of(*model), file));
}

TEST_CASE("a PyTorch state dict (numpy.savez) loads and reproduces PyTorch's outputs", "[io][npy]") {
  auto model = torch_like_model<float>();
  io::load_npz(*model, fixture("torch_model.npz"));  // includes 1.num_batches_tracked (int64)
  model->eval();
  const auto io_arrays = io::load_npz<float>(fixture("torch_io.npz"));
  const Tensor<float>& x = io_arrays.at("x");
  REQUIRE(x.shape() == Shape{2, 3, 8, 8});

  NoGradGuard no_grad;
  Var<float> h(x);
  for (std::size_t i = 0; i < 3; ++i) h = (*model)[i](h);  // Conv2D, BatchNorm (eval), LeakyReLU
  const Tensor<float>& features = io_arrays.at("features");
  REQUIRE(h.shape() == features.shape());
  for (std::size_t i = 0; i < features.size(); ++i) {
    INFO("feature " << i);
    CHECK(h.value()[i] == Approx(features[i]).margin(1e-5));
  }
  const Tensor<float> y = (*model)(Var<float>(x)).value();
  const Tensor<float>& expected = io_arrays.at("y");
  REQUIRE(y.shape() == expected.shape());
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(y[i] == Approx(expected[i]).margin(1e-5));
}

namespace {
/// tests/reference/torch_interop.py's make_sn_model: spectral normalisation on Conv2d(3, 8, 4, 2, 1),
/// ConvTranspose2d(8, 4, 4, 2, 1) (read along its second axis) and Linear(4·8·8, 1).
std::shared_ptr<nn::Sequential<float>> torch_like_sn_model() {
  auto model = std::make_shared<nn::Sequential<float>>();
  model->add(nn::spectral_norm(std::make_shared<nn::Conv2D<float>>(3, 8, 4, 2, 1)));
  model->add<nn::LeakyReLU>(0.2);
  model->add(nn::spectral_norm(std::make_shared<nn::Conv2DTranspose<float>>(8, 4, 4, 2, 1)));
  model->add<nn::Flatten>();
  model->add(nn::spectral_norm(std::make_shared<nn::Dense<float>>(4 * 8 * 8, 1)));
  return model;
}
}  // namespace

TEST_CASE("a PyTorch model with spectral_norm (numpy.savez) loads: the same outputs in eval and after a training forward",
          "[io][npy][spectral_norm]") {
  auto model = torch_like_sn_model();
  io::load_npz(*model, fixture("torch_sn_model.npz"));  // weight_orig, weight_u, weight_v, bias: strict
  const auto io_arrays = io::load_npz<float>(fixture("torch_sn_io.npz"));
  const Var<float> x(io_arrays.at("x"));
  NoGradGuard no_grad;
  model->eval();  // σ from the stored u and v
  const Tensor<float> y_eval = model->forward(x).value();
  for (std::size_t i = 0; i < y_eval.size(); ++i) CHECK(y_eval[i] == Approx(io_arrays.at("y_eval")[i]).margin(1e-5));
  model->train();  // one power iteration each, then σ: PyTorch's u after it, and its output
  const Tensor<float> y_train = model->forward(x).value();
  for (std::size_t i = 0; i < y_train.size(); ++i) CHECK(y_train[i] == Approx(io_arrays.at("y_train")[i]).margin(1e-5));
  const Tensor<float>& u = model->named_buffers()[0].second;
  REQUIRE(u.size() == io_arrays.at("u_after").size());
  for (std::size_t i = 0; i < u.size(); ++i) CHECK(u[i] == Approx(io_arrays.at("u_after")[i]).margin(1e-5));
}

// ---- files for NumPy and PyTorch to check (hidden; run by the ctest scripts) ----------------------

TEST_CASE("export .npy and .npz files for tests/numpy_roundtrip.py", "[.][npy_export]") {
  const std::string dir = export_dir();
  io::save_npy(dir + "/f4.npy", ramp_tensor<float>({3, 4}));
  io::save_npy(dir + "/f8_4d.npy", ramp_tensor<double>({2, 3, 4, 5}));
  io::save_npy(dir + "/vector.npy", ramp_tensor<float>({5}));
  io::save_npy(dir + "/scalar.npy", Tensor<double>::scalar(3.5));
  io::save_npy(dir + "/empty.npy", Tensor<float>::zeros({0, 3}));
  io::save_npz<float>(dir + "/arrays.npz", {{"a", ramp_tensor<float>({3, 4})},
                                            {"scalar", Tensor<float>::scalar(3.5f)},
                                            {"empty", Tensor<float>::zeros({0, 3})}});
  const std::vector<std::pair<std::string, io::Bytes>> members{
      {"a.npy", npy::encode_npy(ramp_tensor<float>({3, 4}), "a")}, {"vector.npy", npy::encode_npy(ramp_tensor<float>({5}), "vector")}};
  io::write_file_atomically(dir + "/zip64.npz", io::zip::write_stored(members, /*force_zip64=*/true));
}

TEST_CASE("export a model for tests/reference/torch_interop.py", "[.][npz_export]") {
  const std::string dir = export_dir();
  manual_seed(5);
  auto model = torch_like_model<float>();
  warm_up(*model, 11);
  {  // non-default BatchNorm affine parameters, so they matter
    auto& bn = static_cast<nn::BatchNorm<float>&>((*model)[1]);
    Rng rng(13);
    bn.weight.value() = Tensor<float>::uniform({8}, rng, 0.5f, 1.5f);
    bn.bias.value() = Tensor<float>::uniform({8}, rng, -0.5f, 0.5f);
  }
  io::save_npz(*model, dir + "/tessera_model.npz");
  Rng rng(17);
  const Tensor<float> x = Tensor<float>::randn({4, 3, 8, 8}, rng);
  NoGradGuard no_grad;
  io::save_npz<float>(dir + "/tessera_io.npz", {{"x", x}, {"y", (*model)(Var<float>(x)).value()}});
  // and a spectrally normalised one, its u and v moved by some training forwards
  auto sn = torch_like_sn_model();
  for (int i = 0; i < 4; ++i) sn->forward(Var<float>(Tensor<float>::randn({2, 3, 8, 8}, rng)));
  sn->eval();
  io::save_npz(*sn, dir + "/tessera_sn_model.npz");
  io::save_npz<float>(dir + "/tessera_sn_io.npz", {{"x", x}, {"y", sn->forward(Var<float>(x)).value()}});
}
