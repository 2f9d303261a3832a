#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include <fmt/core.h>

#include "core/files.h"
#include "models/cli/cli.h"

namespace xg::mnist::cli {

namespace {
/// Rank 0 of a distributed job: when the launcher ends the job because another rank died (it sends SIGTERM before
/// SIGKILL), say so on rank 0 instead of vanishing silently. Only write(2) and _exit: async-signal-safe.
/// Non-zero once this rank has printed the job's error: the launcher may still send SIGTERM while the rank shuts down
/// (another rank exited first with the agreed code), and the failure must not be reported twice.
volatile std::sig_atomic_t g_reported_exit = 0;

void on_sigterm(int) {
  if (g_reported_exit) ::_exit(g_reported_exit);
  static const char kMessage[] =
      "error: rank 0: the job was stopped by the MPI launcher: another rank failed or was killed, or the job was "
      "cancelled (see the launcher's report)\n";
  [[maybe_unused]] const auto written = ::write(2, kMessage, sizeof kMessage - 1);
  ::_exit(143);
}

}  // namespace

void report_launcher_stops() { std::signal(SIGTERM, on_sigterm); }

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

volatile std::sig_atomic_t g_stop_signal = 0;

namespace {
void on_stop_signal(int sig) {
  if (g_stop_signal) {  // a second signal: stop at once, the default way
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
  g_stop_signal = sig;
}
}  // namespace

StopSignals::StopSignals() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, on_stop_signal);
}
StopSignals::~StopSignals() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, SIG_DFL);
}

const char* signal_name(int sig) { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal"; }

void say(bool quiet, const dist::Communicator& world, const std::string& line) {
  if (quiet || world.rank() != 0) return;
  fmt::print("{}\n", line);
  std::fflush(stdout);  // every line reaches a log file at once, even if the run is stopped later
}

}  // namespace xg::mnist::cli
