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
#include "models/child_processes.h"
#include "models/stats.h"
#include "models/visualize.h"
#include "train/job.h"
#include "train/trainer.h"

extern char** environ;

namespace xg::mnist {

namespace fs = std::filesystem;

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
    p.validation_mean = stats::mean(p.validation);
    p.validation_sd = stats::sample_sd(p.validation);
    p.test_mean = stats::mean(p.test);
    p.test_sd = stats::sample_sd(p.test);
    std::vector<double> ep(p.epoch.begin(), p.epoch.end());
    p.epoch_mean = stats::mean(ep);
    p.images_per_second = stats::mean(speeds[i]);
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
                                        : stats::welch_p_value(s.pools[s.winner].validation, s.pools[s.runner_up].validation);
    s.significant = std::isfinite(s.p_value) && s.p_value < 0.05;
  }
  return s;
}

// ---- running the comparison ----

namespace {

std::string run_name(const std::string& pool, std::uint64_t seed) { return pool + "-seed" + std::to_string(seed); }

/// "1 run", "6 runs".
std::string count_of(std::size_t n, const std::string& noun) { return std::to_string(n) + " " + noun + (n == 1 ? "" : "s"); }

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
                       " (wait for it, or choose another directory)");
    }
  }
  ~DirLock() { ::close(fd_); }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace


namespace {
/// One (pooling, seed) run of the comparison.
struct Job {
  std::string pool;
  std::uint64_t seed;
  std::string name;
};

/// What a comparison works with: its options, its directory, the child command line, and its progress lines.
struct Comparison {
  const CompareOptions& o;
  dist::Communicator& world;
  const std::function<void(const std::string&)>& say;
  std::string dir, runs_dir;
  std::string final_path(const Job& j) const { return runs_dir + "/" + j.name + ".jsonl"; }
  /// A run's argument vector (the caller's command line).
  std::vector<std::string> child(const ChildRun& r) const { return o.child_command(r); }
};

void check_options(const CompareOptions& o) {
  if (o.pools.empty()) throw UsageError("compare: there is no pooling to compare");
  for (std::size_t i = 0; i < o.pools.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (o.pools[i] == o.pools[j]) throw UsageError("compare: the pooling " + o.pools[i] + " is named twice");
  if (o.seeds == 0) throw UsageError("compare: at least one seed is needed");
  if (!o.child_command) throw std::invalid_argument("compare: no command to start a run with");
}

/// Rank 0 prepares DIR, locks it, and checks that it holds runs of these settings (or none); a run a stopped
/// comparison left partial starts over.
std::unique_ptr<DirLock> prepare_directory(const Comparison& c) {
  const CompareOptions& o = c.o;
  nlohmann::json settings{{"train_args", nlohmann::json::array()}, {"epochs", o.epochs}, {"validation", o.validation}};
  for (const auto& a : o.settings) settings["train_args"].push_back(files::escape_bytes(a));
  files::ensure_output_dir(c.dir, "compare output directory");
  std::error_code ec;
  if (!fs::is_directory(c.runs_dir, ec)) files::ensure_output_dir(c.runs_dir, "compare output directory");
  auto lock = std::make_unique<DirLock>(c.dir);
  const std::string cfg = c.dir + "/compare-settings.json";
  if (fs::exists(cfg, ec)) {
    const auto bytes = files::read_regular_file(cfg, 1 << 20, "compare settings");
    const auto stored = parse_json_bounded<DataError>(bytes.begin(), bytes.end(), cfg, JsonLimits{8, bytes.size()});
    if (stored != settings)
      throw UsageError("compare: " + files::escape_bytes(c.dir) + " holds runs of other settings (" + stored.dump() +
                       "; now " + settings.dump() + "): choose another directory, or repeat those settings to resume");
  } else {
    const std::string text = settings.dump(2) + "\n";
    files::write_atomic(cfg, text.data(), text.size(), "compare settings");
  }
  for (const auto& e : fs::directory_iterator(c.runs_dir))
    if (e.path().extension() == ".partial") fs::remove(e.path(), ec);
  return lock;
}

/// A calibration file's whole number `key` in [lo, hi]; nullopt when absent. Written by an earlier compare, but read
/// as untrusted (0 or 1e30 had divided by zero, −1 had started every run at once, "x" had ended with nlohmann's message).
std::optional<std::size_t> calibration_value(const nlohmann::json& j, const std::string& path, const char* key, std::size_t lo,
                                             std::size_t hi) {
  if (!j.is_object() || !j.contains(key)) return std::nullopt;
  const auto& v = j.at(key);
  if (!v.is_number_unsigned() || v.get<std::uint64_t>() < lo || v.get<std::uint64_t>() > hi)
    throw DataError(files::escape_bytes(path) + ": \"" + key + "\" must be a whole number from " + std::to_string(lo) +
                    " to " + std::to_string(hi) + ", got " + files::printable(v.dump()) + " (delete the file to measure again)");
  return static_cast<std::size_t>(v.get<std::uint64_t>());
}

/// How many runs at once on one process with `cores` cores: DIR/calibration.json's answer, or measured now — one short
/// run with every thread against as many one-thread runs at once — and stored there.
std::size_t measured_jobs(const Comparison& c, std::size_t cores, std::size_t runs) {
  const std::string cal = c.dir + "/calibration.json";
  std::error_code ec;
  if (fs::exists(cal, ec)) {
    const auto bytes = files::read_regular_file(cal, 1 << 20, "compare calibration");
    const auto j = parse_json_bounded<DataError>(bytes.begin(), bytes.end(), cal, JsonLimits{8, bytes.size()});
    return calibration_value(j, cal, "cores", 1, 1 << 20) == cores ? calibration_value(j, cal, "jobs", 1, cores).value_or(1) : 1;
  }
  if (cores < 2 || runs < 2) return 1;
  const auto short_run = [&](std::size_t threads, const std::string& log) {
    return ChildJob{c.child(ChildRun{c.o.pools.front(), 0, threads, "", true}), log};
  };
  const double one = time_children({short_run(cores, c.dir + "/calibration-a0.log")}, "the calibration run");
  std::vector<ChildJob> many_jobs;
  for (std::size_t i = 0; i < cores; ++i) many_jobs.push_back(short_run(1, c.dir + "/calibration-b" + std::to_string(i) + ".log"));
  const double many = time_children(many_jobs, "the calibration run");
  // Runs per second: 1/one with all threads in one run; cores/many with one-thread runs at once.
  const std::size_t jobs = static_cast<double>(cores) / many > 1.0 / one ? cores : 1;
  const nlohmann::json j{{"cores", cores}, {"one_run_all_threads_seconds", one}, {"runs_at_once_seconds", many},
                         {"runs_at_once", cores}, {"jobs", jobs}};
  const std::string text = j.dump(2) + "\n";
  files::write_atomic(cal, text.data(), text.size(), "compare calibration");
  c.say("calibration: one short run with " + std::to_string(cores) + " threads " + num(one, 2) + " s; " + std::to_string(cores) +
        " one-thread runs at once " + num(many, 2) + " s -> " + std::to_string(jobs) + " run" + (jobs == 1 ? "" : "s") + " at a time");
  return jobs;
}

/// Runs this rank's share `jobs` at a time; a failed run stops new ones (the running ones finish) and is thrown once
/// they have. Returns false when a signal stopped it.
bool run_share(const Comparison& c, const std::vector<Job>& mine, std::size_t jobs, std::size_t threads,
               const volatile std::sig_atomic_t* stop, const std::size_t all, const std::size_t reused, std::size_t& done) {
  const std::string suffix = "." + std::to_string(::getpid()) + ".partial";
  std::vector<ChildJob> children;
  for (const Job& j : mine)
    children.push_back({c.child(ChildRun{j.pool, j.seed, threads, c.runs_dir + "/" + j.name + suffix, false}),
                        c.runs_dir + "/" + j.name + ".log"});
  std::string failure;
  int failure_code = 0;
  const bool finished = run_children(children, jobs, stop, [&](std::size_t i, int code) {
    const Job& j = mine[i];
    const std::string partial = c.runs_dir + "/" + j.name + suffix;
    const auto curve = code == 0 ? read_run(partial, j.pool, j.seed, c.o.epochs) : std::nullopt;
    if (!curve) {  // the first failure is reported; later ones (runs that were already going) are in their logs
      if (failure.empty()) {
        const std::string why = failure_line(children[i].log);
        failure_code = code;
        failure = "compare: run " + j.name + " failed (exit " + std::to_string(code) + ")" + (why.empty() ? "" : ": " + why) +
                  "; its log is " + files::escape_bytes(children[i].log);
      }
      return false;
    }
    std::error_code moved;
    fs::rename(partial, c.final_path(j), moved);
    if (moved)
      throw FileError("compare run '" + files::escape_bytes(c.final_path(j)) + "': cannot move the finished run there: " + moved.message());
    ++done;
    const ComparisonSummary one = summarize_comparison({*curve}, {j.pool});  // kept: the line below reads into it
    const PoolSummary& p = one.pools[0];
    if (c.world.rank() == 0)
      c.say("run " + j.name + ": validation " + pct(p.validation[0]) + "% at epoch " + std::to_string(p.epoch[0]) + ", test " +
            pct(p.test[0]) + "% (" +
            (c.world.size() > 1 ? std::to_string(done) + " of rank 0's " + std::to_string(mine.size())
                                : std::to_string(done + reused) + " of " + std::to_string(all)) + ")");
    return true;
  });
  if (!finished) return false;  // a stop is reported as a stop, whatever else happened
  if (!failure.empty()) {
    if (failure_code >= 2 && failure_code <= 5) throw train::JobError(failure_code, failure);
    throw std::runtime_error(failure);
  }
  return true;
}

/// Rank 0: every run read back, summarized, and the reports written.
void summarize_and_write(const Comparison& c, const std::vector<Job>& all, CompareReport& report) {
  const CompareOptions& o = c.o;
  std::vector<RunCurve> curves;
  for (const auto& j : all) {
    auto r = read_run(c.final_path(j), j.pool, j.seed, o.epochs);
    if (!r) throw std::runtime_error("compare: run " + j.name + " is missing from " + files::escape_bytes(c.runs_dir));
    curves.push_back(std::move(*r));
  }
  report.summary = summarize_comparison(curves, o.pools);
  write_comparison(report, o, o.command);
}
}  // namespace

CompareReport run_compare(const CompareOptions& o, dist::Communicator& world,
                          const std::function<void(const std::string&)>& say, const volatile std::sig_atomic_t* stop) {
  check_options(o);
  const Comparison c{o, world, say, o.out_dir, o.out_dir + "/runs"};
  CompareReport report;
  std::unique_ptr<DirLock> lock;
  train::on_rank0(world, [&] { lock = prepare_directory(c); });
  world.barrier();
  // The runs, in a fixed order; run i belongs to rank i mod K. Every run's file must be writable under the file rule
  // before anything trains (a directory there had trained a whole run, then failed with a raw filesystem error).
  std::vector<Job> all, mine;
  for (const auto& pool : o.pools)
    for (std::uint64_t s = 0; s < o.seeds; ++s) all.push_back({pool, s, run_name(pool, s)});
  report.runs_total = all.size();
  for (const Job& j : all) files::output_target(c.final_path(j), "compare run");
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (static_cast<int>(i % static_cast<std::size_t>(world.size())) != world.rank()) continue;
    if (read_run(c.final_path(all[i]), all[i].pool, all[i].seed, o.epochs)) ++report.runs_reused;
    else mine.push_back(all[i]);
  }
  // How many runs at once: under MPI one per rank (the ranks share the machine's cores), otherwise --jobs or measured.
  const std::size_t cores = world.size() > 1 ? std::max<std::size_t>(1, available_cores() / static_cast<std::size_t>(world.local_size()))
                                             : available_cores();
  const std::size_t jobs = world.size() > 1 ? 1 : o.jobs > 0 ? o.jobs : measured_jobs(c, cores, mine.size());
  const std::size_t threads = std::max<std::size_t>(1, cores / jobs);
  report.jobs = jobs;
  report.threads = threads;
  if (world.rank() == 0)
    say("compare: " + count_of(all.size(), "run") + " (" + count_of(o.pools.size(), "pooling") + " × " + count_of(o.seeds, "seed") +
        "), " + std::to_string(report.runs_reused) + " already done in " + files::escape_bytes(c.dir) +
        (world.size() > 1 ? "; " + std::to_string(world.size()) + " ranks" : "") + "; " + std::to_string(jobs) + " at a time, " +
        std::to_string(threads) + " thread" + (threads == 1 ? "" : "s") + " each");
  // A stop (one process only) is not a failure to agree on: it leaves the agreement and is rethrown as it is.
  std::size_t done = 0;
  bool finished = true;
  train::on_every_rank(world, [&] { finished = run_share(c, mine, jobs, threads, stop, all.size(), report.runs_reused, done); });
  if (!finished) throw train::Interrupted(static_cast<int>(*stop), 0, done);
  train::on_rank0(world, [&] { summarize_and_write(c, all, report); });
  return report;
}

}  // namespace xg::mnist
