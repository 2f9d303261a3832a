#pragma once
/// \file memory.h
/// Opt-in allocator tuning for programs that train.

namespace xg {

/// Raises glibc's mmap and trim thresholds (32 MiB and 256 MiB) so that the tensors a training step allocates and
/// frees every step stay in the process for reuse instead of being page-faulted in again each step (measured: a
/// quarter of the seed network's step time; docs/performance.md). Call it once at the start of a program that trains
/// — the `mnist` executable and the benchmarks do. xgrad never calls it itself: a library must not change its host
/// process's allocator behaviour behind its back. Does nothing and returns false when XGRAD_MALLOC_TUNING=0 is set or
/// the C library is not glibc; returns true when the thresholds were set.
bool tune_malloc_for_training();

}  // namespace xg
