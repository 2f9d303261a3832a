#pragma once
// Test helpers: seeded random tensors, comparisons, and the gradcheck assertion.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/gradcheck.h"
#include "core/parallel.h"
#include "core/random.h"
#include "core/variable.h"
#include "dist/communicator.h"
#include "ops/ops.h"

namespace xgt {

/// What a shell command printed (stdout and stderr) and its exit code (-1 when killed by a signal).
struct CommandResult {
  int code;
  std::string out;
  long max_rss_kib = 0;  ///< peak resident memory of the program (spawn/finish only)
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

/// A program started with an argument vector (no shell: any bytes reach it as they are); its output (stdout and
/// stderr together) is read by finish().
struct Spawned {
  pid_t pid = -1;
  int out = -1;
};
inline Spawned spawn(const std::vector<std::string>& argv) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  Spawned s;
  const int rc = ::posix_spawnp(&s.pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  REQUIRE_MESSAGE(rc == 0, "cannot start " << argv[0]);
  s.out = fds[0];
  return s;
}
/// Waits for a spawned program: its output and exit code (128 + N when killed by signal N).
inline CommandResult finish(Spawned s) {
  std::string out;
  std::array<char, 4096> buf;
  for (;;) {
    const ssize_t n = ::read(s.out, buf.data(), buf.size());
    if (n > 0) out.append(buf.data(), static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(s.out);
  int status = 0;
  struct rusage ru {};
  while (::wait4(s.pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out, ru.ru_maxrss};
}
/// Runs a program with an argument vector and waits for it.
inline CommandResult run_argv(const std::vector<std::string>& argv) { return finish(spawn(argv)); }

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
  // (memcmp with a null pointer is undefined even for 0 bytes: an empty tensor may have no storage.)
  return a.shape() == b.shape() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

inline Shape shape(const Tensor<double>& t) { return Shape(t.shape().begin(), t.shape().end()); }

/// Runs y = f(x) in float32 at 1, 2 and 3 threads, backpropagating Σy², and checks that y and x's gradient are
/// bit-identical at every thread count (fixed chunking, disjoint writes). Returns the 1-thread output.
template <class F>
Tensor<float> check_thread_identity(F f, const Tensor<float>& x) {
  auto run = [&](std::size_t threads) {
    xg::set_num_threads(threads);
    Variable<float> v(x, true);
    Variable<float> y = f(v);
    xg::ops::sum(xg::ops::mul(y, y)).backward();
    xg::set_num_threads(0);
    return std::make_pair(y.value(), v.grad());
  };
  const auto one = run(1);
  for (std::size_t t : {2, 3}) {
    const auto many = run(t);
    CHECK_MESSAGE(bit_equal(one.first, many.first), "the output differs at " << t << " threads");
    CHECK_MESSAGE(bit_equal(one.second, many.second), "the input gradient differs at " << t << " threads");
  }
  return one.first;
}

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
