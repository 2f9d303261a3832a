#pragma once
/// \file trainer.h
/// `train::Trainer`: trains any classifier — a `nn::Layer<float>` mapping a batch of inputs to logits [B, classes] —
/// with any loss and optimizer, from a `data::DataLoader`, on one process or data-parallel over MPI ranks.
///
///     data::DataLoader loader(train_set, {.batch_size = 64, .shuffle = true, .seed = seed,
///                                         .rank = world.rank(), .world = world.size()});
///     nn::Sgd<float> opt(model.parameters(), {.lr = 0.05, .momentum = 0.9});
///     train::Trainer trainer(model, opt, loader, {.seed = seed}, world);
///     train::FitResult r = trainer.fit({.epochs = 10, .test = &test_set, .checkpoint_path = "run.xgck"});
///
/// What it does, every step: this rank's shard of the global mini-batch forward, the loss (mean over the shard),
/// backward; gradients averaged over ranks (dist::GradientReducer, weighted by shard size, so K ranks compute what one
/// process would); a non-finite loss or gradient stops training with NumericError (unless allow_nonfinite); optional
/// clipping by global norm; the scheduler's rate for this step; the optimizer step. Every epoch (`fit`): evaluation
/// on the test (and validation) sets, sharded over ranks; a line per epoch, a progress bar on a terminal, one JSON
/// object per epoch in the metrics file, a checkpoint — all on rank 0 — and, with K ranks, a check that every rank
/// holds the same parameters.
///
/// Randomness: the model's stochastic layers (dropout) draw from the trainer's generator, re-seeded every epoch from
/// (seed, epoch, rank) — `Module::set_generator` is called at construction. The loader's generator orders the data.
/// A checkpoint holds the model (parameters and buffers), the optimizer (keyed by parameter name), the scheduler's
/// step, the epoch and step counters and the loader's generator: `restore` continues the run bit for bit.
/// Results do not depend on the thread count; with K ranks they equal one process's up to the order of the
/// gradient sums (docs/distributed.md).

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/files.h"
#include "data/loader.h"
#include "dist/data_parallel.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "nn/scheduler.h"

namespace xg::train {

struct EpochStats {
  double loss = 0;  ///< mean training loss over the epoch's examples
  std::size_t images = 0, steps = 0;
  double seconds = 0, images_per_second = 0;
};

struct EvalStats {
  double loss = 0;      ///< mean loss (cross-entropy unless the trainer was given another)
  double accuracy = 0;  ///< fraction correct (argmax of the logits), 0–1
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

/// Called after every training step: (examples done, examples in the epoch, running mean loss).
using ProgressFn = std::function<void(std::size_t, std::size_t, double)>;
/// A loss: (logits [B,C], labels [B]) → scalar (mean over the batch).
using LossFn = std::function<Variable<float>(const Variable<float>&, const Labels&)>;

struct TrainerOptions {
  std::uint64_t seed = 0;             ///< seeds the per-epoch generator of stochastic layers
  std::size_t eval_batch_size = 1000;
  LossFn loss = {};                   ///< empty: ops::cross_entropy (log-softmax + negative log-likelihood)
  std::string loss_name = "cross_entropy";  ///< named in non-finite errors
  double clip_grad_norm = 0;          ///< > 0: nn::clip_grad_norm_ to this global norm before each step
  bool allow_nonfinite = false;       ///< off: a non-finite loss or gradient stops training with NumericError
};

/// One epoch's results, as `fit` reports them to callbacks and the metrics file.
struct EpochReport {
  std::size_t epoch = 0;  ///< 1-based
  std::size_t epochs = 0;
  EpochStats train;
  EvalStats test, validation;
  bool has_test = false, has_validation = false;
  double lr = 0;
};

struct FitOptions {
  std::size_t epochs = 1;                     ///< train until this many epochs are complete (a resumed run continues)
  const data::Dataset* test = nullptr;        ///< evaluated after every epoch
  const data::Dataset* validation = nullptr;  ///< evaluated after every epoch too
  std::string test_label = "held-out";        ///< how the epoch line names the test set
  std::string checkpoint_path;                ///< written atomically after every epoch (rank 0); empty: none
  files::AppendFile* metrics = nullptr;       ///< one JSON object per epoch (rank 0); see docs/mnist.md for the keys
  std::function<void(const std::string&)> say = {};  ///< receives the epoch lines (rank 0 only); empty: silent
  bool progress_bar = false;                  ///< redraw a progress bar on stderr (rank 0, when stderr is a terminal)
  std::function<void(const EpochReport&)> on_epoch_end = {};  ///< called on every rank after each epoch
};

struct FitResult {
  double best_accuracy = -1;  ///< best test accuracy over the epochs run (−1: no epoch ran)
  std::size_t best_epoch = 0;
  double final_accuracy = 0;
  std::size_t epochs_run = 0;
};

/// Where a resumed run's metrics file (FitOptions::metrics, one JSON object per line) should end: after the last
/// complete line of an epoch ≤ `epoch` (the checkpoint's), before any later, unparsable or torn line — lines a stopped
/// run wrote for epochs the resumed run trains again. Cut the file there (AppendFile::truncate) before resuming.
std::uint64_t metrics_resume_offset(const std::string& path, std::size_t epoch);

class Trainer {
 public:
  /// With K > 1 ranks, every rank takes rank 0's parameters now (so models may be built from any seed). The loader
  /// must be sharded for this communicator (its rank and world); std::invalid_argument otherwise. Model, optimizer,
  /// loader and communicator must outlive the trainer.
  Trainer(nn::Layer<float>& model, nn::Optimizer<float>& optimizer, data::DataLoader& train, TrainerOptions options = {},
          dist::Communicator& comm = dist::local_communicator());
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;
  ~Trainer();

  /// A schedule that sets the rate before every step (its steps per epoch become the loader's); nullptr: none.
  void set_scheduler(nn::LrScheduler<float>* scheduler);
  /// One pass over the loader (a fresh order). With K ranks the statistics are global.
  EpochStats train_epoch(const ProgressFn& progress = {});
  /// Loss and accuracy on `data`, in eval mode with no graph recorded (with K ranks: each evaluates a 1/K share).
  EvalStats evaluate(const data::Dataset& data);
  /// Predicted classes for `data` (argmax of the logits), on this process.
  std::vector<std::size_t> predict(const data::Dataset& data);
  /// Trains until `o.epochs` epochs are complete, evaluating, reporting and checkpointing after each (file comment).
  /// Throws Interrupted when the stop flag is raised, NumericError, and JobError for an agreed failure of a rank.
  FitResult fit(const FitOptions& o);

  /// Everything needed to resume: model, optimizer, scheduler, counters, generators; plus `run_settings` (a JSON
  /// object text set by set_run_settings, stored under meta "run") for programs that keep their flags.
  nn::Checkpoint checkpoint() const;
  /// Restores a checkpoint of the same architecture and optimizer; all or nothing (throws CheckpointError naming the
  /// difference, changes nothing). Crafted training state (a negative epoch, an all-zero generator…) is refused.
  void restore(const nn::Checkpoint& ck);
  /// A JSON object text stored in checkpoints under "run" (the mnist CLI's settings). Empty: none.
  void set_run_settings(std::string json) { run_settings_ = std::move(json); }
  /// After every step, train_epoch throws Interrupted if `*flag` is non-zero (a signal handler sets it; one process
  /// only: with K ranks the ranks would stop at different steps). nullptr turns the check off.
  void set_stop_flag(const volatile std::sig_atomic_t* flag) { stop_ = flag; }

  nn::Layer<float>& model() { return *model_; }
  nn::Optimizer<float>& optimizer() { return *optimizer_; }
  data::DataLoader& loader() { return *loader_; }
  const TrainerOptions& options() const { return o_; }
  std::size_t epoch() const { return epoch_; }  ///< completed epochs
  std::size_t step() const { return step_; }    ///< completed optimizer steps
  dist::Communicator& communicator() { return *comm_; }
  /// Seconds spent averaging gradients across ranks so far (0 on one process).
  double communication_seconds() const;
  /// "PATH (epoch E)" of the last checkpoint fit wrote; empty when none.
  const std::string& last_checkpoint() const { return last_checkpoint_; }

 private:
  Variable<float> loss_of(const Variable<float>& logits, const Labels& targets) const;
  nn::Layer<float>* model_;
  nn::Optimizer<float>* optimizer_;
  data::DataLoader* loader_;
  TrainerOptions o_;
  dist::Communicator* comm_;
  nn::LrScheduler<float>* scheduler_ = nullptr;
  std::unique_ptr<Rng> noise_rng_;  ///< re-seeded from (seed, epoch, rank) at the start of every epoch
  std::unique_ptr<dist::GradientReducer<float>> reducer_;
  std::size_t epoch_ = 0, step_ = 0;
  std::string run_settings_, last_checkpoint_;
  const volatile std::sig_atomic_t* stop_ = nullptr;
};

/// A one-line progress bar on stderr, redrawn in place; only when enabled (the caller checks for a terminal).
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  void update(std::size_t epoch, std::size_t epochs, std::size_t done, std::size_t total, double loss, double seconds);
  void clear();

 private:
  bool enabled_;
};

}  // namespace xg::train
