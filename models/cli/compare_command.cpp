// `mnist compare`: train with several poolings and seeds (models/compare.h) and report which pooling wins.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <sstream>

#include <fmt/core.h>

#include "core/files.h"
#include "models/classifier.h"
#include "models/cli/cli.h"
#include "models/cli/flags.h"
#include "models/compare.h"
#include "train/job.h"

namespace xg::mnist::cli {

namespace {
using train::on_every_rank;

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

/// The comparison's settings from the flags: the poolings, and the training flags given (all but those compare
/// decides or writes itself), which every run gets, as `mnist` command lines.
void complete_options(CompareOptions& cmp, const CLI::App& app, const Options& o, const std::string& pools) {
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
    if (std::find(cmp.pools.begin(), cmp.pools.end(), p) != cmp.pools.end()) throw UsageError("compare: --pool names " + p + " twice");
    cmp.pools.push_back(p);
  }
  if (cmp.pools.empty()) throw UsageError("compare: --pool needs at least one pooling");
  if (cmp.validation >= 60000 && o.run.data_dir.empty() && o.run.dataset == "mnist")
    throw UsageError("compare --validation " + std::to_string(cmp.validation) + " leaves no training images");
  cmp.epochs = o.run.epochs;
  for (const CLI::Option* opt : app.get_options()) {
    const std::string name = opt->get_name();
    if (opt->count() == 0 || name == "--epochs" || name == "--help" || name == "--quiet" || name == "--summary" || name == "--profile")
      continue;
    if (opt->get_type_size() == 0) cmp.settings.push_back(name);  // a flag
    else
      for (const auto& v : opt->results()) cmp.settings.insert(cmp.settings.end(), {name, v});
  }
  cmp.command = "mnist compare --pool ";
  for (std::size_t i = 0; i < cmp.pools.size(); ++i) cmp.command.append(i ? "," : "").append(cmp.pools[i]);
  cmp.command += " --seeds " + std::to_string(cmp.seeds) + " --validation " + std::to_string(cmp.validation) + " --epochs " +
                 std::to_string(cmp.epochs);
  for (const auto& a : cmp.settings) cmp.command.append(" ").append(files::escape_bytes(a));  // append: GCC 12 warns falsely (-Wrestrict) on " " + …
  std::array<char, 4096> self{};
  const ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
  if (n <= 0) throw std::runtime_error(std::string("compare: cannot find this program: ") + std::strerror(errno));
  const std::string exe(self.data(), static_cast<std::size_t>(n));
  cmp.child_command = [exe, args = cmp.settings, epochs = cmp.epochs, validation = cmp.validation](const ChildRun& r) {
    // A calibration run's own epochs and limits replace the user's (given twice, the child refused them: "At Most 1
    // required but received 2").
    std::vector<std::string> a{exe};
    const auto shared = r.calibration ? without_options(args, {"--epochs", "--limit", "--test-limit"}) : args;
    a.insert(a.end(), shared.begin(), shared.end());
    a.insert(a.end(), {"--pool", r.pool, "--seed", std::to_string(r.seed), "--threads", std::to_string(r.threads), "--quiet"});
    if (r.calibration) a.insert(a.end(), {"--epochs", "1", "--limit", "2000", "--test-limit", "200"});
    else a.insert(a.end(), {"--epochs", std::to_string(epochs), "--validation", std::to_string(validation), "--metrics", r.metrics});
    return a;
  };
}

int run_compare(const CLI::App& app, const Options& o, CompareOptions cmp, const std::string& pools,
                dist::Communicator& world) {
  on_every_rank(world, [&] { complete_options(cmp, app, o, pools); });
  const auto t0 = std::chrono::steady_clock::now();
  auto print = [&](const std::string& line) { say(o.quiet, world, line); };
  std::optional<StopSignals> stop_signals;
  if (world.size() == 1) {
    g_stop_signal = 0;
    stop_signals.emplace();
  }
  CompareReport r;
  try {
    r = mnist::run_compare(cmp, world, print, world.size() == 1 ? &g_stop_signal : nullptr);
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

}  // namespace

Command compare_command(CLI::App& app, const CLI::App& main_app, const Options& o) {
  struct State {
    CompareOptions cmp;
    std::string pools = "max,l2,avg,lp3,stochastic";
  };
  auto s = std::make_shared<State>();
  CLI::App* sub = app.add_subcommand(
      "compare", "train with several poolings and seeds, choose each run's epoch on validation data, report the test "
                 "accuracy there and the winner (any training flag applies to every run: --arch, --epochs, --lr, ...)");
  sub->add_option("--pool", s->pools, "comma-separated poolings (default max,l2,avg,lp3,stochastic)");
  sub->add_option("--seeds", s->cmp.seeds, "seeds 0..N-1 per pooling (default 5)")->transform(decimal(1, 1000));
  sub->add_option("--validation", s->cmp.validation, "evenly spaced training images held out to choose with (default 1000)")
      ->transform(decimal(1, 100000000));
  sub->add_option("--jobs", s->cmp.jobs, "runs at once (default: measured, DIR/calibration.json)")->transform(decimal(1, 4096));
  sub->add_option("--out", s->cmp.out_dir, "directory for the runs, compare.md, compare.json and compare.png")->required();
  sub->fallthrough();  // the training flags after `compare` belong to the main command
  return {sub, &s->cmp.out_dir, true,
          [s, &main_app, &o](dist::Communicator& world) { return run_compare(main_app, o, s->cmp, s->pools, world); }};
}

}  // namespace xg::mnist::cli
