#pragma once
// Test helpers: seeded random tensors, comparisons, and the gradcheck assertion.

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/gradcheck.h"
#include "core/random.h"
#include "core/variable.h"
#include "dist/communicator.h"
#include "ops/ops.h"

namespace xgt {

/// What a shell command printed (stdout and stderr) and its exit code (-1 when killed by a signal).
struct CommandResult {
  int code;
  std::string out;
};
inline CommandResult run_command(const std::string& command) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(p);
  std::string out;
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

/// The test program's process group (size 1 unless launched by mpirun; tests/test_main.cpp).
xg::dist::Communicator& world();

using xg::Shape;
using xg::Tensor;
using xg::Variable;

/// Uniform values in [lo, hi) from a seeded generator.
template <class T = double>
Tensor<T> random_tensor(const Shape& s, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
  xg::Rng rng(seed);
  Tensor<T> t = Tensor<T>::from_shape(s);
  for (auto& v : t) v = static_cast<T>(rng.uniform(lo, hi));
  return t;
}

/// A shuffled linspace: distinct values at least `gap` apart (keeps max-pool gradchecks away from ties).
inline Tensor<double> distinct_tensor(const Shape& s, std::uint64_t seed, double gap = 1e-2) {
  Tensor<double> t = Tensor<double>::from_shape(s);
  xg::Rng rng(seed);
  std::vector<double> vals(t.size());
  for (std::size_t i = 0; i < vals.size(); ++i) vals[i] = (static_cast<double>(i) - vals.size() / 2.0) * gap;
  for (std::size_t i = vals.size(); i > 1; --i) std::swap(vals[i - 1], vals[rng.below(i)]);
  std::copy(vals.begin(), vals.end(), t.begin());
  return t;
}

template <class T, class U>
double max_abs_diff(const Tensor<T>& a, const Tensor<U>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    m = std::max(m, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
  return m;
}

template <class T>
bool bit_equal(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

inline Shape shape(const Tensor<double>& t) { return Shape(t.shape().begin(), t.shape().end()); }

}  // namespace xgt

namespace xgt {
/// Runs xg::gradcheck and reports its message on failure (CAPTURE the configuration before calling).
inline void check_gradcheck(const xg::GradcheckFn& f, const std::vector<Tensor<double>>& inputs,
                            const xg::GradcheckOptions& o = {}) {
  const auto r = xg::gradcheck(f, inputs, o);
  CHECK_MESSAGE(r.ok, r.message);
}
}  // namespace xgt

#define CHECK_GRADCHECK(...) xgt::check_gradcheck(__VA_ARGS__)
