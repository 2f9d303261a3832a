// The only file that includes TBB. A `std_thread` backend (XGRAD_PARALLEL_BACKEND=std_thread) implements the same
// chunking with plain threads; it exists so ThreadSanitizer can check the kernels (Debian's libtbb is not instrumented).
#include "core/parallel.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(XGRAD_PARALLEL_STD_THREAD)
#include <atomic>
#else
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#endif

#include <stdexcept>
#include <string>

namespace xg {

namespace {
#if defined(XGRAD_PARALLEL_STD_THREAD)
std::size_t hardware_threads() { return std::max<std::size_t>(1, std::thread::hardware_concurrency()); }
#endif
std::mutex g_mutex;
std::size_t g_threads = 0;  // 0 = default (all hardware threads)
#if !defined(XGRAD_PARALLEL_STD_THREAD)
std::unique_ptr<tbb::global_control> g_control;
#endif
}  // namespace

void set_num_threads(std::size_t n) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_threads = n;
#if !defined(XGRAD_PARALLEL_STD_THREAD)
  g_control.reset();
  if (n > 0) g_control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, n);
#endif
}

std::size_t num_threads() {
  std::lock_guard<std::mutex> lock(g_mutex);
#if defined(XGRAD_PARALLEL_STD_THREAD)
  return g_threads ? g_threads : hardware_threads();
#else
  return tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
#endif
}

#if defined(XGRAD_PARALLEL_STD_THREAD)
const char* parallel_backend() { return "std_thread"; }

void parallel_for(std::size_t begin, std::size_t end, std::size_t grain,
                  const std::function<void(std::size_t, std::size_t)>& body) {
  if (end <= begin) return;
  grain = std::max<std::size_t>(1, grain);
  const std::size_t chunks = (end - begin + grain - 1) / grain;
  const std::size_t workers = std::min(chunks, num_threads());
  if (workers <= 1) {
    for (std::size_t c = 0; c < chunks; ++c) body(begin + c * grain, std::min(end, begin + (c + 1) * grain));
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (std::size_t c = next++; c < chunks; c = next++) {
      try {
        body(begin + c * grain, std::min(end, begin + (c + 1) * grain));
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < workers; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}
#else
const char* parallel_backend() { return "tbb"; }

void parallel_for(std::size_t begin, std::size_t end, std::size_t grain,
                  const std::function<void(std::size_t, std::size_t)>& body) {
  if (end <= begin) return;
  grain = std::max<std::size_t>(1, grain);
  const std::size_t chunks = (end - begin + grain - 1) / grain;
  if (chunks == 1) {
    body(begin, end);
    return;
  }
  // One task per chunk: simple_partitioner with grainsize 1 over chunk indices never merges or splits chunks.
  tbb::parallel_for(
      tbb::blocked_range<std::size_t>(0, chunks, 1),
      [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t c = r.begin(); c != r.end(); ++c) body(begin + c * grain, std::min(end, begin + (c + 1) * grain));
      },
      tbb::simple_partitioner());
}
#endif

std::pair<std::size_t, std::size_t> shard(std::size_t n, int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size)
    throw std::invalid_argument("shard: rank " + std::to_string(rank) + " is not in a group of " + std::to_string(size));
  const auto r = static_cast<std::size_t>(rank), k = static_cast<std::size_t>(size);
  const std::size_t base = n / k, extra = n % k;  // the first `extra` ranks take one more
  const std::size_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

}  // namespace xg
