#pragma once
/// \file trainer.h
/// Training and evaluation of the MNIST CNN: one seeded generator for initialisation and shuffling, dropout masks
/// drawn from a generator derived from (seed, epoch, rank); the optimizer; non-finite checks; checkpoints holding
/// everything needed to resume bit for bit; and synchronous data-parallel training over a dist::Communicator.

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <string>

#include "dist/data_parallel.h"
#include "models/mnist_cnn.h"
#include "models/mnist_data.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"

namespace xg::mnist {

/// Everything that determines a run (besides the data).
struct RunConfig {
  std::string arch = "seed";
  MnistCnnConfig model = MnistCnnConfig::preset("seed");
  std::string optimizer = "sgd";  ///< "sgd" or "adam"
  double lr = 0.1;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
  std::size_t batch_size = 10;
  std::size_t test_batch_size = 1000;
  std::uint64_t seed = 0;
  bool allow_nonfinite = false;  ///< off: a non-finite loss or gradient stops training with NumericError
};

struct EpochStats {
  double loss = 0;  ///< mean training loss over the epoch's samples
  std::size_t images = 0, steps = 0;
  double seconds = 0, images_per_second = 0;
};

struct EvalStats {
  double loss = 0;      ///< mean cross-entropy
  double accuracy = 0;  ///< fraction correct, 0–1
  std::size_t correct = 0, total = 0;
};

/// Training stopped by a signal between two steps (see Trainer::set_stop_flag): the steps before it are complete.
struct Interrupted : std::runtime_error {
  Interrupted(int sig, std::size_t e, std::size_t s)
      : std::runtime_error("interrupted at epoch " + std::to_string(e) + ", step " + std::to_string(s)),
        signal(sig), epoch(e), step(s) {}
  int signal;         ///< the signal number that asked to stop
  std::size_t epoch;  ///< the epoch that was interrupted (1-based)
  std::size_t step;   ///< optimizer steps completed in all
};

/// Called after every training step: (images done, images in the epoch, running mean loss).
using ProgressFn = std::function<void(std::size_t, std::size_t, double)>;

/// With a communicator of K > 1 ranks (docs/distributed.md), every rank builds the model from the same seed and then
/// takes rank 0's parameters; each global mini-batch of `batch_size` images is split into K disjoint contiguous
/// shards, gradients are averaged with dist::GradientReducer before the (identical) optimizer step, and evaluation
/// is sharded and summed. Every rank must call every method in the same order.
class Trainer {
 public:
  explicit Trainer(const RunConfig& config, dist::Communicator& comm = dist::local_communicator());
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  /// One pass over `data` in a fresh seeded shuffle, in mini-batches (the last one may be smaller). With K ranks,
  /// `data` is the whole training set on every rank and the statistics are global.
  EpochStats train_epoch(const Dataset& data, const ProgressFn& progress = {});
  /// Loss and accuracy on `data`, in eval mode with no graph recorded (with K ranks: each evaluates a 1/K share).
  EvalStats evaluate(const Dataset& data);
  /// Predicted classes for `data` (argmax of the logits).
  std::vector<std::size_t> predict(const Dataset& data);

  /// The model, optimizer state, epoch, step and generator state.
  nn::Checkpoint checkpoint() const;
  /// Restores a checkpoint of the same architecture; all or nothing (throws CheckpointError, changes nothing).
  /// The model, optimizer buffers and counters, epoch, step and generator come from the checkpoint; the
  /// hyper-parameters (learning rate included) are this trainer's RunConfig. Crafted training state (a negative
  /// epoch, an all-zero generator, a negative Adam step…) is refused.
  void restore(const nn::Checkpoint& ck);
  /// After every step, train_epoch throws Interrupted if `*flag` is non-zero (a signal handler sets it; one process
  /// only: with K ranks the ranks would stop at different steps). nullptr turns the check off.
  void set_stop_flag(const volatile std::sig_atomic_t* flag) { stop_ = flag; }

  MnistCnn<float>& model() { return *model_; }
  nn::Optimizer<float>& optimizer() { return *optimizer_; }
  const RunConfig& config() const { return config_; }
  std::size_t epoch() const { return epoch_; }  ///< completed epochs
  std::size_t step() const { return step_; }    ///< completed optimizer steps
  dist::Communicator& communicator() { return *comm_; }
  /// Seconds spent averaging gradients across ranks so far (0 on one process).
  double communication_seconds() const { return reducer_->seconds(); }

 private:
  RunConfig config_;
  dist::Communicator* comm_;
  std::unique_ptr<Rng> rng_;          ///< initialisation and shuffling: the same draws on every rank
  std::unique_ptr<Rng> dropout_rng_;  ///< re-seeded from (seed, epoch, rank) at the start of every epoch
  std::unique_ptr<MnistCnn<float>> model_;
  std::unique_ptr<nn::Optimizer<float>> optimizer_;
  std::unique_ptr<dist::GradientReducer<float>> reducer_;
  std::size_t epoch_ = 0, step_ = 0;
  const volatile std::sig_atomic_t* stop_ = nullptr;
};

}  // namespace xg::mnist
