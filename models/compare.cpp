#include "models/compare.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/errors.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "models/visualize.h"
#include "train/job.h"
#include "train/trainer.h"

extern char** environ;

namespace xg::mnist {

namespace fs = std::filesystem;

// ---- statistics ----

namespace {
double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}
/// Sample standard deviation (n − 1); 0 for fewer than two values.
double sd(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

/// The continued fraction of the regularized incomplete beta function (modified Lentz; Numerical Recipes' betacf).
double beta_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300, kEps = 1e-15;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::abs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 1000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1) < kEps) break;
  }
  return h;
}
/// I_x(a, b), the regularized incomplete beta function.
double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(a, b, x) / a;
  return 1 - front * beta_fraction(b, a, 1 - x) / b;
}
}  // namespace

double welch_p_value(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2 || b.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  const double va = sd(a) * sd(a) / static_cast<double>(a.size()), vb = sd(b) * sd(b) / static_cast<double>(b.size());
  const double diff = mean(a) - mean(b);
  if (va + vb == 0) return diff == 0 ? 1.0 : 0.0;  // no spread at all: equal or certainly different
  const double t = diff / std::sqrt(va + vb);
  const double df = (va + vb) * (va + vb) /
                    (va * va / static_cast<double>(a.size() - 1) + vb * vb / static_cast<double>(b.size() - 1));
  return incomplete_beta(df / 2, 0.5, df / (df + t * t));  // P(|T| > |t|) for Student's t with df degrees of freedom
}

ComparisonSummary summarize_comparison(const std::vector<RunCurve>& runs, const std::vector<std::string>& pools) {
  ComparisonSummary s;
  for (const auto& name : pools) s.pools.push_back(PoolSummary{name, {}, {}, {}, {}, {}, 0, 0, 0, 0, 0, 0});
  std::vector<std::vector<double>> speeds(pools.size());
  for (const auto& r : runs) {
    const auto it = std::find(pools.begin(), pools.end(), r.pool);
    if (it == pools.end()) throw std::invalid_argument("compare: a run of pooling '" + r.pool + "', which was not asked for");
    if (r.validation.empty() || r.validation.size() != r.test.size())
      throw std::invalid_argument("compare: run " + r.pool + " seed " + std::to_string(r.seed) + " has no complete epochs");
    PoolSummary& p = s.pools[static_cast<std::size_t>(it - pools.begin())];
    // The choice: the first epoch with the highest validation accuracy. Only validation numbers are looked at.
    std::size_t best = 0;
    for (std::size_t e = 1; e < r.validation.size(); ++e)
      if (r.validation[e] > r.validation[best]) best = e;
    p.seeds.push_back(r.seed);
    p.validation.push_back(r.validation[best]);
    p.epoch.push_back(best + 1);
    p.test.push_back(r.test[best]);  // reported, never compared
    p.curves.push_back(r.validation);
    speeds[static_cast<std::size_t>(it - pools.begin())].insert(speeds[static_cast<std::size_t>(it - pools.begin())].end(),
                                                               r.images_per_second.begin(), r.images_per_second.end());
  }
  for (std::size_t i = 0; i < s.pools.size(); ++i) {
    PoolSummary& p = s.pools[i];
    p.validation_mean = mean(p.validation);
    p.validation_sd = sd(p.validation);
    p.test_mean = mean(p.test);
    p.test_sd = sd(p.test);
    std::vector<double> ep(p.epoch.begin(), p.epoch.end());
    p.epoch_mean = mean(ep);
    p.images_per_second = mean(speeds[i]);
  }
  // The winner and runner-up by mean validation accuracy (the earlier pooling on ties).
  std::vector<std::size_t> order(s.pools.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return s.pools[a].validation_mean > s.pools[b].validation_mean; });
  if (!order.empty()) {
    s.winner = order[0];
    s.runner_up = order.size() > 1 ? order[1] : order[0];
    s.p_value = s.winner == s.runner_up ? std::numeric_limits<double>::quiet_NaN()
                                        : welch_p_value(s.pools[s.winner].validation, s.pools[s.runner_up].validation);
    s.significant = std::isfinite(s.p_value) && s.p_value < 0.05;
  }
  return s;
}

namespace {
std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", 100 * v);
  return b;
}
std::string num(double v, int digits) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}
std::string p_text(double p) {
  if (!std::isfinite(p)) return "n/a";
  if (p < 0.0001) return "< 0.0001";
  return num(p, 4);
}
}  // namespace

std::string comparison_markdown(const ComparisonSummary& s, const std::string& settings) {
  std::string md = "# Pooling compared on validation data (mnist compare)\n\n`" + settings + "`\n\n";
  md += "Each run keeps the epoch with the best **validation** accuracy; the test accuracy is read at that epoch and is "
        "never used to choose. Mean ± sample standard deviation over the seeds.\n\n";
  md += "| pooling | validation accuracy, % | chosen epoch (per seed) | test accuracy at that epoch, % | training images/s |\n";
  md += "| --- | --- | --- | --- | --- |\n";
  for (const auto& p : s.pools) {
    std::string epochs;
    for (std::size_t i = 0; i < p.epoch.size(); ++i) epochs += (i ? ", " : "") + std::to_string(p.epoch[i]);
    md += "| " + p.pool + " | " + pct(p.validation_mean) + " ± " + pct(p.validation_sd) + " | " + num(p.epoch_mean, 1) +
          " (" + epochs + ") | " + pct(p.test_mean) + " ± " + pct(p.test_sd) + " | " + num(p.images_per_second, 0) + " |\n";
  }
  if (s.pools.empty()) return md;
  const PoolSummary& w = s.pools[s.winner];
  md += "\nWinner on validation: **" + w.pool + "** (" + pct(w.validation_mean) + "%";
  if (s.winner == s.runner_up) return md + "; only one pooling was compared).\n";
  const PoolSummary& r = s.pools[s.runner_up];
  md += " against " + r.pool + "'s " + pct(r.validation_mean) + "%). Welch's t-test on the per-seed validation "
        "accuracies: p = " + p_text(s.p_value) + " — ";
  if (!std::isfinite(s.p_value)) md += "one seed per pooling cannot separate a lead from the seed-to-seed noise (use --seeds 2 or more).\n";
  else if (s.significant) md += "the lead is larger than the seed-to-seed noise (p < 0.05).\n";
  else md += "the lead is within the seed-to-seed noise (p ≥ 0.05): on this evidence the two are not distinguishable.\n";
  md += "Test accuracy of the winner at its chosen epochs: " + pct(w.test_mean) + " ± " + pct(w.test_sd) + "%.\n";
  return md;
}

// ---- running the comparison ----

namespace {

std::string run_name(const std::string& pool, std::uint64_t seed) { return pool + "-seed" + std::to_string(seed); }

/// The environment for a child run: this one without the MPI launcher's variables, so that the child is a process of
/// its own, never a rank of this job.
std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string v(*e);
    if (v.rfind("OMPI_", 0) == 0 || v.rfind("PMIX_", 0) == 0 || v.rfind("PMI_", 0) == 0) continue;
    env.push_back(v);
  }
  return env;
}

/// Opens a run's log for writing under the project's file rule (files.h): a regular file or absent, checked before
/// the open and again on the open descriptor (O_NONBLOCK: a FIFO put there after the check fails at once instead of
/// blocking the spawn; a device or a directory is refused, never written to).
int open_log(const std::string& log) {
  const std::string target = files::output_target(log, "compare run log");
  const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = fd < 0 ? errno : EINVAL;
    if (fd >= 0) ::close(fd);
    throw FileError("compare run log '" + files::escape_bytes(log) + "': " +
                    (err == EINVAL ? std::string("is not a regular file") : std::strerror(err)));
  }
  return fd;
}

/// Starts `argv` (argv[0] a path) with stdin /dev/null and stdout+stderr into `log`. No shell.
pid_t start(const std::vector<std::string>& argv, const std::string& log) {
  const int fd = open_log(log);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fd, 1);
  posix_spawn_file_actions_adddup2(&fa, fd, 2);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::vector<std::string> env = child_environment();
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(fd);
  if (rc != 0) throw std::runtime_error("compare: cannot start " + files::escape_bytes(argv[0]) + ": " + std::strerror(rc));
  return pid;
}

/// `args` without the options named (as "--name value" or "--name=value").
std::vector<std::string> without_options(const std::vector<std::string>& args, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const bool spaced = std::find(names.begin(), names.end(), args[i]) != names.end();
    const bool joined = std::any_of(names.begin(), names.end(), [&](const std::string& n) { return args[i].rfind(n + "=", 0) == 0; });
    if (spaced) ++i;  // and its value
    else if (!joined) out.push_back(args[i]);
  }
  return out;
}

/// "1 run", "6 runs".
std::string count_of(std::size_t n, const std::string& noun) { return std::to_string(n) + " " + noun + (n == 1 ? "" : "s"); }

int exit_status(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/// The line of a failed run's log that says why (for error messages): the first sanitizer report or `error:` line,
/// else the last non-empty line. (A run's stdout is buffered and its stderr is not, so a report can come before the
/// output the run printed first: the last line alone can be a normal one.)
std::string failure_line(const std::string& path) {
  try {
    const auto bytes = files::read_regular_file(path, std::size_t(1) << 20, "run log");
    const std::string text(bytes.begin(), bytes.end());
    std::string last;
    std::size_t pos = 0;
    while (pos < text.size()) {
      const std::size_t nl = std::min(text.find('\n', pos), text.size());
      std::string line = text.substr(pos, nl - pos);
      pos = nl + 1;
      while (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (line.rfind("error:", 0) == 0 || line.find("Sanitizer") != std::string::npos ||
          line.find("runtime error") != std::string::npos)
        return files::printable(line);
      last = line;
    }
    return files::printable(last);
  } catch (const std::exception&) {
    return "";
  }
}

/// A run's metrics file when it holds `epochs` complete epochs; nullopt otherwise (absent, partial or not a run's).
std::optional<RunCurve> read_run(const std::string& path, const std::string& pool, std::uint64_t seed, std::size_t epochs) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  const auto bytes = files::read_regular_file(path, std::size_t(1) << 24, "compare run");
  RunCurve r{pool, seed, {}, {}, {}};
  std::size_t pos = 0;
  const std::string text(bytes.begin(), bytes.end());
  while (pos < text.size()) {
    const std::size_t nl = std::min(text.find('\n', pos), text.size());
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = parse_json_bounded<DataError>(line.begin(), line.end(), path, JsonLimits{8, line.size()});
    } catch (const DataError&) {
      return std::nullopt;
    }
    const auto number = [&](const char* k) {
      return j.contains(k) && j[k].is_number() ? j[k].get<double>() : std::numeric_limits<double>::quiet_NaN();
    };
    if (!j.is_object() || number("epoch") != static_cast<double>(r.validation.size() + 1)) return std::nullopt;
    r.validation.push_back(number("validation_accuracy"));
    r.test.push_back(number("heldout_accuracy"));
    r.images_per_second.push_back(number("train_images_per_second"));
  }
  if (r.validation.size() != epochs) return std::nullopt;
  // Accuracies are fractions and speeds finite: a file with anything else (a crafted ±1e308) is not a run's, and the
  // run is made again.
  // A speed is finite and positive (±1e308 or a string had been tabulated as ±inf or nan).
  const auto fraction = [](double v) { return v >= 0.0 && v <= 1.0; };
  const auto speed = [](double v) { return std::isfinite(v) && v > 0.0 && v < 1e12; };
  for (std::size_t e = 0; e < epochs; ++e)
    if (!fraction(r.validation[e]) || !fraction(r.test[e]) || !speed(r.images_per_second[e])) return std::nullopt;
  return r;
}

/// Holds an exclusive lock on DIR/compare.lock while it lives: one comparison per directory at a time.
class DirLock {
 public:
  explicit DirLock(const std::string& dir) {
    const std::string path = dir + "/compare.lock";
    files::output_target(path, "compare lock");
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd_ < 0) throw FileError("compare: cannot open " + files::escape_bytes(path) + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw UsageError("compare: another mnist compare is running in " + files::escape_bytes(dir) +
                       " (wait for it, or choose another --out)");
    }
  }
  ~DirLock() { ::close(fd_); }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

std::size_t cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return std::max(1u, std::thread::hardware_concurrency());
  return static_cast<std::size_t>(CPU_COUNT(&set));
}

/// Runs `argvs` together (each its own process) and returns the wall time; throws if any fails.
double time_together(const std::vector<std::vector<std::string>>& argvs, const std::string& log_prefix) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<pid_t> pids;
  for (std::size_t i = 0; i < argvs.size(); ++i) pids.push_back(start(argvs[i], log_prefix + std::to_string(i) + ".log"));
  int failed = 0;
  std::size_t which = 0;
  for (std::size_t i = 0; i < pids.size(); ++i) {
    int status = 0;
    while (::waitpid(pids[i], &status, 0) < 0 && errno == EINTR) {
    }
    if (exit_status(status) != 0 && !failed) {
      failed = exit_status(status);
      which = i;
    }
  }
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (failed) {
    const std::string log = log_prefix + std::to_string(which) + ".log", why = failure_line(log);
    throw std::runtime_error("compare: the calibration run failed (exit " + std::to_string(failed) + ")" +
                             (why.empty() ? "" : ": " + why) + "; its log is " + files::escape_bytes(log));
  }
  for (std::size_t i = 0; i < argvs.size(); ++i) fs::remove(log_prefix + std::to_string(i) + ".log");
  return t;
}

}  // namespace

CompareReport run_compare(const CompareOptions& o, dist::Communicator& world,
                          const std::function<void(const std::string&)>& say, const volatile std::sig_atomic_t* stop) {
  if (o.pools.empty()) throw UsageError("compare: --pool needs at least one pooling");
  for (std::size_t i = 0; i < o.pools.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (o.pools[i] == o.pools[j]) throw UsageError("compare: --pool names " + o.pools[i] + " twice");
  if (o.seeds == 0) throw UsageError("compare: --seeds must be at least 1");
  const bool rank0 = world.rank() == 0;
  const std::string dir = o.out_dir, runs_dir = o.out_dir + "/runs";
  CompareReport report;
  std::unique_ptr<DirLock> lock;
  // Rank 0 prepares DIR and checks that it holds runs of these settings (or none); every rank then sees it.
  nlohmann::json settings{{"train_args", nlohmann::json::array()}, {"epochs", o.epochs}, {"validation", o.validation}};
  for (const auto& a : o.train_args) settings["train_args"].push_back(files::escape_bytes(a));
  train::on_rank0(world, [&] {
    files::ensure_output_dir(dir, "compare --out");
    std::error_code ec;
    if (!fs::is_directory(runs_dir, ec)) files::ensure_output_dir(runs_dir, "compare --out");
    lock = std::make_unique<DirLock>(dir);
    const std::string cfg = dir + "/compare-settings.json";
    if (fs::exists(cfg, ec)) {
      const auto bytes = files::read_regular_file(cfg, 1 << 20, "compare settings");
      const auto stored = parse_json_bounded<DataError>(bytes.begin(), bytes.end(), cfg, JsonLimits{8, bytes.size()});
      if (stored != settings)
        throw UsageError("compare: " + files::escape_bytes(dir) + " holds runs of other settings (" + stored.dump() +
                         "; now " + settings.dump() + "): choose another --out, or repeat those settings to resume");
    } else {
      const std::string text = settings.dump(2) + "\n";
      files::write_atomic(cfg, text.data(), text.size(), "compare settings");
    }
    for (const auto& e : fs::directory_iterator(runs_dir))
      if (e.path().extension() == ".partial") fs::remove(e.path(), ec);  // an interrupted run starts over
  });
  world.barrier();
  // The runs, in a fixed order; run i belongs to rank i mod K.
  struct Job {
    std::string pool;
    std::uint64_t seed;
    std::string name;
  };
  std::vector<Job> all, mine;
  for (const auto& pool : o.pools)
    for (std::uint64_t s = 0; s < o.seeds; ++s) all.push_back({pool, s, run_name(pool, s)});
  report.runs_total = all.size();
  const auto final_path = [&](const Job& j) { return runs_dir + "/" + j.name + ".jsonl"; };
  // Every run's file must be writable under the file rule before anything trains (a directory there had trained a
  // whole run, then failed with a raw filesystem error).
  for (const Job& j : all) files::output_target(final_path(j), "compare run");
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (static_cast<int>(i % static_cast<std::size_t>(world.size())) != world.rank()) continue;
    if (read_run(final_path(all[i]), all[i].pool, all[i].seed, o.epochs)) ++report.runs_reused;
    else mine.push_back(all[i]);
  }
  const auto child_args = [&](const std::string& pool, std::uint64_t seed, std::size_t threads) {
    std::vector<std::string> a{o.exe};
    a.insert(a.end(), o.train_args.begin(), o.train_args.end());
    for (const std::string& s : {std::string("--pool"), pool, std::string("--seed"), std::to_string(seed),
                                 std::string("--threads"), std::to_string(threads), std::string("--quiet")})
      a.push_back(s);
    return a;
  };
  // How many runs at once: under MPI one per rank (the ranks share the machine's cores); otherwise measured once per
  // DIR — one short run with every thread against as many one-thread runs at once — unless --jobs says.
  const std::size_t c = world.size() > 1 ? std::max<std::size_t>(1, cores() / static_cast<std::size_t>(world.local_size())) : cores();
  std::size_t jobs = world.size() > 1 ? 1 : std::max<std::size_t>(1, o.jobs);
  if (world.size() == 1 && o.jobs == 0) {
    jobs = 1;
    const std::string cal = dir + "/calibration.json";
    std::error_code ec;
    if (fs::exists(cal, ec)) {
      const auto bytes = files::read_regular_file(cal, 1 << 20, "compare calibration");
      const auto j = parse_json_bounded<DataError>(bytes.begin(), bytes.end(), cal, JsonLimits{8, bytes.size()});
      // Written by an earlier compare, but read as untrusted: "jobs" must be a whole number from 1 to the cores
      // (0 or 1e30 had divided by zero, −1 had started every run at once, "x" had ended with nlohmann's message).
      const auto whole = [&](const char* key, std::size_t lo, std::size_t hi) -> std::optional<std::size_t> {
        if (!j.is_object() || !j.contains(key)) return std::nullopt;
        const auto& v = j.at(key);
        if (!v.is_number_unsigned() || v.get<std::uint64_t>() < lo || v.get<std::uint64_t>() > hi)
          throw DataError(files::escape_bytes(cal) + ": \"" + key + "\" must be a whole number from " + std::to_string(lo) +
                          " to " + std::to_string(hi) + ", got " + files::printable(v.dump()) +
                          " (delete the file to measure again)");
        return static_cast<std::size_t>(v.get<std::uint64_t>());
      };
      if (whole("cores", 1, 1 << 20) == c) jobs = whole("jobs", 1, c).value_or(1);
    } else if (c > 1 && mine.size() > 1) {
      // The calibration's own epochs and limits replace the user's (given twice, the child refused them: "At Most 1
      // required but received 2").
      auto short_run = [&](std::size_t threads) {
        auto a = without_options(child_args(o.pools.front(), 0, threads), {"--epochs", "--limit", "--test-limit"});
        for (const char* s : {"--epochs", "1", "--limit", "2000", "--test-limit", "200"}) a.push_back(s);
        return a;
      };
      const double one = time_together({short_run(c)}, dir + "/calibration-a");
      const double many = time_together(std::vector<std::vector<std::string>>(c, short_run(1)), dir + "/calibration-b");
      // Runs per second: 1/one with all threads in one run; c/many with c one-thread runs at once.
      jobs = static_cast<double>(c) / many > 1.0 / one ? c : 1;
      const nlohmann::json j{{"cores", c}, {"one_run_all_threads_seconds", one}, {"runs_at_once_seconds", many},
                             {"runs_at_once", c}, {"jobs", jobs}};
      const std::string text = j.dump(2) + "\n";
      files::write_atomic(cal, text.data(), text.size(), "compare calibration");
      say("calibration: one short run with " + std::to_string(c) + " threads " + num(one, 2) + " s; " + std::to_string(c) +
          " one-thread runs at once " + num(many, 2) + " s -> " + std::to_string(jobs) + " run" + (jobs == 1 ? "" : "s") +
          " at a time");
    }
  }
  const std::size_t threads = std::max<std::size_t>(1, c / jobs);
  report.jobs = jobs;
  report.threads = threads;
  if (rank0)
    say("compare: " + count_of(all.size(), "run") + " (" + count_of(o.pools.size(), "pooling") + " × " +
        count_of(o.seeds, "seed") + "), " + std::to_string(report.runs_reused) + " already done in " +
        files::escape_bytes(dir) + (world.size() > 1 ? "; " + std::to_string(world.size()) + " ranks" : "") + "; " +
        std::to_string(jobs) + " at a time, " + std::to_string(threads) + " thread" + (threads == 1 ? "" : "s") + " each");
  // Run this rank's share, `jobs` at a time. A failed run stops new ones; the running ones finish. A stop (one process
  // only) is not a failure to agree on: it leaves the agreement and is rethrown as it is.
  std::optional<train::Interrupted> interrupted;
  train::on_every_rank(world, [&] {
    std::map<pid_t, Job> running;
    std::size_t next = 0, done = 0;
    std::string failure;
    int failure_code = 0;
    const std::string suffix = "." + std::to_string(::getpid()) + ".partial";
    while (next < mine.size() || !running.empty()) {
      while (failure.empty() && running.size() < jobs && next < mine.size() && !(stop && *stop)) {
        const Job& j = mine[next++];
        auto a = child_args(j.pool, j.seed, threads);
        for (const std::string& s : {std::string("--epochs"), std::to_string(o.epochs), std::string("--validation"),
                                     std::to_string(o.validation), std::string("--metrics"), runs_dir + "/" + j.name + suffix})
          a.push_back(s);
        running.emplace(start(a, runs_dir + "/" + j.name + ".log"), j);
      }
      if (stop && *stop) {
        for (const auto& [pid, j] : running) ::kill(pid, SIGTERM);
        for (const auto& [pid, j] : running) {
          int status = 0;
          while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
          }
        }
        interrupted.emplace(static_cast<int>(*stop), 0, done);
        return;
      }
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid == 0 || (pid < 0 && errno == EINTR)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      if (pid < 0) throw std::runtime_error(std::string("compare: waiting for runs: ") + std::strerror(errno));
      const auto it = running.find(pid);
      if (it == running.end()) continue;
      const Job j = it->second;
      running.erase(it);
      const std::string partial = runs_dir + "/" + j.name + suffix, log = runs_dir + "/" + j.name + ".log";
      const int code = exit_status(status);
      const auto curve = code == 0 ? read_run(partial, j.pool, j.seed, o.epochs) : std::nullopt;
      if (!curve) {
        if (failure.empty()) {
          failure_code = code;
          const std::string why = failure_line(log);
          failure = "compare: run " + j.name + " failed (exit " + std::to_string(code) + ")" + (why.empty() ? "" : ": " + why) +
                    "; its log is " + files::escape_bytes(log);
        }
        continue;
      }
      std::error_code moved;
      fs::rename(partial, final_path(j), moved);
      if (moved)
        throw FileError("compare run '" + files::escape_bytes(final_path(j)) + "': cannot move the finished run there: " +
                        moved.message());
      ++done;
      const auto s = summarize_comparison({*curve}, {j.pool});
      const auto& p = s.pools[0];
      if (rank0)
        say("run " + j.name + ": validation " + pct(p.validation[0]) + "% at epoch " + std::to_string(p.epoch[0]) +
            ", test " + pct(p.test[0]) + "% (" +
            (world.size() > 1 ? std::to_string(done) + " of rank 0's " + std::to_string(mine.size())
                              : std::to_string(done + report.runs_reused) + " of " + std::to_string(all.size())) + ")");
    }
    if (!failure.empty()) {
      if (failure_code >= 2 && failure_code <= 5) throw train::JobError(failure_code, failure);
      throw std::runtime_error(failure);
    }
  });
  if (interrupted) throw *interrupted;
  // Rank 0 reads every run and writes the table, its JSON and the plot.
  train::on_rank0(world, [&] {
    std::vector<RunCurve> curves;
    for (const auto& j : all) {
      auto r = read_run(final_path(j), j.pool, j.seed, o.epochs);
      if (!r) throw std::runtime_error("compare: run " + j.name + " is missing from " + files::escape_bytes(runs_dir));
      curves.push_back(std::move(*r));
    }
    report.summary = summarize_comparison(curves, o.pools);
    std::string command = "mnist compare --pool ";
    for (std::size_t i = 0; i < o.pools.size(); ++i) command += (i ? "," : "") + o.pools[i];
    command += " --seeds " + std::to_string(o.seeds) + " --validation " + std::to_string(o.validation) + " --epochs " +
               std::to_string(o.epochs);
    for (const auto& a : o.train_args) command += " " + files::escape_bytes(a);
    const std::string md = comparison_markdown(report.summary, command);
    files::write_atomic(dir + "/compare.md", md.data(), md.size(), "compare.md");
    report.markdown = md;
    nlohmann::json js{{"command", command}, {"epochs", o.epochs}, {"validation", o.validation}, {"seeds", o.seeds},
                      {"winner", report.summary.pools[report.summary.winner].pool},
                      {"runner_up", report.summary.pools[report.summary.runner_up].pool},
                      {"welch_p_value", std::isfinite(report.summary.p_value) ? nlohmann::json(report.summary.p_value) : nlohmann::json()},
                      {"lead_larger_than_noise", report.summary.significant},
                      {"test", "Welch's two-sided t-test on the per-seed best validation accuracies, p < 0.05"}};
    for (const auto& p : report.summary.pools)
      js["poolings"].push_back({{"pool", p.pool}, {"seeds", p.seeds}, {"validation_accuracy", p.validation},
                                {"chosen_epoch", p.epoch}, {"test_accuracy_at_chosen_epoch", p.test},
                                {"validation_mean", p.validation_mean}, {"validation_sd", p.validation_sd},
                                {"test_mean", p.test_mean}, {"test_sd", p.test_sd},
                                {"train_images_per_second", p.images_per_second}});
    const std::string jtext = js.dump(2) + "\n";
    files::write_atomic(dir + "/compare.json", jtext.data(), jtext.size(), "compare.json");
    report.files = {dir + "/compare.md", dir + "/compare.json"};
    // The plot: validation accuracy per epoch, one mean line and min–max band per pooling. The pool names reach
    // gnuplot only inside the data files (column headers), never in the script.
    std::vector<std::pair<std::string, std::string>> data;
    for (std::size_t i = 0; i < report.summary.pools.size(); ++i) {
      const auto& p = report.summary.pools[i];
      std::string d = "epoch " + p.pool + " min max\n";
      for (std::size_t e = 0; e < o.epochs; ++e) {
        double lo = 1e9, hi = -1e9, s = 0;
        for (const auto& c : p.curves) {
          lo = std::min(lo, c[e]);
          hi = std::max(hi, c[e]);
          s += c[e];
        }
        d += std::to_string(e + 1) + " " + num(100 * s / static_cast<double>(p.curves.size()), 4) + " " + num(100 * lo, 4) +
             " " + num(100 * hi, 4) + "\n";
      }
      data.emplace_back("pool" + std::to_string(i + 1) + ".dat", d);
    }
    const std::string script =
        "set terminal pngcairo size 900,500\nset output 'plot.png'\nset xlabel 'epoch'\n"
        "set ylabel 'validation accuracy (%)'\nset grid\nset key bottom right\nset xtics 1\n"
        "set style fill transparent solid 0.15 noborder\n"
        "plot for [i=1:" + std::to_string(data.size()) + "] sprintf('pool%d.dat', i) using 1:3:4 every ::1 with filledcurves "
        "lc i notitle, for [i=1:" + std::to_string(data.size()) + "] sprintf('pool%d.dat', i) using 1:2 with linespoints "
        "lw 2 lc i title columnheader(2)\n";
    try {
      render_gnuplot(script, data, dir + "/compare.png", "compare.png");
      report.files.push_back(dir + "/compare.png");
    } catch (const FileError&) {
      throw;
    } catch (const std::runtime_error& e) {
      report.note = std::string("compare.png not drawn: ") + e.what();
    }
  });
  return report;
}

}  // namespace xg::mnist
