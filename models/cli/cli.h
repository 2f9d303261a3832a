#pragma once
/// \file cli.h
/// The `mnist` executable's parts (internal to models/cli/): the configuration its flags bind to, the flag table,
/// the subcommands (one file each), and the process-level helpers (one error line, exit codes, signals).
///
///   main.cpp               parses, agrees across ranks, dispatches, reports
///   flags.{h,cpp}          FlagTable (each flag declared once, with its validator and its --resume role), validators
///   options.cpp            the training flags, bound to Options (whose `run` is the RunConfig the Trainer's
///                          options are taken from), and the checks across flags
///   train_command.cpp      train / evaluate (the main job)
///   compare_command.cpp    `mnist compare`
///   visualize_command.cpp  `mnist visualize`
///   graph_command.cpp      `mnist graph`
///   plot_command.cpp       `mnist plot`
///   prepare_npm_command.cpp `mnist prepare-npm`
///   data.cpp               --dataset / --data-dir / --limit → the data sets
///   resume.cpp             --resume and --load: settings, data check, weights
///   process.cpp            report(), exit on SIGTERM under mpirun, SIGINT/SIGTERM/SIGHUP stops, cores

#include <csignal>
#include <functional>
#include <set>
#include <string>

#include <CLI/CLI.hpp>

#include "data/mnist.h"
#include "dist/communicator.h"
#include "models/run.h"
#include "nn/checkpoint.h"

namespace xg::mnist::cli {

class FlagTable;

/// What the flags of a training run set. `run` is bound flag by flag (--lr is run.lr, --seed run.trainer.seed, …)
/// and is what the Run — and through it the Trainer — is built from; the rest is what the executable itself does.
struct Options {
  RunConfig run;
  std::string pool, activation, init;  ///< the model-shaping flags (empty: the model's default)
  double dropout = -1.0;               ///< < 0: the model's default
  std::size_t threads = 0;
  std::string save, resume, load, metrics;
  bool eval_only = false, quiet = false, detect_anomaly = false, profile = false, summary = false;
  std::set<std::string> given;  ///< the flags given on the command line ("--lr", …)
};

/// Declares the training flags on `flags`, bound to `o`.
void declare_training_flags(FlagTable& flags, Options& o);
/// The run's configuration with its model factory, after the checks across flags (UsageError naming them).
RunConfig run_config(const Options& o);

/// A subcommand: its CLI11 app, its --out (checked non-empty before it runs), whether it may run under mpirun, and
/// what it does.
struct Command {
  CLI::App* app = nullptr;
  const std::string* out = nullptr;
  bool distributed = false;
  std::function<int(dist::Communicator&)> run;
};
Command prepare_npm_command(CLI::App& app);
Command visualize_command(CLI::App& app);
Command graph_command(CLI::App& app);
Command plot_command(CLI::App& app);
/// `compare` passes the training flags given (`main_app`'s) to every run; `o` holds their parsed values.
Command compare_command(CLI::App& app, const CLI::App& main_app, const Options& o);
/// Train (or with --eval-only, evaluate) as the flags say: the main job.
int train_command(Options& o, const FlagTable& flags, dist::Communicator& world);

// data.cpp
struct Data {
  data::MnistDataset train, test, validation;
  std::string test_name;
};
/// The data sets --dataset, --data-dir, --limit, --test-limit and --validation name.
Data load_data(const RunConfig& c);

// resume.cpp
/// --resume: the checkpoint's run settings become the flags' values, unless given (docs/mnist.md, "Resuming").
void adopt_checkpoint_settings(Options& o, const nn::Checkpoint& ck, const FlagTable& flags);
/// --resume: the training data must be the checkpoint's run's (UsageError otherwise).
void check_resumed_data(const nn::Checkpoint& ck, const std::string& train_data, const std::set<std::string>& given);
/// Epochs a checkpoint's run had completed, 0 when it does not say.
std::size_t checkpoint_epoch(const nn::Checkpoint& ck);
/// Copies a checkpoint's weights into `model`, built from --arch `arch`; refused naming every difference.
void load_weights(ImageClassifier<float>& model, const nn::Checkpoint& ck, const std::string& path, const std::string& arch);
/// A checkpoint of the releases before the architecture record (a display string) must carry this model's string
/// of then (CheckpointError naming both); a record or no identity passes (nn::check_matches checks records).
void check_previous_release_identity(const ImageClassifier<float>& model, const nn::Checkpoint& ck, const std::string& path,
                                     const std::string& arch);
/// "name: N of M values are NaN or Inf" for the first parameter that is not finite; empty when all are.
std::string first_nonfinite(nn::Module<float>& model);

// process.cpp
/// Prints the job's one error line and returns `code`.
int report(int code, const std::string& message);
/// Rank 0 under mpirun: a SIGTERM from the launcher prints why the job ended (once) and exits 143.
void report_launcher_stops();
/// Set by SIGINT, SIGTERM or SIGHUP while a StopSignals lives: the trainer stops after the current step.
extern volatile std::sig_atomic_t g_stop_signal;
/// Installs the stop handlers for SIGINT, SIGTERM and SIGHUP while it lives, and the defaults after.
struct StopSignals {
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
};
const char* signal_name(int sig);
/// The cores this process may run on (its CPU affinity mask).
std::size_t cores_available();
/// Prints `line` (and flushes) unless quiet or not rank 0.
void say(bool quiet, const dist::Communicator& world, const std::string& line);

}  // namespace xg::mnist::cli
