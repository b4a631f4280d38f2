// tests/gradcheck.hpp — compares backward() with central finite differences, in double; and
// the other helpers the test files share.
#pragma once

#include <catch2/catch.hpp>
#include <tessera/tessera.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace tessera::testing {

/// For every element j of every leaf: analytic d(⟨f(), W⟩)/d leaf_j from backward(W) against
/// (⟨f(leaf_j + eps), W⟩ − ⟨f(leaf_j − eps), W⟩) / 2eps. W is a fixed random projection, so
/// non-scalar outputs are checked in every direction at once. f must be deterministic and read
/// the leaves' current values (perturbed in place).
inline void check_gradients(const std::string& what, std::vector<Var<double>> leaves,
                            const std::function<Var<double>()>& f, double eps = 1e-6, double tol = 1e-6) {
  INFO(what);
  for (auto& leaf : leaves) {
    REQUIRE(leaf.requires_grad());
    leaf.zero_grad();
  }
  Var<double> out = f();
  Rng rng(1234);
  const Tensor<double> w = Tensor<double>::randn(out.shape(), rng);
  out.backward(w);

  auto projected = [&] {
    NoGradGuard no_grad;
    const Tensor<double> y = f().value();
    double dot = 0;
    for (std::size_t i = 0; i < y.size(); ++i) dot += y[i] * w[i];
    return dot;
  };
  for (std::size_t l = 0; l < leaves.size(); ++l) {
    Tensor<double>& x = leaves[l].value();
    const Tensor<double> analytic = leaves[l].grad();  // zeros if no gradient arrived
    for (std::size_t j = 0; j < x.size(); ++j) {
      const double saved = x[j];
      x[j] = saved + eps;
      const double up = projected();
      x[j] = saved - eps;
      const double down = projected();
      x[j] = saved;
      const double numeric = (up - down) / (2 * eps);
      const double error = std::abs(analytic[j] - numeric);
      if (error > tol * std::max({1.0, std::abs(numeric), std::abs(analytic[j])})) {
        std::ostringstream msg;
        msg << what << ": leaf " << l << " " << x.shape() << " element " << j << ": analytic " << analytic[j]
            << " vs numeric " << numeric;
        FAIL(msg.str());
      }
    }
  }
  SUCCEED(what << ": gradients match");
}

/// Gradients of a module's output with respect to its input and every parameter.
inline void check_module_gradients(const std::string& what, nn::Module<double>& module, const Tensor<double>& input,
                                   double eps = 1e-6, double tol = 1e-6) {
  Var<double> x(input, true);
  std::vector<Var<double>> leaves{x};
  for (auto& p : module.parameters()) leaves.push_back(p);
  check_gradients(what, leaves, [&] { return module.forward(x); }, eps, tol);
}

/// Normal samples pushed at least `min_abs` away from 0, where relu and abs have a kink
/// that central differences straddle.
inline Tensor<double> away_from_zero(const Shape& shape, Rng& rng, double min_abs = 0.05) {
  Tensor<double> t = Tensor<double>::randn(shape, rng);
  for (auto& v : t)
    if (std::abs(v) < min_abs) v = v < 0 ? v - min_abs : v + min_abs;
  return t;
}

/// The message of the tessera::Error that f throws, or "<no error>".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

/// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tessera-test-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

/// Writes raw bytes to a file (creating its folder), for hand-made and corrupted inputs.
inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

}  // namespace tessera::testing
