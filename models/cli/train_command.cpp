// `mnist` (no subcommand): train the chosen network, or evaluate a checkpoint (--eval-only), on one process or
// data-parallel under mpirun (rank 0 prints and writes files; a failure on any rank ends every rank).
#include <unistd.h>

#include <optional>
#include <thread>

#include <fmt/core.h>

#include "core/files.h"
#include "core/linalg.h"
#include "core/parallel.h"
#include "core/profiler.h"
#include "dist/data_parallel.h"
#include "models/cli/cli.h"
#include "models/cli/flags.h"
#include "nn/summary.h"
#include "train/job.h"

namespace xg::mnist::cli {

namespace {
using train::on_every_rank;
using train::on_rank0;

/// The flags a run refuses together, on every rank before anything is loaded.
void check_job_flags(const Options& o) {
  if (o.eval_only && o.load.empty()) throw UsageError("--eval-only needs --load PATH (a checkpoint to evaluate)");
  if (!o.resume.empty() && !o.load.empty()) throw UsageError("--resume and --load are exclusive");
  const std::pair<const char*, const std::string*> paths[] = {
      {"--save", &o.save}, {"--metrics", &o.metrics}, {"--load", &o.load}, {"--resume", &o.resume}, {"--data-dir", &o.run.data_dir}};
  for (const auto& [flag, path] : paths)
    if (o.given.count(flag) && path->empty()) throw UsageError(std::string(flag) + " needs a path (an empty one was given)");
  if (o.eval_only && (!o.save.empty() || !o.metrics.empty()))
    throw UsageError("--eval-only trains nothing, so it writes no --save checkpoint and no --metrics: leave them out");
}

/// Every file this run will write is checked before anything trains (rank 0 writes them): a device, a directory or a
/// FIFO is refused, never replaced; an existing metrics file is appended to only when resuming.
files::AppendFile open_outputs(const Options& o) {
  if (!o.save.empty()) files::check_writable(o.save, "--save");  // a read-only directory: now, not after epoch 1
  if (o.metrics.empty()) return {};
  for (const std::string* other : {&o.save, &o.resume, &o.load})
    if (!other->empty() && files::same_file(o.metrics, *other))
      throw UsageError("--metrics '" + files::escape_bytes(o.metrics) + "' is the checkpoint file '" +
                       files::escape_bytes(*other) + "': metrics would corrupt it (or be replaced by it); choose another file");
  files::AppendFile metrics(o.metrics, "--metrics");
  if (metrics.initial_size() > 0 && o.resume.empty())
    throw UsageError("--metrics '" + files::escape_bytes(o.metrics) + "' is not empty (" +
                     std::to_string(metrics.initial_size()) + " bytes): mnist appends to an existing file only " +
                     "with --resume, to continue that run's metrics (choose a new file, or remove this one)");
  return metrics;
}

/// Ranks on one machine share its cores: by default each takes its share of them, and no more than the cores the
/// launcher bound it to (OpenMPI binds each of up to 2 ranks to one core).
void choose_threads(const Options& o, const dist::Communicator& world) {
  if (o.threads) set_num_threads(o.threads);
  else if (world.local_size() > 1)
    set_num_threads(std::max<std::size_t>(
        1, std::min(cores_available(), std::thread::hardware_concurrency() / static_cast<std::size_t>(world.local_size()))));
}

/// The checkpoint --load or --resume names goes into the run: weights only, or the whole state. Lines a stopped run
/// wrote for epochs after its checkpoint (its save failed after the line) are trained again: they are cut, with a
/// torn last line, so that the metrics file lists every epoch once.
void apply_checkpoint(const Options& o, const nn::Checkpoint& ck, Run& run, files::AppendFile& metrics,
                      dist::Communicator& world) {
  const std::string& path = o.resume.empty() ? o.load : o.resume;
  on_every_rank(world, [&] {
    if (o.resume.empty()) {
      load_weights(run.model(), ck, path, o.run.arch);
    } else {
      check_previous_release_identity(run.model(), ck, path, o.run.arch);
      run.restore(ck);
    }
  });
  const std::size_t epoch = checkpoint_epoch(ck);
  say(o.quiet, world, fmt::format("loaded {} (trained for {} epoch{})", files::escape_bytes(path), epoch, epoch == 1 ? "" : "s"));
  if (o.resume.empty()) return;
  on_rank0(world, [&] {
    if (!metrics.is_open()) return;
    const std::uint64_t keep = train::metrics_resume_offset(o.metrics, epoch);
    if (keep >= metrics.initial_size()) return;
    metrics.truncate(keep);
    say(o.quiet, world, fmt::format("metrics: dropped {} bytes written after epoch {} by the stopped run", metrics.initial_size() - keep, epoch));
  });
}

/// The banner: network, data, optimizer, workers and kernels.
std::string banner(const Options& o, Run& run, const Data& data, dist::Communicator& world) {
  const RunConfig& c = o.run;
  std::string workers = fmt::format("{} threads", num_threads());
  if (world.size() > 1) {
    const std::uint64_t checksum =
        on_every_rank(world, [&] { return dist::check_replicas(world, run.model().parameters(), "at start"); });
    workers = fmt::format("{} MPI ranks × {} thread{}, identical parameters on every rank (checksum {:016x})",
                          world.size(), num_threads(), num_threads() == 1 ? "" : "s", checksum);
  }
  std::string optimizer = fmt::format("{} lr {}", c.optimizer == "sgd" ? "SGD" : c.optimizer == "adam" ? "Adam" : "AdamW",
                                      c.scheduler == "none" ? run.optimizer().lr() : c.lr);
  if (c.momentum > 0) optimizer += fmt::format(" momentum {}{}", c.momentum, c.nesterov ? " (Nesterov)" : "");
  if (c.weight_decay > 0) optimizer += fmt::format(" weight decay {}", c.weight_decay);
  if (c.scheduler != "none") optimizer += fmt::format(" schedule {}", c.scheduler);
  if (c.trainer.clip_grad_norm > 0) optimizer += fmt::format(" clip {}", c.trainer.clip_grad_norm);
  if (c.augment_shift > 0 || c.augment_rotate > 0) optimizer += fmt::format(" augment shift {} rotate {}", c.augment_shift, c.augment_rotate);
  return fmt::format("xgrad mnist: {} network {}, {} parameters; {} training / {} {}{}; {} batch {}; {}; kernels: {}", c.arch,
                     run.model().layout(), run.model().num_parameters(), data.train.size(), data.test.size(), data.test_name,
                     data.validation.size() ? fmt::format(" / {} validation", data.validation.size()) : "", optimizer,
                     c.batch_size, workers, kernel_description());
}

/// Trains to --epochs and prints the result (rank 0); 128 + signal when a signal stopped it.
int fit(const Options& o, Run& run, const Data& data, files::AppendFile& metrics, const nn::Checkpoint& ck,
        dist::Communicator& world) {
  // One process stops cleanly between two steps on SIGINT, SIGTERM or SIGHUP (docs/mnist.md). Under mpirun the
  // launcher owns signals: rank 0 reports the stop and every rank ends.
  std::optional<StopSignals> stop_signals;
  if (world.size() == 1) {
    g_stop_signal = 0;
    stop_signals.emplace();
    run.set_stop_flag(&g_stop_signal);
  }
  train::FitOptions fo;
  fo.epochs = o.run.epochs;
  fo.test = &data.test;
  if (data.validation.size()) fo.validation = &data.validation;
  fo.checkpoint_path = o.save;
  fo.metrics = &metrics;
  fo.say = [&](const std::string& line) { say(o.quiet, world, line); };
  fo.progress_bar = !o.quiet && ::isatty(2);
  train::FitResult r;
  try {
    r = run.trainer().fit(fo);
  } catch (const train::Interrupted& i) {
    const std::string last = !run.trainer().last_checkpoint().empty() ? run.trainer().last_checkpoint()
                             : !o.resume.empty() ? fmt::format("{} (epoch {})", files::escape_bytes(o.resume), checkpoint_epoch(ck))
                                                 : "";
    fmt::print(stderr, "interrupted by {} at epoch {}, step {}; last checkpoint: {}\n", signal_name(i.signal), i.epoch,
               i.step, !last.empty() ? last : o.save.empty() ? "none (pass --save to write one)" : "none yet");
    std::fflush(stderr);
    return 128 + i.signal;
  }
  if (world.rank() != 0) return 0;
  if (r.best_accuracy >= 0)
    fmt::print("{} accuracy on the {} {}: best {:.2f}% (epoch {}), final {:.2f}%\n",
               o.run.dataset == "mnist" && o.run.data_dir.empty() ? "held-out" : "test", data.test.size(), data.test_name,
               100 * r.best_accuracy, r.best_epoch, 100 * r.final_accuracy);
  else
    fmt::print("nothing to train: the checkpoint already completed {} of {} epochs\n", run.epoch(), o.run.epochs);
  if (o.profile) fmt::print("\nper-op profile (training and evaluation{}):\n{}", world.size() > 1 ? ", rank 0" : "", profiler::table());
  if (!o.save.empty()) say(o.quiet, world, "checkpoint: " + files::escape_bytes(o.save));
  if (!o.metrics.empty()) say(o.quiet, world, "metrics: " + files::escape_bytes(o.metrics));
  return 0;
}
}  // namespace

int train_command(Options& o, const FlagTable& flags, dist::Communicator& world) {
  // Setup: every rank validates its flags, loads the data and builds the trainer; a failure on any rank stops all.
  on_every_rank(world, [&] { check_job_flags(o); });
  files::AppendFile metrics;
  on_rank0(world, [&] { metrics = open_outputs(o); });
  choose_threads(o, world);
  AnomalyModeGuard anomaly(o.detect_anomaly);
  profiler::enable(o.profile);
  nn::Checkpoint ck;
  const std::string ck_path = o.resume.empty() ? o.load : o.resume;
  if (!ck_path.empty()) {
    ck = train::load_checkpoint_everywhere(world, ck_path);
    if (!o.resume.empty()) on_every_rank(world, [&] { adopt_checkpoint_settings(o, ck, flags); });
  }
  RunConfig cfg = on_every_rank(world, [&] { return run_config(o); });
  Data data = on_every_rank(world, [&] { return load_data(cfg); });
  // The data itself, not only the flags: identical flags can name different data on different ranks (a relative
  // --data-dir), and a resumed run must continue on the images it started with.
  cfg.train_data = data.train.fingerprint() + (data.validation.size() ? "; validation " + data.validation.fingerprint() : "");
  on_every_rank(world, [&] { train::check_same_data(world, "training " + cfg.train_data + "; test " + data.test.fingerprint()); });
  if (!o.resume.empty()) on_every_rank(world, [&] { check_resumed_data(ck, cfg.train_data, o.given); });
  const std::unique_ptr<Run> run = on_every_rank(world, [&] { return std::make_unique<Run>(cfg, data.train, world); });
  if (!ck_path.empty()) apply_checkpoint(o, ck, *run, metrics, world);
  if (o.eval_only && !o.run.trainer.allow_nonfinite)
    on_every_rank(world, [&] {
      if (const std::string bad = first_nonfinite(run->model()); !bad.empty())
        throw NumericError("the model in " + files::escape_bytes(ck_path) + " is not finite (" + bad +
                           "): its accuracy would mean nothing; pass --allow-nonfinite to evaluate it anyway");
    });
  say(o.quiet, world, banner(o, *run, data, world));
  if (o.summary && !o.quiet && world.rank() == 0) fmt::print("{}", nn::summary(run->model(), {1, 28, 28}));
  if (!o.eval_only) return fit(o, *run, data, metrics, ck, world);
  const train::EvalStats e = run->evaluate(data.test);
  if (world.rank() == 0)
    fmt::print("{}: loss {:.4f}, accuracy {:.2f}% ({}/{})\n", data.test_name, e.loss, 100 * e.accuracy, e.correct, e.total);
  return 0;
}

}  // namespace xg::mnist::cli
