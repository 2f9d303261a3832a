#pragma once
/// \file profiler.h
/// Per-op timing, like torch.autograd.profiler: how many times each op ran forward and backward, and for how long.
/// Off by default; when off, an op pays one flag test.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace xg::profiler {

struct Entry {
  std::string name;
  std::size_t forward_calls = 0, backward_calls = 0;
  double forward_seconds = 0, backward_seconds = 0;
};

void enable(bool on = true);
bool enabled();
/// Forgets everything recorded so far.
void reset();
/// The recorded ops, most total time first.
std::vector<Entry> entries();
/// A table of `entries()`: op, calls, forward and backward milliseconds, share of the total.
std::string table();
/// Adds one timed call (used by OpCall, ScopedForward and the engine).
void add(const char* name, bool backward, double seconds);

/// Times a region that is not an op (e.g. dist's gradient all-reduce) from construction to destruction when the
/// profiler is on. Ops need none: their OpCall times the forward and the engine the backward.
class ScopedForward {
 public:
  explicit ScopedForward(const char* name) : name_(enabled() ? name : nullptr) {
    if (name_) start_ = std::chrono::steady_clock::now();
  }
  ~ScopedForward() {
    if (name_) add(name_, false, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  ScopedForward(const ScopedForward&) = delete;
  ScopedForward& operator=(const ScopedForward&) = delete;

 private:
  const char* name_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace xg::profiler
