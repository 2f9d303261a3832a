#pragma once
/// \file run.h
/// One training run of the mnist CLI, assembled from the generic stack: the model (from the registry, or an
/// MnistCnn configuration), the optimizer, the learning-rate schedule, the DataLoader (seeded shuffle, sharded over
/// ranks, the --augment transforms) and a train::Trainer. The CLI (models/cli/) binds its flags to a RunConfig and
/// calls Trainer::fit; tests use the same class.
///
/// Randomness, as the CLI has always drawn it: one generator seeded with `seed` initialises the model and then
/// shuffles the data every epoch (the loader shares it); dropout draws from the trainer's per-epoch generator.

#include <functional>
#include <memory>
#include <string>

#include "data/loader.h"
#include "models/mnist_cnn.h"
#include "nn/optim.h"
#include "nn/scheduler.h"
#include "train/trainer.h"

namespace xg::mnist {

/// Everything that determines a run (besides the data).
struct RunConfig {
  std::string arch = "seed";
  MnistCnnConfig model = MnistCnnConfig::preset("seed");  ///< the network built when `factory` is empty
  /// Builds the model from the run's generator (the CLI sets it from the registry); empty: MnistCnn(model).
  std::function<std::unique_ptr<ImageClassifier<float>>(Rng&)> factory;
  std::string optimizer = "sgd";  ///< "sgd", "adam" or "adamw"
  double lr = 0.1;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
  std::size_t batch_size = 10;
  /// The Trainer's options, taken as they are: the seed (which also draws the initial parameters, the shuffling and
  /// the augmentation), the evaluation batch size, clipping and the non-finite check.
  train::TrainerOptions trainer;
  std::size_t augment_shift = 0;  ///< > 0: each training image moved by up to this many pixels every epoch
  double augment_rotate = 0;      ///< > 0: and turned by up to this many degrees
  std::string scheduler = "none"; ///< "none", "step", "cosine" or "warmup-cosine"
  std::size_t epochs = 10;        ///< the cosine schedules' length
  std::size_t step_size = 1;      ///< StepLR: epochs per decay
  double gamma = 0.1;             ///< StepLR: the decay factor
  double warmup = 1;              ///< warmup-cosine: epochs of linear warm-up
  /// What the run trains on, stored with its settings so that --resume continues on the same data: the dataset's
  /// name, its directory (empty: the default), the limits (0: none) and the training data's fingerprint.
  std::string dataset = "mnist", data_dir;
  std::size_t limit = 0, test_limit = 0, validation = 0;
  std::string train_data;
};

class Run {
 public:
  /// Builds model, optimizer, schedule, loader and trainer for `train_data` (which must outlive the run). Throws
  /// std::invalid_argument for a bad configuration (unknown optimizer or schedule, a model option it refuses).
  explicit Run(const RunConfig& config, const data::Dataset& train_data,
               dist::Communicator& comm = dist::local_communicator());
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  /// One epoch (train::Trainer::train_epoch).
  train::EpochStats train_epoch(const train::ProgressFn& progress = {}) { return trainer_->train_epoch(progress); }
  train::EvalStats evaluate(const data::Dataset& data) { return trainer_->evaluate(data); }
  std::vector<std::size_t> predict(const data::Dataset& data) { return trainer_->predict(data); }
  /// The trainer's checkpoint with this run's settings under meta "run" (docs/mnist.md, "Resuming").
  nn::Checkpoint checkpoint() const { return trainer_->checkpoint(); }
  /// Restores a checkpoint of this architecture and optimizer; the learning rate is then this run's (`config.lr`).
  void restore(const nn::Checkpoint& ck);

  ImageClassifier<float>& model() { return *model_; }
  nn::Optimizer<float>& optimizer() { return *optimizer_; }
  train::Trainer& trainer() { return *trainer_; }
  data::DataLoader& loader() { return *loader_; }
  const RunConfig& config() const { return config_; }
  std::size_t epoch() const { return trainer_->epoch(); }
  std::size_t step() const { return trainer_->step(); }
  void set_stop_flag(const volatile std::sig_atomic_t* flag) { trainer_->set_stop_flag(flag); }

 private:
  std::string settings_json() const;
  RunConfig config_;
  std::unique_ptr<Rng> rng_;  ///< initialisation, then shuffling (shared with the loader)
  std::unique_ptr<ImageClassifier<float>> model_;
  std::unique_ptr<nn::Optimizer<float>> optimizer_;
  std::unique_ptr<nn::LrScheduler<float>> scheduler_;
  std::unique_ptr<data::DataLoader> loader_;
  std::unique_ptr<train::Trainer> trainer_;
};

}  // namespace xg::mnist
