#pragma once
/// \file errors.h
/// The exception types xgrad throws. Every message names the op (or file) and the offending shapes or values.

#include <stdexcept>
#include <string>

namespace xg {

/// Bad argument or shape at an op or layer call (raised when the op is called, never later in backward).
struct ShapeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// Misuse of the graph: backward twice through a freed graph, a non-scalar root without a gradient, etc.
struct GraphError : std::logic_error {
  using std::logic_error::logic_error;
};

/// A non-finite value (NaN or Inf) in a loss, an output or a gradient.
struct NumericError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A corrupt or unreadable data file (IDX, gzip, npm JSON). Names the file and the byte offset.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A checkpoint that cannot be written or read, or that does not match the model.
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A file xgrad must not or cannot write (or read whole): not a regular file, a missing directory, a symlink loop,
/// an I/O error such as a full disk. Names the role (e.g. "--metrics") and the path. See core/files.h.
struct FileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A program invoked wrongly: a flag's value, a contradiction between flags, ranks given different flags. Programs map
/// it to their usage exit code (2 in the mnist CLI).
struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

}  // namespace xg
