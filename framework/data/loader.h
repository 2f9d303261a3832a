#pragma once
/// \file loader.h
/// `DataLoader`: mini-batches of a Dataset in a seeded order, sharded over ranks, with transforms.
///
///     data::DataLoader loader(train_set, {.batch_size = 64, .shuffle = true});
///     loader.add_transform(std::make_shared<data::RandomShift>(2, seed));
///     for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
///       loader.start_epoch(epoch);
///       data::Batch b;
///       while (loader.next(b)) { ... b.inputs [B,1,28,28], b.targets [B] ... }
///     }
///
/// Order: with `shuffle`, each start_epoch draws a Fisher–Yates permutation from the loader's generator — its own,
/// seeded from `seed`, or one passed in (so that a model initialised from a generator and the shuffling can share
/// it, as `mnist` does). The generator's state is what a checkpoint stores to resume the same orders.
/// Distributed sampling (PyTorch's DistributedSampler, but per batch): with `world` > 1, every rank draws the same
/// order and takes its contiguous shard (xg::shard) of each global mini-batch of `batch_size`; `Batch::global_size` is
/// the whole batch, so gradients averaged over ranks equal one process's (docs/distributed.md).
/// Transforms run on each batch after it is read, in the order added, with the epoch number: a random transform
/// draws from (its seed, epoch, example index), so a batch is the same whichever rank or thread count reads it.
///
/// Prefetching is deliberately absent: assembling a batch of 64 MNIST images takes 6.5 µs (53 µs with a random shift)
/// against 12.6 ms for one training step of the deep network on one thread (`xgrad_bench loader`,
/// docs/performance.md): a background thread could hide at most 0.4% of an epoch, and would cost a thread the kernels use.

#include <memory>
#include <vector>

#include "core/random.h"
#include "data/dataset.h"
#include "data/transforms.h"

namespace xg::data {

struct LoaderOptions {
  std::size_t batch_size = 1;
  bool shuffle = false;       ///< a fresh seeded permutation every epoch (false: 0, 1, 2, …)
  bool drop_last = false;     ///< drop a last global batch smaller than batch_size
  std::uint64_t seed = 0;     ///< the loader's own generator (unused when a generator is passed in)
  int rank = 0, world = 1;    ///< this process's shard of every global batch (see the file comment)
};

class DataLoader {
 public:
  /// Throws std::invalid_argument for batch_size 0 or a rank outside [0, world). `data` (and `generator`, when given)
  /// must outlive the loader.
  DataLoader(const Dataset& data, LoaderOptions options, Rng* generator = nullptr);
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Appends a transform applied to every batch.
  void add_transform(std::shared_ptr<const Transform> t) { transforms_.push_back(std::move(t)); }
  /// Begins epoch `epoch` (0-based): draws the order (shuffle) and rewinds.
  void start_epoch(std::size_t epoch);
  /// The next global batch's shard for this rank in `out` (it may be empty on a rank when the batch is smaller than
  /// the world). Returns false at the end of the epoch.
  bool next(Batch& out);
  /// Global mini-batches per epoch.
  std::size_t batches() const;
  /// Examples per epoch over all ranks (after drop_last).
  std::size_t examples() const;
  const Dataset& dataset() const { return *data_; }
  const LoaderOptions& options() const { return o_; }
  void set_batch_size(std::size_t n);
  /// The generator the order is drawn from (checkpoints store its state).
  Rng& generator() { return *gen_; }

 private:
  const Dataset* data_;
  LoaderOptions o_;
  std::unique_ptr<Rng> own_;
  Rng* gen_;
  std::vector<std::shared_ptr<const Transform>> transforms_;
  std::vector<std::size_t> order_;
  std::size_t epoch_ = 0, cursor_ = 0;
};

}  // namespace xg::data
