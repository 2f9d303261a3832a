#pragma once
/// \file child_processes.h
/// Running programs as child processes, several at a time (`mnist compare`'s runs): started with an argument vector
/// (no shell), stdin /dev/null, stdout and stderr into a log checked under the project's file rule, and without the
/// MPI launcher's environment (a child is a process of its own, never a rank of the parent's job).

#include <csignal>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace xg::mnist {

/// A program to run: its argument vector (argv[0] a path) and the log its output goes to.
struct ChildJob {
  std::vector<std::string> argv;
  std::string log;
};

/// Runs `jobs` in order, at most `slots` at a time. After each ends, `finished(index, exit_code)` (128 + the signal
/// for a killed child) says whether to start more: false starts none, and the running ones are waited for. When
/// `*stop` turns non-zero (a signal), the running ones get SIGTERM, are waited for, and run_children returns false;
/// otherwise true once every started job has ended. std::runtime_error when a child cannot be started or waited for.
bool run_children(const std::vector<ChildJob>& jobs, std::size_t slots, const volatile std::sig_atomic_t* stop,
                  const std::function<bool(std::size_t, int)>& finished);
/// Runs `jobs` all at once and returns the wall time in seconds; std::runtime_error naming `what`, the first job that
/// failed, its log's failure_line and the log. The logs of a successful round are removed.
double time_children(const std::vector<ChildJob>& jobs, const std::string& what);
/// The line of a failed child's log that says why: the first sanitizer report or `error:` line, else the last
/// non-empty line (a child's stdout is buffered and its stderr is not, so the last line alone can be a normal one).
std::string failure_line(const std::string& log);
/// The cores this process may run on (its CPU affinity mask).
std::size_t available_cores();

}  // namespace xg::mnist
