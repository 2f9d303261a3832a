#include "models/child_processes.h"

#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <thread>

#include "core/errors.h"
#include "core/files.h"

extern char** environ;

namespace xg::mnist {

namespace {
/// The environment for a child: this one without the MPI launcher's variables, so that the child is a process of
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

/// Opens a child's log for writing under the project's file rule (files.h): a regular file or absent, checked before
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

/// Starts a job. No shell.
pid_t start(const ChildJob& job) {
  const int fd = open_log(job.log);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fd, 1);
  posix_spawn_file_actions_adddup2(&fa, fd, 2);
  std::vector<char*> args, envp;
  for (const auto& a : job.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::vector<std::string> env = child_environment();
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(fd);
  if (rc != 0) throw std::runtime_error("compare: cannot start " + files::escape_bytes(job.argv[0]) + ": " + std::strerror(rc));
  return pid;
}

int exit_status(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return exit_status(status);
}
}  // namespace

bool run_children(const std::vector<ChildJob>& jobs, std::size_t slots, const volatile std::sig_atomic_t* stop,
                  const std::function<bool(std::size_t, int)>& finished) {
  std::map<pid_t, std::size_t> running;
  std::size_t next = 0;
  bool more = true;
  while ((more && next < jobs.size()) || !running.empty()) {
    while (more && running.size() < slots && next < jobs.size() && !(stop && *stop)) {
      running.emplace(start(jobs[next]), next);
      ++next;
    }
    if (stop && *stop) {
      for (const auto& [pid, i] : running) ::kill(pid, SIGTERM);
      for (const auto& [pid, i] : running) wait_for(pid);
      return false;
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
    const std::size_t i = it->second;
    running.erase(it);
    more = finished(i, exit_status(status)) && more;
  }
  return true;
}

double time_children(const std::vector<ChildJob>& jobs, const std::string& what) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<pid_t> pids;
  for (const auto& j : jobs) pids.push_back(start(j));
  int failed = 0;
  std::size_t which = 0;
  for (std::size_t i = 0; i < pids.size(); ++i) {
    const int code = wait_for(pids[i]);
    if (code != 0 && !failed) {
      failed = code;
      which = i;
    }
  }
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (failed) {
    const std::string why = failure_line(jobs[which].log);
    throw std::runtime_error("compare: " + what + " failed (exit " + std::to_string(failed) + ")" + (why.empty() ? "" : ": " + why) +
                             "; its log is " + files::escape_bytes(jobs[which].log));
  }
  for (const auto& j : jobs) std::filesystem::remove(j.log);
  return t;
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

std::size_t available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return std::max(1u, std::thread::hardware_concurrency());
  return static_cast<std::size_t>(CPU_COUNT(&set));
}


}  // namespace xg::mnist
