// Image files and checkpoints: round trips, fixtures, corruption, atomic writes.
#include "gradcheck.hpp"

#include <tessera/io/checkpoint.hpp>
#include <tessera/io/image.hpp>
#include <tessera/io/npy.hpp>

#include <fcntl.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <fstream>

using namespace tessera;
using tessera::testing::error_of;
using tessera::testing::write_bytes;
using tessera::testing::TempDir;
namespace fs = std::filesystem;

namespace {

std::string data_file(const std::string& name) { return std::string(TESSERA_TEST_DATA_DIR) + "/" + name; }

io::Bytes bytes_of(const std::string& path) { return io::read_file(path); }

/// A (C, H, W) image whose pixels are exact multiples of 1/255.
Tensor<float> test_image(std::size_t c, std::size_t h, std::size_t w) {
  Tensor<float> img = Tensor<float>::empty({c, h, w});
  for (std::size_t i = 0; i < img.size(); ++i) img[i] = float((i * 37 + 11) % 256) / 255.0f;
  return img;
}

double max_abs_difference(const Tensor<float>& a, const Tensor<float>& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
  return worst;
}

}  // namespace

// ---- images ----------------------------------------------------------------------------------------

TEST_CASE("images: lossless formats round-trip exactly", "[io][image]") {
  TempDir dir;
  for (const std::string ext : {"png", "bmp", "tga"})
    for (std::size_t c : {1, 3, 4}) {
      if (ext == "bmp" && c == 4) continue;  // stb writes BMP alpha but reads it back as 3 channels by default
      INFO(ext << " with " << c << " channels");
      const Tensor<float> img = test_image(c, 5, 7);
      const std::string path = dir / ("img." + ext);
      io::save_image(img, path);
      const Tensor<float> back = io::load_image(path, int(c));
      CHECK(back.shape() == img.shape());
      CHECK(max_abs_difference(back, img) < 0.5 / 255);
    }
}

TEST_CASE("images: JPEG round-trips within compression error", "[io][image]") {
  TempDir dir;
  Tensor<float> img = Tensor<float>::empty({3, 16, 16});  // smooth, as JPEG likes
  for (std::size_t i = 0; i < img.size(); ++i) img[i] = 0.5f + 0.4f * std::sin(float(i % 16) * 0.3f + float(i / 256));
  io::save_image(img, dir / "img.jpg");
  const Tensor<float> back = io::load_image(dir / "img.jpg");
  REQUIRE(back.shape() == img.shape());
  double mean_error = 0;
  for (std::size_t i = 0; i < img.size(); ++i) mean_error += std::abs(back[i] - img[i]);
  CHECK(mean_error / double(img.size()) < 0.02);
}

TEST_CASE("images: channels are converted on request", "[io][image]") {
  TempDir dir;
  Tensor<float> rgb = Tensor<float>::zeros({3, 2, 2});
  rgb.at(0, 0, 0) = 1.0f;  // a red pixel
  io::save_image(rgb, dir / "red.png");
  CHECK(io::load_image(dir / "red.png").shape() == Shape{3, 2, 2});
  const Tensor<float> gray = io::load_image(dir / "red.png", 1);
  REQUIRE(gray.shape() == Shape{1, 2, 2});
  CHECK(gray.at(0, 0, 0) == Approx(77.0 / 255).margin(2.0 / 255));  // stb's luma: (77R + 150G + 29B) / 256
  const Tensor<float> rgba = io::load_image(dir / "red.png", 4);
  CHECK(rgba.at(3, 1, 1) == 1.0f);  // opaque alpha added
  CHECK_THROWS_AS(io::load_image(dir / "red.png", 5), Error);
}

TEST_CASE("images: 16-bit PNG keeps its precision", "[io][image]") {
  const Tensor<float> img = io::load_image(data_file("images/gray16.png"));
  REQUIRE(img.shape() == Shape{1, 3, 5});
  for (std::size_t y = 0; y < 3; ++y)
    for (std::size_t x = 0; x < 5; ++x) CHECK(img.at(0, y, x) == Approx((1000.0 * double(x + 5 * y) + 7) / 65535).epsilon(1e-6));
}

TEST_CASE("images: GIF gives its first frame; PNM is read", "[io][image]") {
  const Tensor<float> gif = io::load_image(data_file("images/two_frames.gif"), 3);
  REQUIRE(gif.shape() == Shape{3, 3, 4});
  // frame 1 cycles red, green, blue, white along x + y; frame 2 is all white
  CHECK(gif.at(0, 0, 0) == 1.0f);  // red
  CHECK(gif.at(1, 0, 0) == 0.0f);
  CHECK(gif.at(1, 0, 1) == 1.0f);  // green
  CHECK(gif.at(2, 1, 1) == 1.0f);  // blue at x + y = 2
  CHECK(gif.at(0, 1, 1) == 0.0f);

  TempDir dir;
  const std::string ppm = "P6\n2 1\n255\n";
  io::Bytes bytes(ppm.begin(), ppm.end());
  for (std::uint8_t v : {255, 0, 0, 0, 0, 255}) bytes.push_back(v);
  write_bytes(dir / "two.ppm", bytes);
  const Tensor<float> img = io::load_image(dir / "two.ppm");
  REQUIRE(img.shape() == Shape{3, 1, 2});
  CHECK(img.at(0, 0, 0) == 1.0f);
  CHECK(img.at(2, 0, 1) == 1.0f);
}

TEST_CASE("images: sample grids tile a batch and map a value range", "[io][image]") {
  Tensor<float> batch = Tensor<float>::full({5, 3, 4, 4}, -1.0f);
  for (std::size_t i = 0; i < 3 * 16; ++i) batch[4 * 48 + i] = 1.0f;  // the fifth image is white
  const Tensor<float> grid = io::make_grid(batch, 2, {-1.0f, 1.0f});
  REQUIRE(grid.shape() == Shape{3, 3 * (4 + 2) + 2, 2 * (4 + 2) + 2});
  CHECK(grid.at(0, 2, 2) == 0.0f);                 // first image: −1 maps to 0
  CHECK(grid.at(1, 2 + 2 * 6, 2) == 1.0f);         // fifth image, third row: 1 maps to 1
  CHECK(grid.at(0, 0, 0) == 0.0f);                 // padding
  TempDir dir;
  io::save_image_grid(batch, dir / "samples.png", 8, {-1.f, 1.f});
  CHECK(io::load_image(dir / "samples.png").shape() == Shape{3, 8, 5 * 6 + 2});
}

TEST_CASE("images: errors name the file and the reason", "[io][image][errors]") {
  TempDir dir;
  CHECK_THAT(error_of([&] { io::load_image(dir / "missing.png"); }),
             Catch::Contains("missing.png") && Catch::Contains("No such file"));
  write_bytes(dir / "junk.png", io::Bytes(100, 0x42));
  CHECK_THAT(error_of([&] { io::load_image(dir / "junk.png"); }), Catch::Contains("junk.png"));
  CHECK_THAT(error_of([&] { io::save_image(test_image(3, 2, 2), dir / "x.webp"); }), Catch::Contains("webp"));
  CHECK_THAT(error_of([&] { io::save_image(test_image(3, 2, 2), dir / "no/such/dir/x.png"); }),
             Catch::Contains("no/such/dir/x.png"));
  CHECK_THROWS_AS(io::save_image(Tensor<float>::zeros({5, 2, 2}), dir / "x.png"), Error);
  // a 58-byte BMP whose header claims 100000 x 100000 pixels: refused before any allocation
  io::ByteWriter bmp;
  bmp.put_bytes("BM", 2);
  bmp.put<std::uint32_t>(58);
  bmp.put<std::uint32_t>(0);
  bmp.put<std::uint32_t>(54);
  bmp.put<std::uint32_t>(40);
  bmp.put<std::int32_t>(100000);
  bmp.put<std::int32_t>(100000);
  bmp.put<std::uint16_t>(1);
  bmp.put<std::uint16_t>(24);
  for (int i = 0; i < 6; ++i) bmp.put<std::uint32_t>(0);
  bmp.put<std::uint32_t>(0);
  write_bytes(dir / "huge.bmp", bmp.bytes());
  CHECK_THAT(error_of([&] { io::load_image(dir / "huge.bmp"); }), Catch::Contains("huge.bmp"));
}

// ---- checkpoints -------------------------------------------------------------------------------------

namespace {

std::shared_ptr<nn::Sequential<float>> small_model(std::size_t hidden = 8) {
  auto net = std::make_shared<nn::Sequential<float>>();
  net->add<nn::Conv2D>(1, 4, 3, 2, 1);
  net->add<nn::BatchNorm>(4);
  net->add<nn::LeakyReLU>(0.2);
  net->add<nn::Flatten>();
  net->add<nn::Dropout>(0.3);
  net->add<nn::Dense>(4 * 4 * 4, hidden);
  net->add<nn::ReLU>();
  net->add<nn::Dense>(hidden, 1);
  return net;
}

/// Every parameter and buffer value, in order: a fingerprint of a model's state.
std::vector<float> snapshot(const nn::Module<float>& m) {
  std::vector<float> all;
  for (auto& [name, p] : m.named_parameters()) all.insert(all.end(), p.value().begin(), p.value().end());
  for (auto& [name, b] : m.named_buffers()) all.insert(all.end(), b.begin(), b.end());
  return all;
}

void train_steps(nn::Module<float>& net, optim::Optimizer<float>& opt, Rng& data_rng, int steps) {
  for (int s = 0; s < steps; ++s) {
    Var<float> x(Tensor<float>::randn({6, 1, 8, 8}, data_rng));
    Var<float> loss = nn::bce_with_logits(net(x), Tensor<float>::uniform({6, 1}, data_rng));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
}

}  // namespace

TEST_CASE("checkpoint: resuming reproduces the uninterrupted run bit for bit", "[io][checkpoint]") {
  TempDir dir;
  // the run that never stops: 10 steps
  manual_seed(1);
  auto straight = small_model();
  optim::Adam<float> straight_opt(straight->parameters(), 1e-2, 0.5, 0.999);
  Rng straight_data(2);
  train_steps(*straight, straight_opt, straight_data, 10);

  // the interrupted run: 4 steps, checkpoint, then a fresh process's objects resume
  manual_seed(1);
  auto first = small_model();
  optim::Adam<float> first_opt(first->parameters(), 1e-2, 0.5, 0.999);
  Rng first_data(2);
  train_steps(*first, first_opt, first_data, 4);
  io::Checkpoint<float> save;
  save.add("model", *first).add("optimizer", first_opt).add("data_rng", first_data).add("dropout_rng", default_rng());
  save.state.step = 4;
  save.state.metadata["note"] = "resume test";
  save.save(dir / "run.ckpt");

  manual_seed(99);  // different initial weights and dropout stream: all must be restored
  auto resumed = small_model();
  optim::Adam<float> resumed_opt(resumed->parameters(), 1.0, 0.5, 0.999);  // lr restored too
  Rng resumed_data(123);
  io::Checkpoint<float> load;
  load.add("model", *resumed).add("optimizer", resumed_opt).add("data_rng", resumed_data).add("dropout_rng", default_rng());
  load.load(dir / "run.ckpt");
  CHECK(load.state.step == 4);
  CHECK(load.state.metadata.at("note") == "resume test");
  CHECK(resumed_opt.lr() == Approx(1e-2));
  train_steps(*resumed, resumed_opt, resumed_data, 6);

  CHECK(snapshot(*resumed) == snapshot(*straight));
}

TEST_CASE("checkpoint: save_checkpoint / load_checkpoint for one model", "[io][checkpoint]") {
  TempDir dir;
  manual_seed(3);
  auto a = small_model();
  optim::SGD<float> opt(a->parameters(), 0.1, 0.9);
  Rng rng(5);
  train_steps(*a, opt, rng, 2);
  io::TrainingState st;
  st.epoch = 7;
  io::save_checkpoint(dir / "one.ckpt", *a, &opt, &rng, st);
  manual_seed(4);
  auto b = small_model();
  optim::SGD<float> opt_b(b->parameters(), 0.1, 0.9);
  Rng rng_b(0);
  const io::TrainingState loaded = io::load_checkpoint(dir / "one.ckpt", *b, &opt_b, &rng_b);
  CHECK(loaded.epoch == 7);
  CHECK(snapshot(*b) == snapshot(*a));
  CHECK(opt_b.step_counts() == opt.step_counts());
  CHECK(rng_b.next_u64() == rng.next_u64());
}

TEST_CASE("checkpoint: every corruption is an error and leaves the model untouched", "[io][checkpoint][errors]") {
  TempDir dir;
  manual_seed(5);
  auto saved = small_model();
  io::save_checkpoint(dir / "good.ckpt", *saved);
  const io::Bytes good = bytes_of(dir / "good.ckpt");
  manual_seed(6);
  auto target = small_model();
  const std::vector<float> before = snapshot(*target);

  auto expect_error = [&](const io::Bytes& bytes, const std::string& fragment) {
    write_bytes(dir / "bad.ckpt", bytes);
    const std::string err = error_of([&] { io::load_checkpoint(dir / "bad.ckpt", *target); });
    CHECK_THAT(err, Catch::Contains("bad.ckpt") && Catch::Contains(fragment));
    CHECK(snapshot(*target) == before);
  };
  for (std::size_t cut : {std::size_t(0), std::size_t(5), std::size_t(20), std::size_t(31), good.size() / 2, good.size() - 1})
    expect_error(io::Bytes(good.begin(), good.begin() + std::ptrdiff_t(cut)), "truncated");
  for (std::size_t at : {std::size_t(40), good.size() / 3, good.size() - 2}) {
    io::Bytes flipped = good;
    flipped[at] ^= 0x10;
    expect_error(flipped, "CRC");
  }
  io::Bytes magic = good;
  magic[0] = 'X';
  expect_error(magic, "magic");
  io::Bytes version = good;
  version[8] = 2;
  expect_error(version, "version 2");

  // a different architecture: lists what is missing, unexpected and mis-shaped
  auto other = small_model(16);
  io::save_checkpoint(dir / "other.ckpt", *other);
  const std::string err = error_of([&] { io::load_checkpoint(dir / "other.ckpt", *target); });
  CHECK_THAT(err, Catch::Contains("shape mismatch: model/5.weight file (16, 64) vs model (8, 64)") &&
                      Catch::Contains("model/7.weight"));
  nn::Sequential<float> tiny;
  tiny.add<nn::Dense>(2, 2);
  CHECK_THAT(error_of([&] { io::load_checkpoint(dir / "good.ckpt", tiny); }),
             Catch::Contains("shape mismatch: model/0.weight") && Catch::Contains("unexpected: model/1.bias"));
  // a wholly different model: still one line, each list cut short
  nn::Sequential<float> wide;
  for (int i = 0; i < 12; ++i) wide.add<nn::Dense>(3, 3);
  const std::string summary = error_of([&] { io::load_checkpoint(dir / "good.ckpt", wide); });
  CHECK(summary.find('\n') == std::string::npos);
  CHECK_THAT(summary, Catch::Contains("missing: model/2.weight, model/2.bias, ") && Catch::Contains(" more; "));
  CHECK(snapshot(*target) == before);
}

TEST_CASE("checkpoint: a crash during the write keeps the previous checkpoint", "[io][checkpoint]") {
  TempDir dir;
  manual_seed(7);
  auto model = small_model();
  io::save_checkpoint(dir / "run.ckpt", *model);
  const io::Bytes previous = bytes_of(dir / "run.ckpt");
  for (auto& p : model->parameters()) p.value().fill(0.5f);  // new state to save

  io::detail::before_rename_hook() = [](const std::string&) { throw Error("simulated crash before rename"); };
  CHECK_THROWS_WITH(io::save_checkpoint(dir / "run.ckpt", *model), Catch::Contains("simulated crash"));
  io::detail::before_rename_hook() = nullptr;

  CHECK(bytes_of(dir / "run.ckpt") == previous);
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) files += entry.is_regular_file();
  CHECK(files == 1);  // no temporary left behind
  CHECK_THAT(error_of([&] { io::save_checkpoint(dir / "missing-dir/run.ckpt", *model); }),
             Catch::Contains("missing-dir/run.ckpt"));
}

namespace {
// What `write` throws while files may grow to `limit` bytes: a full disk, as write(2) sees it.
std::string error_with_file_size_limit(rlim_t limit, const std::function<void()>& write) {
  rlimit saved{};
  getrlimit(RLIMIT_FSIZE, &saved);
  const auto handler = std::signal(SIGXFSZ, SIG_IGN);  // fail the write (EFBIG), do not kill the process
  rlimit tiny = saved;
  tiny.rlim_cur = limit;
  setrlimit(RLIMIT_FSIZE, &tiny);
  const std::string error = error_of(write);
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, handler);
  return error;
}
}  // namespace

TEST_CASE("disk faults: a full disk, a read-only directory, a path too long", "[io][checkpoint][errors]") {
  TempDir dir;
  manual_seed(7);
  auto model = small_model();
  io::save_checkpoint(dir / "run.ckpt", *model);
  const io::Bytes previous = bytes_of(dir / "run.ckpt");
  auto only_the_checkpoint_is_left = [&] {
    std::size_t files = 0;
    for (const auto& entry : fs::directory_iterator(dir.path)) files += entry.is_regular_file();
    return files == 1 && bytes_of(dir / "run.ckpt") == previous;
  };

  // A full disk: the checkpoint, then a sample picture, larger than the disk allows
  CHECK_THAT(error_with_file_size_limit(1024, [&] { io::save_checkpoint(dir / "run.ckpt", *model); }),
             Catch::StartsWith("cannot write " + dir / "run.ckpt" + ": write failed: File too large"));
  CHECK(only_the_checkpoint_is_left());
  const Tensor<float> noise = Tensor<float>::uniform({64, 3, 32, 32}, default_rng());  // a PNG of ~200 KB
  CHECK_THAT(error_with_file_size_limit(1024, [&] { io::save_image_grid(noise, dir / "samples.png", 8); }),
             Catch::StartsWith("cannot write " + dir / "samples.png"));
  CHECK(only_the_checkpoint_is_left());

  // A directory nobody may write to: mode 0555, or for root (whom modes do not stop) /proc
  const std::string locked = dir / "locked";
  fs::create_directory(locked);
  ::chmod(locked.c_str(), 0555);
  const std::string target = ::geteuid() == 0 ? std::string("/proc/tessera-test.ckpt") : locked + "/run.ckpt";
  CHECK_THAT(error_of([&] { io::save_checkpoint(target, *model); }),
             Catch::StartsWith("cannot write " + target + ": cannot create a temporary file beside it: "));
  ::chmod(locked.c_str(), 0755);

  // A name longer than the filesystem allows (255 bytes)
  const std::string long_name = dir / (std::string(300, 'x') + ".ckpt");
  CHECK_THAT(error_of([&] { io::save_checkpoint(long_name, *model); }),
             Catch::StartsWith("cannot write " + long_name + ": cannot create a temporary file beside it: File name too long"));
  CHECK(only_the_checkpoint_is_left());
}

TEST_CASE("checkpoint: float and double checkpoints are not confused", "[io][checkpoint][errors]") {
  TempDir dir;
  nn::Sequential<float> f;
  f.add<nn::Dense>(2, 2);
  io::save_checkpoint(dir / "f.ckpt", f);
  nn::Sequential<double> d;
  d.add<nn::Dense>(2, 2);
  CHECK_THAT(error_of([&] { io::load_checkpoint(dir / "f.ckpt", d); }), Catch::Contains("32-bit"));
}

TEST_CASE("images: fuzzing regressions", "[io][image][fuzz]") {
  // A 16-bit PGM (maxval 552) asked for 3 channels: stb converts it with its 8-bit routine and
  // returns half the buffer it reports; tessera now converts channels itself.
  const std::string pgm16 = std::string("P5\n1 1\n552:\xff\x00", 11) + std::string("2 \xff\x00\x01\xff\xff\xff\xff", 9);
  const io::Bytes bytes(pgm16.begin(), pgm16.end());
  for (int channels : {0, 1, 2, 3, 4}) {
    INFO("channels " << channels);
    const Tensor<float> img = io::decode_image(bytes.data(), bytes.size(), channels, "pgm16");
    CHECK(img.shape() == Shape{std::size_t(channels ? channels : 1), 1, 1});
    for (float v : img) CHECK((v >= 0.0f && v <= 1.0f));
  }
}

// ---- checks before reads ----------------------------------------------------------------------------

namespace {
/// A sparse file of `bytes` zeros (no disk blocks), after `head` if given.
std::string sparse_file(const TempDir& dir, const std::string& name, off_t bytes, const io::Bytes& head = {}) {
  const std::string path = dir / name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, bytes) == 0);
  if (!head.empty()) REQUIRE(::pwrite(fd, head.data(), head.size(), 0) == ssize_t(head.size()));
  ::close(fd);
  return path;
}
long max_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}
}  // namespace

TEST_CASE("readers check a header against the file's size first: a 4 GiB wrong file is refused at once, in bounded memory",
          "[io][reliability]") {
  TempDir dir;
  const off_t four_gib = off_t(4) << 30;
  const long rss_before = max_rss_kb();
  const auto start = std::chrono::steady_clock::now();
  const std::string zeros = sparse_file(dir, "big.tsr", four_gib);
  io::Checkpoint<float> checkpoint;
  CHECK_THAT(error_of([&] { checkpoint.load(zeros); }), Catch::Contains("not a tessera checkpoint (bad magic)"));
  CHECK_THAT(error_of([&] { io::read_checkpoint_state(zeros); }), Catch::Contains("bad magic"));
  CHECK_THAT(error_of([&] { io::load_npy<float>(zeros); }), Catch::Contains("bad magic (not a .npy file)"));
  CHECK_THAT(error_of([&] { io::load_npz<float>(zeros); }), Catch::Contains("not a zip archive"));
  // a checkpoint's header with a payload size that is not the rest of the file
  io::ByteWriter header;
  header.put_bytes("TSRACKPT", 8);
  header.put<std::uint32_t>(1), header.put<std::uint32_t>(0), header.put<std::uint64_t>(1000), header.put<std::uint32_t>(0);
  const std::string padded = sparse_file(dir, "padded.tsr", four_gib, header.bytes());
  CHECK_THAT(error_of([&] { checkpoint.load(padded); }), Catch::Contains("payload of 1000 bytes declared, 4294967268 present"));
  // an .npy header whose data is not the rest of the file
  const std::string npy_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  io::ByteWriter npy;
  npy.put_bytes("\x93NUMPY\x01\x00", 8);
  npy.put<std::uint16_t>(std::uint16_t(npy_header.size()));
  npy.put_bytes(npy_header.data(), npy_header.size());
  const std::string npy_big = sparse_file(dir, "big.npy", four_gib, npy.bytes());
  CHECK_THAT(error_of([&] { io::load_npy<float>(npy_big); }), Catch::Contains("bytes after the data (expected 24 bytes for shape (2, 3))"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 1.0);
  CHECK(max_rss_kb() - rss_before < 64 * 1024);  // nothing near 4 GiB was read
}

TEST_CASE("a checkpoint whose payload is more than the memory budget is refused before it is read", "[io][reliability]") {
  TempDir dir;
  io::ByteWriter header;
  header.put_bytes("TSRACKPT", 8);
  const std::uint64_t payload = std::uint64_t(1) << 30;
  header.put<std::uint32_t>(1), header.put<std::uint32_t>(0), header.put<std::uint64_t>(payload), header.put<std::uint32_t>(0);
  const std::string path = sparse_file(dir, "huge.tsr", off_t(28 + payload), header.bytes());
  const std::size_t saved = memory_budget().limit();
  const std::string source = memory_budget().source();
  memory_budget().set_limit(std::size_t(256) << 20, "test");
  io::Checkpoint<float> checkpoint;
  const std::string message = error_of([&] { checkpoint.load(path); });
  memory_budget().set_limit(saved, source);
  CHECK_THAT(message, Catch::Contains("1.00 GB of payload, more than the memory budget (256 MB)"));
}

TEST_CASE("an image header claiming more than can be decoded is named 'too large' with its size", "[io][image][reliability]") {
  // PNG signature and an IHDR of 60000 × 60000 RGB: stb refuses it, and says "unknown image type"
  io::Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                   0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60, 8, 2, 0, 0, 0, 0, 0, 0, 0};
  CHECK_THAT(error_of([&] { io::decode_image(png.data(), png.size(), 3, "huge.png"); }),
             Catch::Contains("huge.png: too large (60000×60000)"));
  std::uint64_t w = 0, h = 0;
  REQUIRE(io::claimed_size(png.data(), png.size(), w, h));
  CHECK((w == 60000 && h == 60000));
  io::Bytes gif = {'G', 'I', 'F', '8', '9', 'a', 0x10, 0x00, 0x20, 0x00};
  REQUIRE(io::claimed_size(gif.data(), gif.size(), w, h));
  CHECK((w == 16 && h == 32));
  const io::Bytes text = {'h', 'e', 'l', 'l', 'o'};
  CHECK(!io::claimed_size(text.data(), text.size(), w, h));
  CHECK_THAT(error_of([&] { io::decode_image(text.data(), text.size(), 3, "hello.png"); }), Catch::Contains("not a readable image"));
}
