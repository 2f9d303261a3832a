#pragma once
/// \file parallel.h
/// The one parallel-loop wrapper. Every kernel that runs in parallel goes through `parallel_for`.
///
/// Determinism rule: `[begin, end)` is cut into chunks of exactly `grain` indices (the last may be shorter), whatever
/// the thread count, and each chunk is handed whole to one task. A kernel whose tasks write disjoint slices therefore
/// produces the same bits with 1, 2 or 64 threads.

#include <cstddef>
#include <functional>

#include <utility>

namespace xg {

/// Runs `body(lo, hi)` over the chunks `[begin + k*grain, min(begin + (k+1)*grain, end))`, possibly in parallel.
/// `grain` must be fixed by the caller independently of the thread count. Exceptions thrown by `body` propagate.
void parallel_for(std::size_t begin, std::size_t end, std::size_t grain,
                  const std::function<void(std::size_t, std::size_t)>& body);

/// Limits the threads kernels may use (`0` = all hardware threads). Results do not depend on it.
void set_num_threads(std::size_t n);
/// The current thread limit.
std::size_t num_threads();

/// The parallel backend compiled in: "tbb" or "std_thread".
const char* parallel_backend();

/// Rank `rank`'s contiguous share [begin, end) of `n` items split over `size` ranks: shares differ by at most one,
/// are disjoint, cover [0, n) in rank order, and are empty when n < size for the highest ranks. (The data loader's
/// distributed sampler and dist's sharded evaluation both split this way.) Throws std::invalid_argument when rank is
/// not in [0, size).
std::pair<std::size_t, std::size_t> shard(std::size_t n, int rank, int size);

}  // namespace xg
