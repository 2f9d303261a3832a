#pragma once
/// \file job.h
/// Keeping the ranks of a distributed job in step (docs/distributed.md): every rank runs the same steps, and a failure
/// on any rank must end every rank with the same exit code and one message, never leave ranks waiting in a
/// collective. One process is a job of one rank; these helpers then just run the function.
///
///     auto data = train::on_every_rank(world, [&] { return load_my_data(); });  // throws JobError on every rank
///     train::on_rank0(world, [&] { xg::save(path, model, optimizer); });       // rank 0 writes, all agree
///
/// Exit codes (the mnist CLI's, docs/errors.md): 2 usage, 3 data, 4 checkpoint and files, 5 numeric, 1 other.

#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "dist/data_parallel.h"
#include "nn/checkpoint.h"

namespace xg::train {

inline constexpr int kExitUsage = 2, kExitData = 3, kExitCheckpoint = 4, kExitNumeric = 5;

/// The exit code for an exception: UsageError 2, DataError 3, CheckpointError and FileError 4, NumericError 5, else 1.
int exit_code_of(const std::exception& e);

/// A failure every rank knows about (agreed with dist::agree, or raised by all ranks from the same reduced values):
/// rank 0 reports it, and every rank exits with `code` after shutting MPI down in order.
struct JobError : std::runtime_error {
  JobError(int c, const std::string& m) : std::runtime_error(m), code(c) {}
  int code;
};

/// The message of an agreed failure: the failing rank's, prefixed with "rank R of K: " when R is not 0.
std::string job_message(const dist::Outcome& o, const dist::Communicator& world);

/// Runs `f` on every rank, then agrees: if it threw on any rank, every rank throws JobError with the lowest failing
/// rank's code and message (prefixed with "rank R of K: " when R is not 0). Returns f's result.
template <class F>
auto on_every_rank(dist::Communicator& world, F&& f) {
  int code = 0;
  std::string message;
  using R = decltype(f());
  std::optional<std::conditional_t<std::is_void_v<R>, int, R>> result;
  try {
    if constexpr (std::is_void_v<R>) {
      f();
      result = 0;
    } else {
      result.emplace(f());
    }
  } catch (const std::exception& e) {
    code = exit_code_of(e);
    message = e.what();
  }
  const dist::Outcome o = dist::agree(world, code, message);
  if (!o.ok()) throw JobError(o.code, job_message(o, world));
  if constexpr (!std::is_void_v<R>) return std::move(*result);
}

/// Runs `f` on rank 0 only (printing, files) and agrees on its outcome as on_every_rank does.
template <class F>
void on_rank0(dist::Communicator& world, F&& f) {
  on_every_rank(world, [&] {
    if (world.rank() == 0) f();
  });
}

/// Throws UsageError naming the first rank whose settings differ from rank 0's: `settings` is a JSON object text
/// (flag name → value, plus "command"), the same keys on every rank.
void check_same_settings(dist::Communicator& world, const std::string& settings_json);

/// Throws DataError on every rank when some rank loaded other data than rank 0: `fingerprint` describes this rank's
/// data (sizes and checksums, e.g. MnistDataset::fingerprint); the message names the rank and both fingerprints.
/// Identical flags can still name different data: a relative --data-dir resolves against each rank's directory.
void check_same_data(dist::Communicator& world, const std::string& fingerprint);

/// Reads a checkpoint on rank 0 and sends it to every rank (the other ranks need not see rank 0's files); every rank
/// parses and verifies it. Failures are agreed (JobError).
nn::Checkpoint load_checkpoint_everywhere(dist::Communicator& world, const std::string& path);

}  // namespace xg::train
