// mnist: train and evaluate the chapter-6 CNN on real MNIST digits (or Fashion-MNIST, or any IDX directory).
// Errors print one line "error: ..." and exit with 2 (usage), 3 (data), 4 (checkpoint), 5 (numeric) or 1 (other).
// Under `mpirun -np K` it trains data-parallel on K processes (docs/distributed.md): rank 0 prints and writes files,
// and a failure on any rank ends every rank with the same exit code.
#include <algorithm>
#include <csignal>
#include <optional>
#include <sstream>

#include <fmt/core.h>

#include "core/memory.h"
#include "dist/data_parallel.h"
#include "models/cli/cli.h"
#include "models/cli/flags.h"
#include "train/job.h"

using namespace xg;
using namespace xg::mnist::cli;

namespace {
/// Every rank parses its own arguments; they agree on the outcome so that none waits for a rank that stopped.
/// Returns the exit code when the program is done (help printed, or a usage error reported).
std::optional<int> parse_everywhere(CLI::App& app, int argc, char** argv, dist::Communicator& world) {
  constexpr int kHelp = -1;
  int code = 0;
  std::string message, help;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    code = e.get_exit_code() == 0 ? kHelp : train::kExitUsage;
    if (code == kHelp) {  // printed once every rank agrees that all were asked for help
      std::ostringstream out, err;
      app.exit(e, out, err);
      help = out.str();
    } else {
      message = e.what();
    }
  }
  // --help on some ranks only is a flag mismatch like any other: those ranks would stop and the others wait forever.
  if (world.size() > 1) {
    const std::vector<std::string> codes = world.all_gather(std::to_string(code));
    const auto other = std::find_if(codes.begin(), codes.end(), [](const std::string& c) { return c != "-1"; });
    if (code == kHelp && other != codes.end()) {
      code = train::kExitUsage;
      message = fmt::format("every rank must be given the same flags: rank {} was given --help and rank {} was not",
                            world.rank(), other - codes.begin());
    }
  }
  const dist::Outcome p = dist::agree(world, code, message);
  if (p.ok()) return std::nullopt;
  if (p.code == kHelp) {
    if (world.rank() == 0) fmt::print("{}", help);
    return 0;
  }
  return world.rank() == 0 ? report(train::kExitUsage, train::job_message(p, world)) : train::kExitUsage;
}

/// Runs `job`; a failure prints the job's one error line (rank 0, or the failing rank) and becomes its exit code.
int reporting_errors(dist::Communicator& world, const std::function<int()>& job) {
  const bool rank0 = world.rank() == 0;
  try {
    return job();
  } catch (const train::JobError& e) {  // every rank is here: rank 0 reports
    return rank0 ? report(e.code, e.what()) : e.code;
  } catch (const NumericError& e) {  // raised by every rank together, from the same reduced loss and gradients
    return rank0 ? report(train::kExitNumeric, e.what()) : train::kExitNumeric;
  } catch (const std::exception& e) {
    const int code = train::exit_code_of(e);
    if (world.size() > 1) {  // only this rank failed: the others may be waiting in a collective, so end them all
      report(code, fmt::format("rank {} of {}: {}", world.rank(), world.size(), e.what()));
      world.abort(code);
    }
    return report(code, e.what());
  }
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
  if (world.size() > 1 && world.rank() == 0) report_launcher_stops();
  // A file-size limit (ulimit -f) must fail the write with EFBIG ("File too large", exit 4), not kill the process
  // with a half-written temporary file.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"Train and evaluate the MNIST CNN of Nielsen's chapter 6 with xgrad."};
  Options o;
  FlagTable flags(app);
  declare_training_flags(flags, o);
  const std::vector<Command> commands{prepare_npm_command(app), visualize_command(app), graph_command(app),
                                      plot_command(app), compare_command(app, app, o)};
  app.require_subcommand(0, 1);
  if (const std::optional<int> done = parse_everywhere(app, argc, argv, world)) return *done;
  for (const CLI::Option* opt : app.get_options())
    if (opt->count() > 0) o.given.insert(opt->get_name());
  const auto chosen = std::find_if(commands.begin(), commands.end(), [](const Command& c) { return c.app->parsed(); });
  const std::string name = chosen == commands.end() ? "train" : chosen->app->get_name();
  return reporting_errors(world, [&] {
    // The flags first: their gather is the first collective every rank makes, whatever else is wrong with them.
    train::on_every_rank(world, [&] { train::check_same_settings(world, flags.json(name)); });
    if (chosen == commands.end()) return train_command(o, flags, world);
    if (!chosen->distributed && world.size() > 1)
      train::on_every_rank(world, [&] { throw UsageError("mnist " + name + " runs on one process: run it without mpirun"); });
    // An empty --out is a usage error (exit 2, docs/errors.md), named before any file code sees it.
    if (chosen->out->empty()) throw UsageError("mnist " + name + ": --out needs a path (an empty one was given)");
    return chosen->run(world);
  });
}
