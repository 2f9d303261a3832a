#pragma once
/// \file data_parallel.h
/// Synchronous data-parallel training over a Communicator (docs/distributed.md):
///
///     dist::broadcast_parameters(world, model.parameters());        // every rank starts from rank 0's parameters
///     dist::GradientReducer<float> reducer(world, model.parameters());
///     for each global mini-batch of N samples:
///       auto [b, e] = dist::shard(N, world.rank(), world.size());   // this rank's disjoint share
///       forward + backward of the mean loss over samples [b, e)
///       reducer.reduce(double(e - b) / N);                          // grads := Σ_r (n_r / N) · grad_r on every rank
///       optimizer.step();                                           // the same step on every rank
///
/// With the weights n_r / N the reduced gradient is the gradient of the mean loss over the whole global batch, as
/// one process computes it (up to the order of the sums), also when shards differ in size or are empty.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/parallel.h"
#include "core/variable.h"
#include "dist/communicator.h"

namespace xg::dist {

/// Rank `rank`'s contiguous share [begin, end) of `n` items (xg::shard in core/parallel.h).
using xg::shard;

/// Overwrites every parameter's value with rank `root`'s (one MPI_Bcast per parameter; called once, at start).
template <class T>
void broadcast_parameters(Communicator& comm, const std::vector<Variable<T>>& params, int root = 0);

/// A 64-bit FNV-1a hash of the parameters' shapes and value bits, in order.
template <class T>
std::uint64_t parameter_checksum(const std::vector<Variable<T>>& params);

/// Checks that every rank holds bit-identical parameters; throws std::runtime_error naming the first rank that
/// differs from rank 0 and `when` otherwise. Collective: every rank throws, or none. Returns the common checksum.
template <class T>
std::uint64_t check_replicas(Communicator& comm, const std::vector<Variable<T>>& params, const std::string& when);

/// Sums weighted gradients across ranks in flat buckets: one MPI_Allreduce per bucket of at most `bucket_bytes`
/// (default 25 MiB, PyTorch DDP's bucket_cap_mb), not one per tensor. Parameters are packed in order; a parameter
/// without a gradient on a rank (e.g. an empty shard) contributes zeros, and every parameter has a gradient after
/// reduce(). One process with weight 1 is a no-op (the gradients keep their bits).
template <class T>
class GradientReducer {
 public:
  GradientReducer(Communicator& comm, std::vector<Variable<T>> params, std::size_t bucket_bytes = std::size_t(25) << 20);

  /// On every rank: grad := Σ_r weight_r · grad_r. Collective.
  void reduce(double weight);

  std::size_t num_buckets() const { return buckets_.size(); }
  /// Elements in bucket `b`.
  std::size_t bucket_size(std::size_t b) const { return buckets_[b].elements; }
  /// Wall time spent in reduce() so far (packing, MPI_Allreduce, unpacking), in seconds.
  double seconds() const { return seconds_; }

 private:
  struct Bucket {
    std::size_t first = 0, last = 0;  ///< parameters [first, last)
    std::size_t elements = 0;
  };
  Communicator* comm_;
  std::vector<Variable<T>> params_;
  std::vector<Bucket> buckets_;
  std::vector<T> buffer_;
  double seconds_ = 0;
};

/// The outcome of a step every rank took on its own (loading data, reading a checkpoint, parsing flags).
struct Outcome {
  int rank = -1;        ///< the lowest rank that failed; -1 when every rank succeeded
  int code = 0;         ///< its non-zero code
  std::string message;  ///< its message
  bool ok() const { return rank < 0; }
};

/// Collective: every rank passes its own result (code 0 = success) and every rank gets the same Outcome, so all ranks
/// stop together on a failure that only some saw, and rank 0 can report it — instead of the others waiting forever
/// in their next collective.
Outcome agree(Communicator& comm, int code, const std::string& message);

}  // namespace xg::dist
