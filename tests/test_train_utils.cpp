// What the example programs share: command-line parsing and its error messages, the progress
// display in both modes (with a fake clock), the metrics CSV (round trip, resume), loss plots
// as SVG and as PNG (drawn on tessera's Canvas).
#include "gradcheck.hpp"

#include <tessera/io/image.hpp>
#include <tessera/nn/dense.hpp>
#include <tessera/ops/reduce.hpp>
#include <tessera/optim/adam.hpp>
#include <tessera/train/canvas.hpp>
#include <tessera/train/cli.hpp>
#include <tessera/train/loop.hpp>
#include <tessera/train/metrics_log.hpp>
#include <tessera/train/plot.hpp>
#include <tessera/train/progress.hpp>

#include <algorithm>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

using namespace tessera;
using tessera::testing::error_of;
using tessera::testing::TempDir;
namespace fs = std::filesystem;

namespace {

std::string file_text(const std::string& path) {
  const io::Bytes bytes = io::read_file(path);
  return std::string(bytes.begin(), bytes.end());
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

/// A command line's options after parsing `args`, with `out` in a temporary directory.
struct Parsed {
  train::Options opt;
  double beta = 1.0;
  std::size_t latent = 100;
  int offset = -2;
  bool sample_only = false;
  std::string name = "run";
  std::string help_text;

  Parsed(const TempDir& dir, const std::vector<std::string>& args) {
    opt.epochs = 5;
    opt.lr = 2e-4;
    opt.out = dir / "out";
    train::Cli cli("vae", "Trains a convolutional VAE on textures.", opt);
    cli.add("--beta", beta, "weight of the KL term", train::Require::non_negative);
    cli.add("--latent", latent, "latent dimension", train::Require::positive);
    cli.add("--offset", offset, "an integer that may be negative");
    cli.add("--sample-only", sample_only, "only draw samples from the checkpoint");
    cli.add("--name", name, "run name", "NAME");
    std::ostringstream help;
    cli.parse(args, help);
    help_text = help.str();
  }
};

/// The message of the UsageError parsing `args` throws, or "<no usage error>".
std::string usage_error(const std::vector<std::string>& args) {
  TempDir dir;
  try {
    Parsed parsed(dir, args);
  } catch (const train::UsageError& e) {
    return e.what();
  }
  return "<no usage error>";
}

/// A clock the test moves by hand.
struct FakeClock {
  double now = 100.0;
  train::ProgressBar::Clock clock() {
    return [this] { return now; };
  }
};

}  // namespace

// ---- command line --------------------------------------------------------------------------------

TEST_CASE("cli: defaults stay without flags; the out directory is created", "[train]") {
  TempDir dir;
  Parsed p(dir, {});
  CHECK(p.opt.epochs == 5);
  CHECK(p.opt.lr == 2e-4);
  CHECK(p.opt.image_size == 32);
  CHECK(p.opt.data.empty());
  CHECK(p.beta == 1.0);
  CHECK(!p.opt.help);
  CHECK(fs::is_directory(dir / "out"));
}

TEST_CASE("cli: --flag value and --flag=value, for every type", "[train]") {
  TempDir dir;
  fs::create_directories(dir / "textures");
  Parsed p(dir, {"--epochs", "3", "--lr=1e-3", "--batch", "16", "--image-size=64", "--seed", "18446744073709551615",
                 "--beta", "0.25", "--latent=8", "--offset", "-7", "--sample-only", "--name", "first try", "--data",
                 dir / "textures", "--out=" + (dir / "runs/a")});
  CHECK(p.opt.epochs == 3);
  CHECK(p.opt.lr == 1e-3);
  CHECK(p.opt.batch == 16);
  CHECK(p.opt.image_size == 64);
  CHECK(p.opt.seed == 18446744073709551615ULL);
  CHECK(p.beta == 0.25);
  CHECK(p.latent == 8);
  CHECK(p.offset == -7);
  CHECK(p.sample_only);
  CHECK(p.name == "first try");
  CHECK(p.opt.data == dir / "textures");
  CHECK(fs::is_directory(dir / "runs/a"));

  TempDir other;
  CHECK(!Parsed(other, {"--sample-only=false"}).sample_only);
  CHECK(Parsed(other, {"--sample-only=yes"}).sample_only);
  CHECK(Parsed(other, {"--epochs", "1", "--epochs", "2"}).opt.epochs == 2);  // the last one wins
}

TEST_CASE("cli: argc/argv, skipping the program name", "[train]") {
  TempDir dir;
  train::Options opt;
  opt.out = dir / "out";
  train::Cli cli("dcgan", "Trains a DCGAN.", opt);
  const std::string out_flag = "--out=" + (dir / "o");
  const char* argv[] = {"/usr/bin/dcgan", "--epochs", "7", out_flag.c_str()};
  cli.parse(4, argv);
  CHECK(opt.epochs == 7);
  CHECK(opt.out == dir / "o");
}

TEST_CASE("cli: an empty --out defaults to out/<program>", "[train]") {
  train::Options opt;
  train::Cli cli("dcgan", "Trains a DCGAN.", opt);
  CHECK(opt.out == "out/dcgan");
  CHECK(cli.usage().find("(default: out/dcgan)") != std::string::npos);
}

TEST_CASE("cli: one-line errors naming the flag and the value", "[train]") {
  CHECK(usage_error({"--epochs", "3x"}) == "--epochs: expected a non-negative integer, got '3x'");
  CHECK(usage_error({"--epochs", "-1"}) == "--epochs: expected a non-negative integer, got '-1'");
  CHECK(usage_error({"--epochs=", "3"}) == "--epochs: expected a non-negative integer, got ''");
  CHECK(usage_error({"--epochs", " 3"}) == "--epochs: expected a non-negative integer, got ' 3'");
  CHECK(usage_error({"--epochs"}) == "--epochs: missing value");
  CHECK(usage_error({"--epochs", "--lr", "0.1"}) == "--epochs: missing value");
  CHECK(usage_error({"--epoch", "3"}) == "unknown flag --epoch (did you mean --epochs?)");
  CHECK(usage_error({"--frobnicate"}) == "unknown flag --frobnicate (see --help)");
  CHECK(usage_error({"3"}) == "unexpected argument '3' (flags start with --; see --help)");
  CHECK(usage_error({"--lr", "0"}) == "--lr: expected a positive number, got '0'");
  CHECK(usage_error({"--lr", "fast"}) == "--lr: expected a positive number, got 'fast'");
  CHECK(usage_error({"--lr", "inf"}) == "--lr: expected a positive number, got 'inf'");
  CHECK(usage_error({"--batch", "0"}) == "--batch: expected a positive integer, got '0'");
  CHECK(usage_error({"--threads", "-2"}) == "--threads: expected a non-negative integer, got '-2'");
  CHECK(usage_error({"--seed", "99999999999999999999"}) == "--seed: '99999999999999999999' is out of range");
  CHECK(usage_error({"--beta", "-0.5"}) == "--beta: expected a non-negative number, got '-0.5'");
  CHECK(usage_error({"--offset", "1.5"}) == "--offset: expected an integer, got '1.5'");
  CHECK(usage_error({"--sample-only=maybe"}) == "--sample-only: expected true or false, got 'maybe'");
  CHECK(usage_error({"--data", "/nonexistent/textures"}) == "--data: '/nonexistent/textures' is not a directory");
  CHECK(usage_error({"--resume", "/nonexistent/ckpt.tsr"}) == "--resume: no such file '/nonexistent/ckpt.tsr'");
  // found by fuzz_cli: a name longer than the system allows made std::filesystem throw its own error
  const std::string too_long(5000, 's');
  CHECK(usage_error({"--data", too_long}) == "--data: '" + too_long + "' is not a directory: File name too long");
  CHECK(usage_error({"--resume", too_long}) == "--resume: no such file '" + too_long + "': File name too long");
}

TEST_CASE("cli: an --out that cannot be created is named", "[train]") {
  TempDir dir;
  io::write_file_atomically(dir / "file", io::Bytes{1});
  const std::string error = usage_error({"--out", dir / "file/sub"});
  CHECK(error.rfind("--out: cannot create directory '" + (dir / "file/sub") + "': ", 0) == 0);
}

TEST_CASE("cli: --help prints every flag with its default and changes nothing else", "[train]") {
  TempDir dir;
  Parsed p(dir, {"--epochs", "3x", "--help"});  // --help wins over a bad value
  CHECK(p.opt.help);
  CHECK(p.opt.epochs == 5);
  CHECK(!fs::exists(dir / "out"));
  const std::string& usage = p.help_text;
  CHECK(usage.rfind("usage: vae [options]\n\nTrains a convolutional VAE on textures.\n", 0) == 0);
  for (const char* line : {"--data DIR", "(default: built-in procedural textures)", "--image-size N", "(default: 32)",
                           "--epochs N", "(default: 5)", "--batch N", "(default: 64)", "--lr X", "(default: 0.0002)",
                           "--seed N", "--threads N", "--out DIR", "--resume CHECKPOINT", "--beta X", "weight of the KL term (default: 1)",
                           "--latent N", "(default: 100)", "--offset N", "(default: -2)", "--sample-only ", "(default: false)",
                           "--name NAME", "(default: run)", "--help"})
    CHECK(usage.find(line) != std::string::npos);
  CHECK(count(usage, "\n  --") == 17);  // 11 common flags, 5 of the example's, --help
}

TEST_CASE("cli: --threads sets tessera's thread count", "[train]") {
  const int before = num_threads();
  TempDir dir;
  Parsed p(dir, {"--threads", "1"});
  CHECK(p.opt.threads == 1);
  CHECK(num_threads() == 1);
  set_num_threads(before);
}

TEST_CASE("cli: registering a flag twice or a malformed flag is a programming error", "[train]") {
  train::Options opt;
  train::Cli cli("x", "x", opt);
  int n = 0;
  CHECK(error_of([&] { cli.add("--epochs", n, "again"); }) == "Cli::add: flag --epochs is already defined");
  CHECK(error_of([&] { cli.add("count", n, "no dashes"); }) == "Cli::add: flag 'count' must look like --name");
}

TEST_CASE("run_example: one line on stderr and an exit code", "[train]") {
  char program[] = "/opt/examples/dcgan";
  char* argv[] = {program, nullptr};
  std::ostringstream err;
  CHECK(train::run_example(1, argv, [](int, char**) { return 0; }, err) == 0);
  CHECK(train::run_example(1, argv, [](int, char**) { return 3; }, err) == 3);
  CHECK(err.str().empty());
  CHECK(train::run_example(1, argv, [](int, char**) -> int {
          throw train::UsageError("--epochs: expected a non-negative integer, got '3x'");
        }, err) == 2);
  CHECK(err.str() == "dcgan: --epochs: expected a non-negative integer, got '3x'\n");
  err.str("");
  CHECK(train::run_example(1, argv, [](int, char**) -> int { throw Error("load_image: x.png: not a readable image"); }, err) == 2);
  CHECK(err.str() == "dcgan: load_image: x.png: not a readable image\n");
  err.str("");
  CHECK(train::run_example(1, argv, [](int, char**) -> int { throw std::runtime_error("out of memory"); }, err) == 1);
  CHECK(err.str() == "dcgan: out of memory\n");
}

// ---- progress -------------------------------------------------------------------------------------

TEST_CASE("progress: not on a terminal, exactly one line per epoch", "[train]") {
  std::ostringstream out;
  FakeClock t;
  train::ProgressBar bar(out, /*interactive=*/false, t.clock());
  CHECK(!bar.interactive());
  bar.start_epoch(1, 10, 3);
  t.now += 1;
  bar.update(0, 10, {{"loss_d", 0.75}, {"loss_g", 1.0}});
  t.now += 1;
  bar.update(1, 10, {{"loss_d", 0.5}, {"loss_g", 2.0}});
  t.now += 1;
  bar.update(2, 10, {{"loss_d", 0.25}, {"loss_g", 1.5}});
  CHECK(out.str().empty());
  bar.end_epoch();
  CHECK(out.str() == "epoch 2/10: 3 steps, 10.0 img/s, 3.0 s, loss_d 0.5, loss_g 1.5\n");
  CHECK(bar.steps() == 3);
  CHECK(bar.images() == 30);
  CHECK(bar.seconds() == 3.0);
  CHECK(bar.images_per_second() == 10.0);

  bar.start_epoch(2, 10, 3);  // a new epoch starts its means afresh
  t.now += 0.5;
  bar.update(0, 1000, {{"loss_d", 0.125}});
  bar.end_epoch();
  CHECK(out.str().substr(out.str().find('\n') + 1) == "epoch 3/10: 1 step, 2000 img/s, 0.5 s, loss_d 0.125\n");
}

TEST_CASE("progress: running means, weighted by the images in each step", "[train]") {
  std::ostringstream out;
  FakeClock t;
  train::ProgressBar bar(out, false, t.clock());
  bar.start_epoch(0, 1, 2);
  bar.update(0, 30, {{"loss", 1.0}, {"acc", 0.5}});
  bar.update(1, 10, {{"loss", 3.0}, {"acc", 1.0}, {"lr", 0.1}});  // a short last batch
  const auto means = bar.means();
  REQUIRE(means.size() == 3);
  CHECK(means[0].first == "loss");  // in the order the names first appeared
  CHECK(means[0].second == 1.5);    // (30·1 + 10·3) / 40
  CHECK(means[1].first == "acc");
  CHECK(means[1].second == 0.625);
  CHECK(means[2].first == "lr");
  CHECK(bar.mean("lr") == Approx(0.1));
  CHECK(std::isnan(bar.mean("missing")));
  CHECK(error_of([] {
          std::ostringstream o;
          train::ProgressBar b(o, false);
          b.update(0, 1);
        }) == "ProgressBar::update: call start_epoch first");
}

TEST_CASE("progress: on a terminal, one line redrawn at most 10 times a second", "[train]") {
  std::ostringstream out;
  FakeClock t;
  train::ProgressBar bar(out, /*interactive=*/true, t.clock());
  bar.start_epoch(0, 2, 4);
  t.now += 1;
  bar.update(0, 8, {{"loss_d", 0.5}, {"loss_g", 1.25}});
  CHECK(out.str() == "\repoch 1/2 [=====>              ] 1/4  8.0 img/s  ETA 0:03  loss_d 0.5 loss_g 1.25");
  t.now += 0.05;  // too soon to redraw
  bar.update(1, 8, {{"loss_d", 0.5}, {"loss_g", 1.25}});
  CHECK(count(out.str(), "\r") == 1);
  t.now += 0.2;
  bar.update(2, 8, {{"loss_d", 0.5}, {"loss_g", 1.25}});
  CHECK(count(out.str(), "\r") == 2);
  CHECK(out.str().find("3/4") != std::string::npos);
  bar.update(3, 8, {{"loss_d", 0.5}, {"loss_g", 1.25}});  // the last step is always drawn
  CHECK(count(out.str(), "\r") == 3);
  CHECK(out.str().find("[====================] 4/4") != std::string::npos);
  CHECK(out.str().find('\n') == std::string::npos);
  bar.end_epoch();
  // The summary replaces the bar (padded over its tail) and ends the line.
  const std::string text = out.str();
  const std::string last = text.substr(text.rfind('\r') + 1);
  CHECK(last.rfind("epoch 1/2: 4 steps, 25.6 img/s, 1.2 s, loss_d 0.5, loss_g 1.25", 0) == 0);
  CHECK(last.back() == '\n');
  CHECK(count(text, "\n") == 1);
  CHECK(last.size() >= std::string("\repoch 1/2 [====================] 4/4  25.6 img/s  loss_d 0.5 loss_g 1.25").size());
}

TEST_CASE("progress: a bar left mid-line is ended when the ProgressBar goes", "[train]") {
  std::ostringstream out;
  {
    FakeClock t;
    train::ProgressBar bar(out, /*interactive=*/true, t.clock());
    bar.start_epoch(0, 1, 10);
    bar.update(0, 4, {{"loss", 1.0}});  // then, say, an exception
  }
  CHECK(out.str().back() == '\n');
  CHECK(count(out.str(), "\n") == 1);
}

// ---- the epoch loop -----------------------------------------------------------------------------

namespace {

/// n images (1, 2, 2) filled with i / n, labels alternating.
class CountingDataset : public data::Dataset {
 public:
  explicit CountingDataset(std::size_t n) : n_(n) {}
  std::size_t size() const override { return n_; }
  data::Example get(std::size_t i) const override {
    return {Tensor<float>::full({1, 2, 2}, float(i) / float(n_)), std::int64_t(i % 2)};
  }
  const std::vector<std::string>& classes() const override { return classes_; }

 private:
  std::size_t n_;
  std::vector<std::string> classes_{"even", "odd"};
};

/// A run of `epochs` over 8 images in batches of 4, its state an Rng each step draws from.
struct LoopRun {
  CountingDataset dataset{8};
  train::Options opt;
  Rng rng{7};
  io::Checkpoint<float> checkpoint;
  std::vector<std::size_t> ended_epochs;
  std::size_t steps = 0;
  bool trained = false;
  std::size_t interrupt_at = std::numeric_limits<std::size_t>::max();  // a step (in this run) that SIGINT follows

  LoopRun(const TempDir& dir, std::size_t epochs, std::string resume = {}) {
    opt.epochs = epochs;
    opt.out = dir / "run";
    opt.resume = std::move(resume);
    fs::create_directories(opt.out);
    checkpoint.add("rng", rng);
  }
  /// Runs the loop; step number `nan_at` (from 0, counted in this run) returns a NaN loss.
  int run(std::size_t nan_at = std::numeric_limits<std::size_t>::max()) {
    data::LoaderOptions batches;
    batches.batch_size = 4;
    data::DataLoader loader(dataset, batches);
    train::EpochLoop<float> loop(checkpoint, opt);
    loop.plot("loss.png", "test", {"loss"});
    const int status = loop.run(
        loader,
        [&](const data::Batch&) -> train::Values {
          if (steps == interrupt_at) std::raise(SIGINT);
          const double loss = steps++ == nan_at ? std::nan("") : rng.uniform();
          return {{"loss", loss}};
        },
        [&](std::size_t epoch, train::Values& row) {
          ended_epochs.push_back(epoch);
          row.emplace_back("epoch_seen", double(epoch));
        });
    trained = loop.trained();
    return status;
  }
};

}  // namespace

TEST_CASE("loop: per epoch a metrics row, a plot and a checkpoint; --resume continues from it", "[train]") {
  TempDir straight_dir, resumed_dir;
  LoopRun straight(straight_dir, 3);
  REQUIRE(straight.run() == 0);
  CHECK(straight.steps == 6);
  CHECK(straight.ended_epochs == std::vector<std::size_t>{0, 1, 2});
  CHECK(count(file_text(straight.opt.out + "/metrics.csv"), "\n") == 4);  // header + 3 rows
  CHECK(fs::exists(straight.opt.out + "/loss.png"));

  LoopRun first(resumed_dir, 2);
  REQUIRE(first.run() == 0);
  LoopRun rest(resumed_dir, 3, first.opt.out + "/checkpoint.tsr");
  REQUIRE(rest.run() == 0);
  CHECK(rest.steps == 2);  // only the third epoch's
  CHECK(rest.ended_epochs == std::vector<std::size_t>{2});
  CHECK(file_text(rest.opt.out + "/metrics.csv") == file_text(straight.opt.out + "/metrics.csv"));
  CHECK(file_text(rest.opt.out + "/checkpoint.tsr") == file_text(straight.opt.out + "/checkpoint.tsr"));
}

TEST_CASE("loop: a NaN loss stops training with the step named; the last checkpoint is kept", "[train]") {
  TempDir dir;
  LoopRun run(dir, 3);
  const std::string checkpoint = run.opt.out + "/checkpoint.tsr";
  const std::string message = error_of([&] { run.run(/*nan_at=*/3); });  // epoch 2, its second step
  CHECK_THAT(message, Catch::Contains("epoch 2, step 2: loss is NaN; training stopped without saving"));
  CHECK_THAT(message, Catch::Contains(checkpoint));
  CHECK(run.ended_epochs == std::vector<std::size_t>{0});
  CHECK(count(file_text(run.opt.out + "/metrics.csv"), "\n") == 2);  // header + epoch 1

  LoopRun good(dir, 1);  // what the checkpoint held after epoch 1: still that
  TempDir other;
  good.opt.out = other / "run";
  fs::create_directories(good.opt.out);
  REQUIRE(good.run() == 0);
  CHECK(file_text(checkpoint) == file_text(good.opt.out + "/checkpoint.tsr"));
}

// ---- metrics log ----------------------------------------------------------------------------------

TEST_CASE("metrics log: a header once, one row per epoch, values read back exactly", "[train]") {
  TempDir dir;
  const std::string path = dir / "metrics.csv";
  train::MetricsLog log(path);
  log.append(1, {{"loss_d", 0.5}, {"loss_g", 1.25}, {"fid", std::numeric_limits<double>::quiet_NaN()}});
  log.append(2, {{"loss_g", 0.1 + 0.2}, {"loss_d", -1e-300}});  // any order; fid left out
  log.append(3, {{"loss_d", std::numeric_limits<double>::infinity()}, {"loss_g", 2.0 / 3}, {"fid", 41.5}});
  CHECK(file_text(path) ==
        "epoch,loss_d,loss_g,fid\n"
        "1,0.5,1.25,\n"
        "2,-1e-300,0.30000000000000004,\n"
        "3,inf,0.6666666666666666,41.5\n");

  const auto back = train::MetricsLog::open(path, /*resume=*/true);
  CHECK(back.columns() == std::vector<std::string>{"loss_d", "loss_g", "fid"});
  CHECK(back.epochs() == std::vector<std::size_t>{1, 2, 3});
  CHECK(back.column("loss_g") == std::vector<double>{1.25, 0.1 + 0.2, 2.0 / 3});
  const auto fid = back.column("fid");
  CHECK((std::isnan(fid[0]) && std::isnan(fid[1]) && fid[2] == 41.5));
  CHECK(std::isinf(back.column("loss_d")[2]));
  CHECK(back.to_csv() == file_text(path));
}

TEST_CASE("metrics log: resuming continues the file, or rewrites it from an earlier epoch", "[train]") {
  TempDir dir;
  const std::string path = dir / "metrics.csv";
  {
    train::MetricsLog log(path);
    for (std::size_t e = 1; e <= 3; ++e) log.append(e, {{"loss", 1.0 / double(e)}});
  }
  auto resumed = train::MetricsLog::open(path, /*resume=*/true);
  REQUIRE(resumed.size() == 3);
  resumed.append(4, {{"loss", 0.125}});
  CHECK(file_text(path) == "epoch,loss\n1,1\n2,0.5\n3,0.3333333333333333\n4,0.125\n");

  auto from_epoch_2 = train::MetricsLog::open(path, true);  // the checkpoint was from epoch 2
  from_epoch_2.append(3, {{"loss", 0.75}});
  CHECK(file_text(path) == "epoch,loss\n1,1\n2,0.5\n3,0.75\n");

  auto fresh = train::MetricsLog::open(path, /*resume=*/false);  // a new run replaces the file
  CHECK(fresh.empty());
  fresh.append(1, {{"d", 2.0}});
  CHECK(file_text(path) == "epoch,d\n1,2\n");

  CHECK(train::MetricsLog::open(dir / "missing.csv", true).empty());
}

TEST_CASE("metrics log: errors", "[train]") {
  TempDir dir;
  train::MetricsLog log(dir / "m.csv");
  log.append(1, {{"loss_d", 1.0}, {"loss_g", 2.0}});
  CHECK(error_of([&] { log.append(2, {{"fid", 3.0}}); }) ==
        "MetricsLog::append: " + (dir / "m.csv") + " has no column 'fid' (columns: epoch,loss_d,loss_g; the first row fixes them)");
  train::MetricsLog other(dir / "o.csv");
  CHECK(error_of([&] { other.append(1, {{"a,b", 1.0}}); }) ==
        "MetricsLog: 'a,b' cannot be a column name (empty, \"epoch\", or holds , \" or a newline)");
  CHECK(error_of([&] { other.append(1, {}); }) == "MetricsLog: the first row of " + (dir / "o.csv") + " has no values; its names fix the columns");

  io::write_file_atomically(dir / "bad.csv", io::Bytes{'e', 'p', 'o', 'c', 'h', ',', 'a', '\n', '1', ',', 'x', '\n'});
  CHECK(error_of([&] { train::MetricsLog::open(dir / "bad.csv", true); }) ==
        "MetricsLog: " + (dir / "bad.csv") + " line 2: 'x' is not a number");
  io::write_file_atomically(dir / "short.csv", io::Bytes{'e', 'p', 'o', 'c', 'h', ',', 'a', '\n', '1', '\n'});
  CHECK(error_of([&] { train::MetricsLog::open(dir / "short.csv", true); }) ==
        "MetricsLog: " + (dir / "short.csv") + " line 2: expected 2 fields, got 1");
}

// ---- plots ----------------------------------------------------------------------------------------

TEST_CASE("plot: an SVG with one polyline per series, a legend and escaped text", "[train]") {
  const std::vector<train::Series> series{{"loss_d", {1, 2, 3}, {0.7, 0.6, 0.65}}, {"loss_g", {1, 2, 3}, {1.2, 1.5, 1.1}}};
  const std::string svg = train::loss_plot_svg("D & G <losses>", series);
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.substr(svg.size() - 7) == "</svg>\n");
  CHECK(count(svg, "<polyline") == 2);
  CHECK(count(svg, "<text") == count(svg, "</text>"));
  CHECK(svg.find(">D &amp; G &lt;losses&gt;</text>") != std::string::npos);
  CHECK(svg.find(">loss_d</text>") != std::string::npos);
  CHECK(svg.find(">loss_g</text>") != std::string::npos);
  CHECK(svg.find(">epoch</text>") != std::string::npos);
}

TEST_CASE("plot: every point inside the frame; ticks at round values", "[train]") {
  const std::vector<train::Series> series{{"a", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {0.9, 0.8, 0.75, 0.7, 0.68, 0.66, 0.65, 0.64, 0.63, 0.62, 0.61, 0.6}},
                                          {"b", {1, 12}, {1.8, 1.05}}};
  const auto c = train::detail::layout_chart(series);
  for (const auto& line : c.points)
    for (const auto& [x, y] : line) {
      CHECK((x > c.left && x < c.right));
      CHECK((y > c.top && y < c.bottom));
    }
  CHECK(c.x.values == std::vector<double>{2, 4, 6, 8, 10, 12});
  CHECK(c.y.step == Approx(0.2));
  CHECK(train::detail::tick_label(c.y.values.front(), c.y.step) == "0.6");
  CHECK(train::detail::tick_label(0.25, 0.05) == "0.25");
  CHECK(train::detail::tick_label(4, 2) == "4");
}

TEST_CASE("plot: one point, NaN and infinity, constant and empty series", "[train]") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::vector<train::Series> series{
      {"one", {1}, {0.5}}, {"gaps", {1, 2, 3, 4, 5}, {nan, 2, inf, 3, -1e308}}, {"flat", {1, 2, 3}, {1, 1, 1}}, {"none", {}, {}}};
  const std::string svg = train::loss_plot_svg("edge cases", series);
  CHECK(count(svg, "<polyline") == 4);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
  CHECK(svg.find(">none (no data)</text>") != std::string::npos);
  const auto c = train::detail::layout_chart(series);
  CHECK(c.points[1].size() == 2);  // NaN, inf and -1e308 left out

  const std::string lone = train::loss_plot_svg("one value", {{"x", {5}, {7}}});
  CHECK(count(lone, "<circle") == 1);  // a lone point is drawn as a dot
  const std::string empty = train::loss_plot_svg("nothing yet", {});
  CHECK(count(empty, "<polyline") == 0);
  CHECK(empty.substr(empty.size() - 7) == "</svg>\n");
  CHECK(error_of([] { train::Series("bad", {1, 2}, {1}); }) == "Series 'bad': 2 x values for 1 y values");
}

TEST_CASE("plot: written from a MetricsLog or from plain series", "[train]") {
  TempDir dir;
  train::MetricsLog log(dir / "metrics.csv");
  log.append(1, {{"loss_d", 0.7}, {"loss_g", 1.4}, {"fid", 80.0}});
  log.append(2, {{"loss_d", 0.6}, {"loss_g", 1.1}, {"fid", 60.0}});
  train::write_loss_plot_svg(dir / "all.svg", "losses", log);
  CHECK(count(file_text(dir / "all.svg"), "<polyline") == 3);
  train::write_loss_plot_svg(dir / "losses.svg", "losses", log, {"loss_d", "loss_g"});
  const std::string two = file_text(dir / "losses.svg");
  CHECK(count(two, "<polyline") == 2);
  CHECK(two.find(">fid</text>") == std::string::npos);

  train::write_loss_plot_svg(dir / "plain.svg", "plain", {{"train", {0.9, 0.5, 0.4}}, {"val", {1.0, 0.7, 0.6}}});
  const std::string plain = file_text(dir / "plain.svg");
  CHECK(count(plain, "<polyline") == 2);
  CHECK(plain.find(">3</text>") != std::string::npos);  // x runs over epochs 1..3
}

TEST_CASE("plot: the same chart as a PNG", "[train]") {
  TempDir dir;
  const std::vector<train::Series> series{{"flat", {1, 2, 3}, {1.5, 1.5, 1.5}}, {"rising", {1, 2, 3}, {0, 1, 2}}};
  train::write_loss_plot_png(dir / "loss.png", "two lines", series);
  const Tensor<float> image = io::load_image(dir / "loss.png", 3);
  REQUIRE(image.shape() == Shape{3, std::size_t(train::chart_height), std::size_t(train::chart_width)});
  CHECK((image.at(0, 2, 2) == 1.0f && image.at(1, 2, 2) == 1.0f && image.at(2, 2, 2) == 1.0f));  // white margin
  const auto c = train::detail::layout_chart(series);
  const train::Rgb blue = train::hex_color("#1f77b4"), orange = train::hex_color("#ff7f0e");
  auto pixel_is = [&](std::pair<double, double> at, train::Rgb color) {
    const auto y = std::size_t(at.second), x = std::size_t(at.first);
    return std::abs(image.at(0, y, x) - color.r) < 0.01f && std::abs(image.at(1, y, x) - color.g) < 0.01f &&
           std::abs(image.at(2, y, x) - color.b) < 0.01f;
  };
  CHECK(pixel_is(c.points[0][1], blue));
  CHECK(pixel_is(c.points[1][2], orange));
  std::size_t dark = 0;  // the title's pixels
  for (std::size_t y = 0; y < 30; ++y)
    for (std::size_t x = 0; x < image.size(2); ++x) dark += image.at(0, y, x) < 0.5f;
  CHECK(dark > 50);
}

TEST_CASE("canvas: rectangles, sharp and anti-aliased lines, text width", "[train]") {
  train::Canvas canvas(10, 5);
  canvas.fill_rect(2, 1, 4, 3, {1, 0, 0});
  const Tensor<float>& image = canvas.image();
  CHECK((image.at(0, 1, 2) == 1.0f && image.at(1, 1, 2) == 0.0f && image.at(1, 2, 3) == 0.0f));
  CHECK((image.at(1, 0, 2) == 1.0f && image.at(1, 1, 4) == 1.0f && image.at(1, 3, 2) == 1.0f));  // just outside

  train::Canvas lines(10, 5);
  lines.line(0, 3.5, 10, 3.5, 1, {0, 0, 0});  // on the centres of row 3: exactly that row
  CHECK((lines.image().at(0, 3, 5) == 0.0f && lines.image().at(0, 2, 5) == 1.0f && lines.image().at(0, 4, 5) == 1.0f));
  lines.line(0, 1.0, 10, 1.0, 1, {0, 0, 0});  // between rows 0 and 1: half of each
  CHECK(lines.image().at(0, 0, 5) == Approx(0.5f));
  CHECK(lines.image().at(0, 1, 5) == Approx(0.5f));

  CHECK(train::Canvas::text_width("abc") == 17);        // 3 × 6 − 1
  CHECK(train::Canvas::text_width("abc", 2) == 34);
  CHECK(train::Canvas::text_width("\xC3\xA9") == 5);  // one UTF-8 character, drawn as '?'
  CHECK(train::hex_color("#ff8000").g == Approx(128.0f / 255));
  CHECK(error_of([] { train::hex_color("red"); }) == "hex_color: expected #rrggbb, got 'red'");
}

// ---- one run per output folder, and what --resume does ----------------------------------------------

TEST_CASE("cli: the --out folder is locked while the run lives; a second run stops naming the first's PID", "[train][reliability]") {
  TempDir dir;
  train::Options first;
  first.out = dir / "out";
  train::Cli holder("dcgan", "first", first);
  holder.parse(std::vector<std::string>{});
  train::Options second;
  second.out = first.out;
  train::Cli other("dcgan", "second", second);
  CHECK_THROWS_WITH(other.parse(std::vector<std::string>{}),
                    "--out: another run (PID " + std::to_string(::getpid()) + ") is writing into " + first.out +
                        "; wait for it to finish, or choose another --out");
}

TEST_CASE("cli: stale temporary files of our naming in --out are removed, other files stay", "[train][reliability]") {
  TempDir dir;
  const std::string out = dir / "out";
  fs::create_directories(out);
  for (const char* name : {"checkpoint.tsr.tmp.Ab12Cd", "metrics.csv.tmp.000000", "notes.tmp.txt", "a.tmp.toolong"})
    std::ofstream(out + "/" + name) << "x";
  CHECK(train::OutputFolder::is_temporary_name("checkpoint.tsr.tmp.Ab12Cd"));
  CHECK(!train::OutputFolder::is_temporary_name("notes.tmp.txt"));
  Parsed p(dir, {});
  CHECK(!fs::exists(out + "/checkpoint.tsr.tmp.Ab12Cd"));
  CHECK(!fs::exists(out + "/metrics.csv.tmp.000000"));
  CHECK(fs::exists(out + "/notes.tmp.txt"));
  CHECK(fs::exists(out + "/a.tmp.toolong"));
}

TEST_CASE("cli: a run without --resume into an --out holding a checkpoint refuses unless --overwrite", "[train][reliability]") {
  TempDir dir;
  fs::create_directories(dir / "out");
  std::ofstream(dir / "out/checkpoint.tsr") << "x";
  const std::string message = [&] {
    try {
      Parsed p(dir, {});
    } catch (const train::UsageError& e) {
      return std::string(e.what());
    }
    return std::string("<no usage error>");
  }();
  CHECK(message == "--out: " + (dir / "out") + " already holds a run (checkpoint.tsr); continue it with --resume " +
                       (dir / "out/checkpoint.tsr") + ", or start afresh with --overwrite");
  Parsed p(dir, {"--overwrite"});
  CHECK(p.opt.overwrite);
}

namespace {
/// A checkpoint whose run recorded `flags`, as EpochLoop saves them.
std::string checkpoint_with_flags(const TempDir& dir, const std::string& flags) {
  io::Checkpoint<float> checkpoint;
  checkpoint.state.metadata["flags"] = flags;
  const std::string path = dir / "run.tsr";
  checkpoint.save(path);
  return path;
}
/// What parsing `args` printed on stdout.
std::string stdout_of(const std::function<void()>& f) {
  std::ostringstream captured;
  auto* saved = std::cout.rdbuf(captured.rdbuf());
  try {
    f();
  } catch (...) {
    std::cout.rdbuf(saved);
    throw;
  }
  std::cout.rdbuf(saved);
  return captured.str();
}
}  // namespace

TEST_CASE("cli: --resume takes the checkpoint's flags where none are given; given ones change them or are refused", "[train][reliability]") {
  TempDir dir;
  const std::string path = checkpoint_with_flags(dir, "--lr=0.5\n--seed=3\n--latent=64\n--beta=2\n--epochs=4\n--gone=1\n");
  {
    TempDir run;
    std::unique_ptr<Parsed> p;
    CHECK(stdout_of([&] { p = std::make_unique<Parsed>(run, std::vector<std::string>{"--resume", path}); }).empty());
    CHECK(p->opt.lr == 0.5);
    CHECK(p->opt.seed == 3);
    CHECK(p->latent == 64);
    CHECK(p->beta == 2);
    CHECK(p->opt.epochs == 4);
    CHECK(p->opt.resumed_with_flags);
    const auto& flags = p->opt.run_flags;
    CHECK(std::find(flags.begin(), flags.end(), std::make_pair(std::string("--lr"), std::string("0.5"))) != flags.end());
    for (const auto& [name, value] : flags) CHECK((name != "--out" && name != "--resume" && name != "--threads" && name != "--overwrite"));
  }
  {
    TempDir run;  // the learning rate and the epochs may change: each change is said in one line
    std::unique_ptr<Parsed> p;
    const std::string said = stdout_of([&] {
      p = std::make_unique<Parsed>(run, std::vector<std::string>{"--resume", path, "--lr", "0.1", "--epochs", "6", "--latent", "64"});
    });
    CHECK(said == "resume: --lr 0.1 (the checkpoint's run used 0.5)\nresume: --epochs 6 (the checkpoint's run used 4)\n");
    CHECK(p->opt.lr == 0.1);
  }
  // the seed and the model's flags stay as the checkpoint's run had them
  CHECK(usage_error({"--resume", path, "--seed", "4"}) ==
        "--seed 4: the checkpoint's run used 3, which a resumed run keeps; start a new run (another --out, or --overwrite) to change it");
  CHECK_THAT(usage_error({"--resume", path, "--beta", "3"}), Catch::StartsWith("--beta 3: the checkpoint's run used 2"));
  CHECK_THAT(usage_error({"--resume", dir / "missing.tsr"}), Catch::StartsWith("--resume: no such file"));
}

TEST_CASE("loop: an optimizer's moments turned infinite stop training like a NaN loss; the last checkpoint is kept", "[train][reliability]") {
  TempDir dir;
  CountingDataset dataset(8);
  nn::Dense<float> model(1, 1);
  optim::Adam<float> adam(model.parameters(), 0.01);
  train::Options opt;
  opt.epochs = 3;
  opt.out = dir / "run";
  fs::create_directories(opt.out);
  io::Checkpoint<float> checkpoint;
  checkpoint.add("model", model).add("opt", adam);
  data::LoaderOptions batches;
  batches.batch_size = 4;
  data::DataLoader loader(dataset, batches);
  std::size_t step = 0;
  train::EpochLoop<float> loop(checkpoint, opt);
  const std::string message = error_of([&] {
    loop.run(
        loader,
        [&](const data::Batch&) -> train::Values {
          model.zero_grad();  // step 3 (epoch 2): a gradient of 1e30, whose square is Inf in float
          (sum(model(Var<float>(Tensor<float>::ones({1, 1})))) * (step++ == 2 ? 1e30 : 1.0)).backward();
          adam.step();
          return {{"loss", 0.5}};
        },
        [](std::size_t, train::Values&) {});
  });
  CHECK_THAT(message, Catch::StartsWith("epoch 2: opt/") && Catch::Contains("holds Inf; training stopped without saving"));
  io::Checkpoint<float> saved;
  nn::Dense<float> restored(1, 1);
  optim::Adam<float> restored_adam(restored.parameters(), 0.01);
  saved.add("model", restored).add("opt", restored_adam);
  saved.load(opt.out + "/checkpoint.tsr");
  CHECK(saved.state.epoch == 1);  // the checkpoint of epoch 1, intact
  CHECK(saved.first_non_finite().empty());
}

TEST_CASE("loop: an epoch resumed mid-way logs the means of all its steps, as a run never stopped", "[train][reliability]") {
  TempDir straight_dir, stopped_dir;
  LoopRun straight(straight_dir, 3);
  REQUIRE(straight.run() == 0);
  LoopRun stopped(stopped_dir, 3);
  stopped.interrupt_at = 2;  // epoch 2's first step: stopped after it
  std::string said;
  int status = 0;
  said = stdout_of([&] { status = stopped.run(); });
  REQUIRE(status == 130);
  CHECK_THAT(said, Catch::Contains("interrupted by SIGINT in epoch 2 after step 1"));
  LoopRun resumed(stopped_dir, 3, stopped.opt.out + "/checkpoint.tsr");
  REQUIRE(resumed.run() == 0);
  CHECK(file_text(resumed.opt.out + "/metrics.csv") == file_text(straight.opt.out + "/metrics.csv"));
  CHECK(file_text(resumed.opt.out + "/checkpoint.tsr") == file_text(straight.opt.out + "/checkpoint.tsr"));
}

TEST_CASE("loop: a dataset smaller than one batch is an Error naming both; --epochs already reached trains nothing", "[train][reliability]") {
  TempDir dir;
  CountingDataset dataset(8);
  train::Options opt;
  opt.out = dir / "run";
  opt.batch = 100;
  fs::create_directories(opt.out);
  io::Checkpoint<float> checkpoint;
  data::LoaderOptions batches;
  batches.batch_size = 100;
  batches.drop_last = true;
  data::DataLoader loader(dataset, batches);
  train::EpochLoop<float> loop(checkpoint, opt);
  CHECK_THAT(error_of([&] { loop.run(loader, [](const data::Batch&) { return train::Values{}; }, [](std::size_t, train::Values&) {}); }),
             Catch::Equals("the 8 images to train on make no batch of --batch 100 (the last, smaller batch is left out)"));

  LoopRun first(dir, 2);
  REQUIRE(first.run() == 0);
  LoopRun again(dir, 2, first.opt.out + "/checkpoint.tsr");
  const std::string said = stdout_of([&] { REQUIRE(again.run() == 0); });
  CHECK(!again.trained);
  CHECK_THAT(said, Catch::Contains("nothing to train: " + first.opt.out + "/checkpoint.tsr is at epoch 2 and --epochs is 2"));
}
