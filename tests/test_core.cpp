// Core: Shape, Tensor, Rng, the allocation hook, threading determinism, errors.
#include <catch2/catch.hpp>
#include <tessera/tessera.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>

using namespace tessera;

TEST_CASE("Shape prints as PyTorch's tuple and counts elements", "[core][shape]") {
  std::ostringstream os;
  os << Shape{64, 3, 32, 32} << ' ' << Shape{5} << ' ' << Shape{};
  CHECK(os.str() == "(64, 3, 32, 32) (5) ()");
  CHECK(Shape{64, 3, 32, 32}.numel() == 64 * 3 * 32 * 32);
  CHECK(Shape{}.numel() == 1);  // a scalar
  CHECK(Shape{4, 0, 2}.numel() == 0);
  CHECK(Shape{2, 3}.numel(1, 2) == 3);
  CHECK(Shape{2, 3} == Shape{2, 3});
  CHECK(Shape{2, 3} != Shape{3, 2});
  Shape s;
  for (std::size_t i = 0; i < Shape::max_rank; ++i) s.push_back(1);
  CHECK_THROWS_AS(s.push_back(1), Error);
}

TEST_CASE("Tensor factories, access and value semantics", "[core][tensor]") {
  Tensor<float> z = Tensor<float>::zeros({2, 3});
  CHECK(z.size() == 6);
  CHECK(z.dim() == 2);
  CHECK(z.shape()[1] == 3);
  for (float v : z) CHECK(v == 0.0f);
  CHECK(Tensor<double>::ones({4})[3] == 1.0);
  CHECK(Tensor<double>::full({2, 2}, 2.5).at(1, 1) == 2.5);
  CHECK(Tensor<double>::scalar(3.0).item() == 3.0);

  Tensor<double> t({2, 3}, {1, 2, 3, 4, 5, 6});  // row-major
  CHECK(t.at(1, 0) == 4.0);
  CHECK(t.data()[5] == 6.0);
  CHECK_THROWS_AS(t.at(2, 0), Error);
  CHECK_THROWS_AS(t.at(0), Error);
  CHECK_THROWS_AS(Tensor<double>({2, 2}, {1, 2, 3}), Error);
  CHECK_THROWS_AS(t.item(), Error);

  Tensor<double> copy = t;  // deep copy
  copy[0] = 100;
  CHECK(t[0] == 1.0);
  Tensor<double> moved = std::move(copy);
  CHECK(moved[0] == 100.0);
  CHECK_FALSE(copy.defined());  // NOLINT: moved-from is documented as undefined

  const Tensor<double> r = t.reshape({3, 2});
  CHECK(r.shape() == Shape{3, 2});
  CHECK(r.at(2, 1) == 6.0);
  CHECK_THROWS_AS(t.reshape({4, 2}), Error);
  CHECK(t.cast<float>()[2] == 3.0f);
  CHECK(t.matrix(3, 2)(1, 0) == 3.0);

  std::ostringstream os;
  os << Tensor<double>({2}, {1, 2});
  CHECK(os.str() == "Tensor(2) [1, 2]");
}

TEST_CASE("in-place arithmetic checks shapes", "[core][tensor][errors]") {
  Tensor<double> a = Tensor<double>::ones({2, 2});
  a += Tensor<double>::full({2, 2}, 2.0);
  a *= 2.0;
  CHECK(a[3] == 6.0);
  try {
    a += Tensor<double>::ones({4});
    FAIL("expected an Error");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("(2, 2)") && Catch::Contains("(4)"));
  }
}

TEST_CASE("tessera::Error is a std::runtime_error", "[core][errors]") {
  CHECK_THROWS_AS(Tensor<float>::zeros({2}).reshape({3}), std::runtime_error);
}

TEST_CASE("Rng: same seed, same numbers; state saves and restores", "[core][rng]") {
  Rng a(42), b(42), c(43);
  const auto ta = Tensor<float>::randn({100}, a);
  const auto tb = Tensor<float>::randn({100}, b);
  const auto tc = Tensor<float>::randn({100}, c);
  CHECK(ta.to_vector() == tb.to_vector());
  CHECK(ta.to_vector() != tc.to_vector());

  a.normal();  // leaves a spare normal cached: part of the state
  const RngState saved = a.state();
  const double x1 = a.normal(), x2 = a.normal(), u = a.uniform();
  a.set_state(saved);
  CHECK(a.normal() == x1);
  CHECK(a.normal() == x2);
  CHECK(a.uniform() == u);
}

TEST_CASE("Rng: distributions have the right moments and ranges", "[core][rng]") {
  Rng rng(7);
  const std::size_t n = 200000;
  const auto g = Tensor<double>::randn({n}, rng, 2.0, 3.0);
  const double mean = g.array().mean();
  const double var = (g.array() - mean).square().mean();
  CHECK(mean == Approx(2.0).margin(0.03));
  CHECK(std::sqrt(var) == Approx(3.0).epsilon(0.01));
  const auto u = Tensor<double>::uniform({n}, rng, -1.0, 1.0);
  CHECK(u.array().minCoeff() >= -1.0);
  CHECK(u.array().maxCoeff() < 1.0);
  CHECK(u.array().mean() == Approx(0.0).margin(0.01));
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) ++counts[rng.below(7)];
  for (int k : counts) CHECK(k == Approx(10000).epsilon(0.05));
  CHECK_THROWS_AS(rng.below(0), Error);
}

TEST_CASE("manual_seed makes layer initialisation reproducible", "[core][rng]") {
  manual_seed(5);
  nn::Dense<float> a(10, 4);
  manual_seed(5);
  nn::Dense<float> b(10, 4);
  nn::Dense<float> c(10, 4);
  CHECK(a.weight.value().to_vector() == b.weight.value().to_vector());
  CHECK(a.weight.value().to_vector() != c.weight.value().to_vector());
}

namespace {
// Counts allocations, to show every tensor's memory goes through the hook.
class CountingAllocator final : public Allocator {
 public:
  std::atomic<long> live{0}, total{0};
  void* allocate(std::size_t bytes) override {
    ++live;
    ++total;
    return fallback.allocate(bytes);
  }
  void deallocate(void* p, std::size_t bytes) override {
    --live;
    fallback.deallocate(p, bytes);
  }
  AlignedAllocator fallback;
};
}  // namespace

TEST_CASE("every tensor allocation goes through the allocator hook", "[core][allocator]") {
  CountingAllocator counting;
  Allocator* previous = set_allocator(&counting);
  Tensor<float> survivor;
  {
    Rng rng(1);
    Var<float> x(Tensor<float>::randn({4, 3, 8, 8}, rng), true);
    nn::Conv2D<float> conv(3, 5, 3, 1, 1);
    sum(conv(x)).backward();
    survivor = Tensor<float>::ones({16});
  }
  set_allocator(previous);
  CHECK(counting.total > 10);
  CHECK(counting.live == 1);  // only `survivor` is still alive...
  survivor = Tensor<float>();  // ...and it returns to the allocator that made it
  CHECK(counting.live == 0);
  CHECK(&allocator() == previous);
}

TEST_CASE("HugePageAllocator: blocks from 2 MB on are aligned to a huge page and advised as such", "[core][allocator]") {
  constexpr std::size_t huge = HugePageAllocator::huge_page, mb = std::size_t(1) << 20;
  CHECK(HugePageAllocator::mapping_size(huge - 64) == 0);  // from AlignedAllocator
#if defined(__linux__)
  CHECK(HugePageAllocator::mapping_size(huge) == huge);
  CHECK(HugePageAllocator::mapping_size(10 * mb - 100000) == 10 * mb);  // the last huge page whole: adds 1 %
  const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
  CHECK(HugePageAllocator::mapping_size(2 * mb + 1) == 2 * mb + page);  // it would add 100 %: the tail in small pages

  HugePageAllocator pages;
  const std::size_t bytes = 3 * mb + 12345;
  auto* block = static_cast<unsigned char*>(pages.allocate(bytes));
  CHECK(reinterpret_cast<std::uintptr_t>(block) % huge == 0);
  block[0] = 1, block[bytes - 1] = 2;  // all of it writable
  // the kernel was asked for huge pages: the mapping holding the block carries VmFlag "hg"
  std::ifstream smaps("/proc/self/smaps");
  std::string line, flags;
  bool inside = false;
  const auto address = reinterpret_cast<std::uintptr_t>(block);
  while (std::getline(smaps, line)) {
    unsigned long long first = 0, last = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx", &first, &last) == 2)  // a mapping's first line: its address range
      inside = first <= address && address < last;
    else if (inside && line.rfind("VmFlags:", 0) == 0)
      flags = line;
  }
  INFO(flags);
  if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled"))  // (a kernel without THP refuses the advice)
    CHECK(flags.find(" hg") != std::string::npos);
  CHECK((block[0] == 1 && block[bytes - 1] == 2));
  pages.deallocate(block, bytes);
#endif
  void* small = HugePageAllocator().allocate(1000);  // small blocks: 64-byte aligned from the runtime
  CHECK(reinterpret_cast<std::uintptr_t>(small) % 64 == 0);
  HugePageAllocator().deallocate(small, 1000);
}

TEST_CASE("CachingAllocator: freed blocks come back for the same size class", "[core][allocator]") {
  CHECK(CachingAllocator::size_class(0) == 64);
  CHECK(CachingAllocator::size_class(65) == 128);
  CHECK(CachingAllocator::size_class(512) == 512);
  CHECK(CachingAllocator::size_class(1024) == 1024);
  CHECK(CachingAllocator::size_class(1025) == 1152);
  CHECK(CachingAllocator::size_class(100000) == 106496);
  for (std::size_t bytes : {1u, 700u, 5000u, 123457u, 9999999u}) {  // never less, at most 12.5 % more
    CHECK(CachingAllocator::size_class(bytes) >= bytes);
    CHECK(double(CachingAllocator::size_class(bytes)) <= std::max(64.0, 1.125 * double(bytes) + 64));
  }

  CachingAllocator pool;
  Allocator* previous = set_allocator(&pool);
  const float* first = nullptr;
  {
    Tensor<float> a = Tensor<float>::ones({1000});
    first = a.data();
  }
  CHECK(pool.stats().cached_bytes == 4096);
  const Tensor<float> b = Tensor<float>::zeros({1010});  // 4040 bytes: the same class, the same block
  CHECK(b.data() == first);
  CHECK(b[1009] == 0.f);
  Tensor<float> c = Tensor<float>::ones({2000});  // another class: fresh memory
  CHECK(c.data() != first);
  CHECK(pool.stats().hits == 1);
  CHECK(pool.stats().misses == 2);
  CHECK(pool.stats().cached_bytes == 0);
  set_allocator(previous);  // b and c still go back to `pool`, which outlives them
  c = Tensor<float>();
  CHECK(pool.stats().cached_bytes == 8192);
  pool.release_cached();
  CHECK(pool.stats().cached_bytes == 0);

  // On by default; off under AddressSanitizer or with TESSERA_CACHING_ALLOCATOR=0
  const char* setting = std::getenv("TESSERA_CACHING_ALLOCATOR");
  const bool caching = setting ? std::string(setting) != "0" : TESSERA_CACHING_ALLOCATOR_DEFAULT;
  CHECK((dynamic_cast<CachingAllocator*>(&allocator()) != nullptr) == caching);
  release_cached_memory();
}

TEST_CASE("results do not depend on scheduling; thread count changes only rounding", "[core][parallel]") {
  // tessera's own kernels give each output element to one thread with a fixed order, so
  // repeated runs agree bit for bit. Eigen's matrix products pick their blocking by thread
  // count, so 1 and 2 threads may differ in the last bits (as in PyTorch), never more.
  const int saved = num_threads();
  auto run = [](int threads) {
    set_num_threads(threads);
    manual_seed(3);
    Rng rng(9);
    nn::Sequential<float> net;
    net.add<nn::Conv2D>(3, 16, 3, 2, 1);
    net.add<nn::BatchNorm>(16);
    net.add<nn::LeakyReLU>(0.2);
    net.add<nn::Conv2DTranspose>(16, 4, 4, 2, 1);
    net.add<nn::MaxPool2D>(2);
    Var<float> x(Tensor<float>::randn({8, 3, 32, 32}, rng), true);
    Var<float> y = net(x);
    sum(y * y).backward();
    std::vector<float> out = y.value().to_vector();
    for (auto& p : net.parameters()) out.insert(out.end(), p.grad().begin(), p.grad().end());
    out.insert(out.end(), x.grad().begin(), x.grad().end());
    return out;
  };
  const auto two = run(2);
  CHECK(two == run(2));
  const auto one = run(1);
  CHECK(one == run(1));
  set_num_threads(saved);
  REQUIRE(one.size() == two.size());
  double worst = 0;
  for (std::size_t i = 0; i < one.size(); ++i)
    worst = std::max(worst, std::abs(double(one[i]) - two[i]) / std::max(1.0, std::abs(double(one[i]))));
  CHECK(worst < 1e-4);
}

// ---- the memory budget ---------------------------------------------------------------------------

namespace {
/// The budget set for a scope, the previous one back after.
struct BudgetScope {
  std::size_t saved = memory_budget().limit();
  std::string saved_source = memory_budget().source();
  explicit BudgetScope(std::size_t bytes) { memory_budget().set_limit(bytes, "set by the test"); }
  ~BudgetScope() { memory_budget().set_limit(saved, saved_source); }
};
}  // namespace

TEST_CASE("memory budget: a tensor past it is an Error naming the request, what is in use and the budget", "[core][memory]") {
  const std::size_t mb = std::size_t(1) << 20;
  BudgetScope budget(64 * mb);
  const std::size_t in_use = memory_budget().in_use();
  const std::string message = [&] {
    try {
      Tensor<float> big = Tensor<float>::empty({25, 1024, 1024});  // 100 MB
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  }();
  CHECK_THAT(message, Catch::Contains("out of memory budget: a tensor of shape (25, 1024, 1024) (float) needs 100 MB"));
  CHECK_THAT(message, Catch::Contains("budget of 64.0 MB (set by the test)"));
  CHECK_THAT(message, Catch::Contains("TESSERA_MEMORY_LIMIT"));
  CHECK(memory_budget().in_use() == in_use);  // the refused request is not counted
  {
    const Tensor<float> held = Tensor<float>::empty({10, 1024, 1024});  // 40 MB: counted while alive
    CHECK(memory_budget().in_use() == in_use + 40 * mb);
  }
  CHECK(memory_budget().in_use() == in_use);
  // 40 MB freed into the cache, then 40 MB of another size class: live + cached would pass the
  // budget, so the cache is given back and the request served
  { const Tensor<float> a = Tensor<float>::empty({10, 1024, 1024}); }
  const Tensor<float> b = Tensor<float>::empty({9, 1024, 1024});
  CHECK(cached_memory() <= 64 * mb - 36 * mb);
}

TEST_CASE("memory budget: sizes as TESSERA_MEMORY_LIMIT takes them", "[core][memory]") {
  using detail::parse_memory_size;
  CHECK(parse_memory_size("3G", "x") == std::size_t(3) << 30);
  CHECK(parse_memory_size("512M", "x") == std::size_t(512) << 20);
  CHECK(parse_memory_size("1.5g", "x") == std::size_t(3) << 29);
  CHECK(parse_memory_size("64KB", "x") == std::size_t(64) << 10);
  CHECK(parse_memory_size("1048576", "x") == std::size_t(1) << 20);
  CHECK(parse_memory_size("none", "x") == 0);
  CHECK(parse_memory_size("0", "x") == 0);
  for (const char* bad : {"", "G", "3X", "-1G", "1e30G", "two"})
    CHECK_THROWS_WITH(parse_memory_size(bad, "TESSERA_MEMORY_LIMIT"),
                      Catch::Contains("TESSERA_MEMORY_LIMIT: expected a size such as 3G, 512M or 1048576") && Catch::Contains(bad));
  CHECK(detail::memory_text(1536.0 * (1 << 20)) == "1.50 GB");
  CHECK(detail::memory_text(100.0 * (1 << 20)) == "100 MB");
}

TEST_CASE("shapes whose element count overflows are an Error before any allocation", "[core][memory]") {
  const std::size_t big = std::size_t(1) << 40;
  CHECK_THROWS_WITH((Shape{big, big}.numel()), Catch::Contains("Shape (1099511627776, 1099511627776): the element count overflows"));
  CHECK_THROWS_WITH(Tensor<float>::empty({big, big}), Catch::Contains("overflows"));
  CHECK_THROWS_WITH(Tensor<double>::empty({std::size_t(1) << 61, 4}), Catch::Contains("more than memory can address"));
}
