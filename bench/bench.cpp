// bench.cpp — tessera's training benchmark: four workloads (batch 64, Adam, random data) timed
// in interleaved blocks at each thread count. Reports steps/s (median, min, max over blocks),
// images/s, GFLOP/s of the matrix products (FlopCounter) and their share of this machine's FMA
// peak (measured here, on as many threads, just before every block; the share is the median
// over blocks), inference images/s, peak RSS and minor page faults per step. PyTorch runs the
// same workloads in bench/compare_torch.py, which calls this program with --csv.
//
//   tessera_bench                                   # all four workloads, 1 and 2 threads
//   tessera_bench --workload dcgan64 --threads 2 --blocks 5 --steps 3
//   tessera_bench --workload dcgan64 --threads 2 --profile   # + time per layer, forward and backward
//
// Workloads (the architectures of the models/ headers):
//   dcgan64    models::Dcgan 64×64×3 (the Keras original); a step = D on a real and a fake batch, then G through D
//   sngan64    the same with SNGAN's D (spectral norm on every layer, no BatchNorm, no dropout) and the
//              hinge loss; sngan64-plain without the spectral norm: the pair measures what SN costs
//   dcgan28    models::Dcgan 28×28×1 (Dense → 7·7·128, ConvT 128 → 64 → 1; D Conv 1 → 64 → 128, Dense 6272 → 1)
//   vae32      models::ConvVae 32×32×3, latent 100, squared error + KL
//   texture64  models::TextureClassifier, 10 classes, 64×64×3 crops, cross-entropy
#include <tessera/tessera.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#ifdef __x86_64__
#include <immintrin.h>
#endif

namespace ts = tessera;

namespace {

constexpr std::size_t kBatch = 64;

double now_seconds() { return ts::train::ProgressBar::steady_seconds(); }

/// A workload: one training step, and one inference pass (generator, decoder or classifier).
struct Workload {
  std::string name;
  std::function<void()> step, infer;  // each holds the model, optimizer and data
};

template <class State>
Workload make(std::string name, std::shared_ptr<State> state) {
  return {std::move(name), [state] { state->step(); }, [state] { state->infer(); }};
}

struct GanBench {
  ts::models::Dcgan<float> gan;
  ts::models::GanTrainer<float> trainer;
  ts::Rng rng{1};
  ts::Tensor<float> real, z;
  GanBench(std::size_t size, std::size_t channels) : GanBench(ts::models::DcganConfig{size, channels, 100}, {}) {}
  GanBench(const ts::models::DcganConfig& config, const ts::models::GanTrainerOptions& options)
      : gan(config), trainer(gan, options) {
    const std::size_t size = config.image_size, channels = config.channels;
    real = ts::Tensor<float>::uniform({kBatch, channels, size, size}, rng, -1.f, 1.f);  // G's tanh range
    z = ts::Tensor<float>::randn({kBatch, 100}, rng);
  }
  void step() { trainer.step(real, {}, rng); }
  void infer() { trainer.sample(z); }
};

struct VaeBench {
  ts::models::ConvVae<float> vae;
  ts::optim::Adam<float> optimizer;
  ts::Rng rng{2};
  ts::Tensor<float> images;
  VaeBench() : vae(config()), optimizer(vae.parameters(), 1e-3) {
    images = ts::Tensor<float>::uniform({kBatch, 3, 32, 32}, rng);
  }
  static ts::models::VaeConfig config() {
    ts::models::VaeConfig c;
    c.image_size = 32;
    c.reconstruction = ts::models::Reconstruction::mse;
    return c;
  }
  void step() {
    auto loss = vae.loss(ts::Var<float>(images), rng);
    optimizer.zero_grad();
    loss.total.backward();
    optimizer.step();
  }
  void infer() { vae.sample(kBatch, rng); }
};

struct TextureBench {
  ts::models::TextureClassifier<float> model{10, 3};
  ts::optim::Adam<float> optimizer{model.parameters(), 1e-3};
  ts::Rng rng{3};
  ts::Tensor<float> images;
  std::vector<std::int64_t> labels;
  TextureBench() {
    images = ts::Tensor<float>::uniform({kBatch, 3, 64, 64}, rng);
    for (std::size_t i = 0; i < kBatch; ++i) labels.push_back(std::int64_t(i % 10));
  }
  void step() {
    auto loss = ts::nn::cross_entropy(model(ts::Var<float>(images)), labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  void infer() {
    ts::models::EvalMode<float> inference(model);
    model(ts::Var<float>(images));
  }
};

Workload workload(const std::string& name) {
  ts::manual_seed(0);
  if (name == "dcgan64") return make(name, std::make_shared<GanBench>(64, 3));
  if (name == "dcgan28") return make(name, std::make_shared<GanBench>(28, 1));
  if (name == "sngan64" || name == "sngan64-plain") {  // SNGAN's D (no BatchNorm, no dropout, hinge), with and without SN
    ts::models::DcganConfig config{64, 3, 100};
    config.batch_norm_in_d = false, config.dropout = 0, config.spectral_norm = name == "sngan64";
    ts::models::GanTrainerOptions options;
    options.loss = ts::models::GanLoss::hinge, options.beta1 = 0, options.beta2 = 0.9;
    return make(name, std::make_shared<GanBench>(config, options));
  }
  if (name == "vae32") return make(name, std::make_shared<VaeBench>());
  if (name == "texture64") return make(name, std::make_shared<TextureBench>());
  throw ts::train::UsageError("--workload: expected dcgan64, dcgan28, vae32, texture64, sngan64, sngan64-plain or all, got '" + name + "'");
}

/// GFLOP/s of multiply-adds kept in registers, on `threads` threads at once: this machine's
/// practical FMA peak (AVX-512 or AVX2 clocks included). 12 independent accumulators cover
/// the FMA latency of two ports.
double fma_peak_gflops(int threads) {
#if defined(__AVX512F__)
  constexpr double kLanes = 16;
#elif defined(__AVX2__) && defined(__FMA__)
  constexpr double kLanes = 8;
#else
  constexpr double kLanes = 1;
#endif
  constexpr long kIterations = 20'000'000;
  float sink = 0;
  const double start = now_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  {
#if defined(__AVX512F__)
    __m512 acc[12], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (auto& x : acc) x = _mm512_set1_ps(1.f);
    for (long i = 0; i < kIterations; ++i)
#pragma GCC unroll 12  // the accumulators stay in registers at -O2 too
      for (auto& x : acc) x = _mm512_fmadd_ps(x, a, b);
    alignas(64) float out[16];  // (GCC 12's _mm512_reduce_add_ps trips -Wuninitialized)
    for (auto& x : acc) {
      _mm512_store_ps(out, x);
      for (float v : out) sink += v;
    }
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 acc[12], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (auto& x : acc) x = _mm256_set1_ps(1.f);
    for (long i = 0; i < kIterations; ++i)
#pragma GCC unroll 12
      for (auto& x : acc) x = _mm256_fmadd_ps(x, a, b);
    alignas(32) float out[8];
    for (auto& x : acc) {
      _mm256_store_ps(out, x);
      for (float v : out) sink += v;
    }
#else
    float acc[12];
    for (auto& x : acc) x = 1.f;
    for (long i = 0; i < kIterations; ++i)
#pragma GCC unroll 12
      for (auto& x : acc) x = x * 0.999999f + 1e-7f;
    for (float x : acc) sink += x;
#endif
  }
  const double seconds = now_seconds() - start;
  if (sink == 42.f) std::puts("");  // the sums are used: the loops stay
  return 2.0 * kLanes * 12 * double(kIterations) * threads / seconds / 1e9;
}

rusage usage_now() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage;
}
double peak_rss_mb() { return double(usage_now().ru_maxrss) / 1024.0; }  // kilobytes on Linux

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Where the time of `run` (a training step or an inference pass) goes, per layer (Profiler
/// scopes), over `repeats` runs at the current thread count; what no layer claims (losses,
/// Adam's bookkeeping, graph freeing) is "other".
void print_profile(const char* what, const std::function<void()>& run, std::size_t repeats) {
  ts::Profiler profile;
  const double start = now_seconds();
  for (std::size_t s = 0; s < repeats; ++s) run();
  const double per_run_ms = 1e3 * (now_seconds() - start) / double(repeats);
  std::printf("  %-72s %9s %9s %6s\n", (std::string("layer (ms per ") + what + ")").c_str(), "forward", "backward", "share");
  double claimed = 0;
  for (const auto& row : profile.rows()) {
    const double forward = 1e3 * row.forward_s / double(repeats), backward = 1e3 * row.backward_s / double(repeats);
    claimed += forward + backward;
    std::printf("  %-72.72s %9.2f %9.2f %5.1f%%\n", row.label.c_str(), forward, backward,
                100 * (forward + backward) / per_run_ms);
  }
  std::printf("  %-72s %19.2f %5.1f%%\n  %-72s %19.2f\n", "other", per_run_ms - claimed,
              100 * (per_run_ms - claimed) / per_run_ms, what, per_run_ms);
}

/// The timing of one workload at one thread count.
struct Result {
  std::vector<double> steps_per_s;
  std::vector<double> peak_gflops;  // the FMA peak measured just before each block
  std::vector<double> peak_share;   // each block's GFLOP/s over that peak
  double inference_images_per_s = 0;
  long minor_faults = 0;  // pages the kernel had to map in (and zero) during the timed steps
};

const char* const kUsage =
    "usage: tessera_bench [--workload dcgan64|dcgan28|vae32|texture64|sngan64|sngan64-plain|all] [--threads 1,2]\n"
    "                     [--blocks 5] [--steps 3]\n"
    "                     [--csv] [--profile]\n"
    "  --profile: after the timing, each layer's forward and backward time at the last thread count\n"
    "  --csv: one line per workload and thread count: tessera,workload,threads,steps/s median,min,max,images/s,\n"
    "         GFLOP/s,fraction of the FMA peak,inference images/s,peak RSS MB,minor page faults per step\n";

int run(int argc, char** argv) {
  std::string which = "all", thread_list = "1,2";
  std::size_t blocks = 5, steps = 3;
  bool csv = false, profile = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ts::train::UsageError(flag + ": expected a value");
      return argv[++i];
    };
    auto count = [&] {
      const std::string v = value();
      TESSERA_CHECK(!v.empty() && v.size() < 10 && v.find_first_not_of("0123456789") == std::string::npos && std::stoul(v) > 0,
                    flag << ": expected a positive integer, got '" << v << "'");
      return std::size_t(std::stoul(v));
    };
    if (flag == "--workload") which = value();
    else if (flag == "--threads") thread_list = value();
    else if (flag == "--blocks") blocks = count();
    else if (flag == "--steps") steps = count();
    else if (flag == "--csv") csv = true;
    else if (flag == "--profile") profile = true;
    else if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else throw ts::train::UsageError("unknown flag " + flag + "\n" + kUsage);
  }

  std::vector<int> thread_counts;
  for (std::size_t at = 0; at < thread_list.size();) {
    const std::size_t comma = std::min(thread_list.find(',', at), thread_list.size());
    const std::string t = thread_list.substr(at, comma - at);
    TESSERA_CHECK(!t.empty() && t.size() < 5 && t.find_first_not_of("0123456789") == std::string::npos && std::stoi(t) > 0,
                  "--threads: expected thread counts like 1,2, got '" << thread_list << "'");
    thread_counts.push_back(std::stoi(t));
    at = comma + 1;
  }
  const std::vector<std::string> names =
      which == "all" ? std::vector<std::string>{"dcgan64", "dcgan28", "vae32", "texture64"} : std::vector<std::string>{which};

  if (!csv) {
    std::printf("%-10s %7s %22s %9s %8s %7s %13s %12s\n", "workload", "threads", "steps/s median [min-max]", "images/s",
                "GFLOP/s", "% peak", "inference/s", "faults/step");
  }
  for (const std::string& name : names) {
    Workload w = workload(name);
    double flops_per_step = 0;
    {
      ts::FlopCounter flops;
      w.step();  // also the first warm-up step
      flops_per_step = flops.total();
    }
    std::vector<Result> results(thread_counts.size());
    for (std::size_t i = 0; i < thread_counts.size(); ++i) {  // warm-up at each count
      ts::set_num_threads(thread_counts[i]);
      w.step();
    }
    for (std::size_t block = 0; block < blocks; ++block)
      for (std::size_t i = 0; i < thread_counts.size(); ++i) {  // interleaved: drift hits every count alike
        ts::set_num_threads(thread_counts[i]);
        // the peak beside each block: a shared machine's speed drifts, and the share of the
        // peak should compare the step with what the cores could do at the same time
        const double peak = fma_peak_gflops(thread_counts[i]);
        const long faults = usage_now().ru_minflt;
        const double start = now_seconds();
        for (std::size_t s = 0; s < steps; ++s) w.step();
        const double steps_per_s = double(steps) / (now_seconds() - start);
        results[i].steps_per_s.push_back(steps_per_s);
        results[i].peak_gflops.push_back(peak);
        results[i].peak_share.push_back(steps_per_s * flops_per_step / 1e9 / peak);
        results[i].minor_faults += usage_now().ru_minflt - faults;
      }
    for (std::size_t i = 0; i < thread_counts.size(); ++i) {
      ts::set_num_threads(thread_counts[i]);
      w.infer();
      const double start = now_seconds();
      const int passes = 5;
      for (int p = 0; p < passes; ++p) w.infer();
      results[i].inference_images_per_s = passes * double(kBatch) / (now_seconds() - start);
    }
    for (std::size_t i = 0; i < thread_counts.size(); ++i) {
      const auto& r = results[i];
      const double mid = median(r.steps_per_s);
      const double lo = *std::min_element(r.steps_per_s.begin(), r.steps_per_s.end());
      const double hi = *std::max_element(r.steps_per_s.begin(), r.steps_per_s.end());
      const double gflops = mid * flops_per_step / 1e9, peak_share = median(r.peak_share);
      const double faults_per_step = double(r.minor_faults) / double(blocks * steps);
      if (csv)
        std::printf("tessera,%s,%d,%.4f,%.4f,%.4f,%.2f,%.2f,%.4f,%.1f,%.1f,%.0f\n", name.c_str(), thread_counts[i], mid, lo,
                    hi, mid * double(kBatch), gflops, peak_share, r.inference_images_per_s, peak_rss_mb(),
                    faults_per_step);
      else
        std::printf("%-10s %7d %8.3f [%.3f-%.3f] %9.1f %8.1f %6.1f%% %13.0f %12.0f\n", name.c_str(), thread_counts[i], mid,
                    lo, hi, mid * double(kBatch), gflops, 100 * peak_share, r.inference_images_per_s,
                    faults_per_step);
    }
    if (!csv) {
      std::printf("%-10s %.2f GFLOP per step (matrix products); FMA peak beside the blocks (median):", "", flops_per_step / 1e9);
      for (std::size_t i = 0; i < thread_counts.size(); ++i)
        std::printf(" %.1f GFLOP/s at %d thread%s%s", median(results[i].peak_gflops), thread_counts[i],
                    thread_counts[i] > 1 ? "s" : "", i + 1 < thread_counts.size() ? "," : "\n");
    }
    if (profile && !csv) {  // at the last thread count, still set
      print_profile("step", w.step, steps);
      print_profile("inference", w.infer, steps);
    }
  }
  if (!csv) std::printf("peak RSS of this process: %.0f MB\n", peak_rss_mb());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ts::train::run_example(argc, argv, run); }
