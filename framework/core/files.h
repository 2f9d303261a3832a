#pragma once
/// \file files.h
/// Safe file input and output: the one place where xgrad opens a file it reads whole or writes.
///
/// The rule for every file xgrad writes (checkpoints, metrics, PNGs, DOT graphs, IDX files): the path must be a
/// regular file or not exist, and its directory must exist. A symbolic link is followed to its final target (the write
/// lands there, atomically, in the target's directory); a chain longer than 40 links is refused. Anything else — a
/// directory, a character or block device such as /dev/null, a FIFO, a socket — is refused with FileError before a
/// byte is written, so xgrad never replaces a device node or turns a symlink into a file.
///
/// Reads go through read_regular_file / RegularFile: the file must be regular too (a directory, /dev/zero or a FIFO
/// is refused before anything is read), and is never read past the caller's limit.
///
/// Paths are bytes: nothing here assumes UTF-8. escape_bytes() makes any path printable and JSON-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xg::files {

/// Where a write to `path` lands: `path` itself when it is a regular file or absent, the final target when it is a
/// symbolic link. Throws FileError naming `what` (e.g. "--save") and the path when the target exists and is not a
/// regular file, when its directory does not exist or is not a directory, or when the links loop.
std::string output_target(const std::string& path, const std::string& what);

/// Checks that `dir` is a directory, or absent in an existing directory (then creates it; never its parents). Throws
/// FileError naming `what` otherwise.
void ensure_output_dir(const std::string& dir, const std::string& what);

/// Writes `size` bytes to `path` atomically: a temporary file in the target's directory (its name kept within
/// NAME_MAX), fsync, rename over the target, fsync of the directory. A crash leaves the old file or the new one.
/// Throws FileError (with the OS reason, e.g. "File too large") and leaves any previous file unchanged.
void write_atomic(const std::string& path, const void* data, std::size_t size, const std::string& what);

/// Checks now what write_atomic(path) will need later: the target passes output_target, and a temporary file can be
/// created in its directory (made and removed again). Throws FileError naming `what` — for a read-only directory
/// or file system, before any work whose result would then be lost.
void check_writable(const std::string& path, const std::string& what);

/// The temporary name write_atomic uses for `base` in its directory: `.BASE.tmp.PID`, or, when that would exceed
/// NAME_MAX (255 bytes), BASE cut short and followed by a hash of the whole name.
std::string temporary_name(const std::string& base, long pid);

/// A regular file opened for appending (created when absent). Every write is complete or throws FileError.
class AppendFile {
 public:
  AppendFile() = default;
  /// Opens `path` (see output_target) for appending; throws FileError naming `what`.
  AppendFile(const std::string& path, const std::string& what);
  AppendFile(AppendFile&& o) noexcept;
  AppendFile& operator=(AppendFile&& o) noexcept;
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  ~AppendFile();

  bool is_open() const { return fd_ >= 0; }
  /// Size in bytes when it was opened (0 for a new file).
  std::uint64_t initial_size() const { return initial_size_; }
  /// Appends `text` completely (retrying short writes), or throws FileError and cuts the file back to its size before
  /// the call: a failed write (a full disk) never leaves a torn line.
  void write(std::string_view text);
  /// Cuts the file to its first `size` bytes (no-op when it is not longer).
  void truncate(std::uint64_t size);

 private:
  int fd_ = -1;
  std::uint64_t initial_size_ = 0;
  std::string path_, what_;
};

/// A regular file opened for reading (directories, devices, FIFOs, sockets and link loops are refused).
class RegularFile {
 public:
  /// Throws FileError naming `what` and the path, with a message that says what is there instead.
  RegularFile(const std::string& path, const std::string& what);
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;
  ~RegularFile();

  std::uint64_t size() const { return size_; }
  /// Reads up to `n` bytes; returns how many were read (0 at the end). Throws FileError on an I/O error.
  std::size_t read(void* out, std::size_t n);
  /// Reads exactly `n` bytes or throws FileError ("the file ends after … bytes").
  void read_exact(void* out, std::size_t n);
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::uint64_t size_ = 0, offset_ = 0;
  std::string path_, what_;
};

/// Reads a whole regular file of at most `max_bytes` bytes (checked against its size before reading).
std::vector<std::uint8_t> read_regular_file(const std::string& path, std::size_t max_bytes, const std::string& what);

/// `s` with every byte that is not printable ASCII or part of a valid UTF-8 sequence written as \xHH, and every
/// backslash doubled: printable, valid UTF-8 (so JSON can hold it), and different for different inputs.
std::string escape_bytes(std::string_view s);

/// The inverse of escape_bytes: `\\` and `\xHH` back to their bytes. Throws FileError for any other backslash
/// sequence (text escape_bytes did not write).
std::string unescape_bytes(std::string_view s);

/// Whether writes to `a` and `b` would land in the same file: the same inode when the targets exist, the same
/// resolved path otherwise (symlinks followed, "./x" and "x" alike).
bool same_file(const std::string& a, const std::string& b);

/// `s` fit for one line of a terminal: control characters and bytes that are not valid UTF-8 as \xHH, everything
/// else (backslashes included) as it is. For messages that already quote paths escaped and may carry user text.
std::string printable(std::string_view s);

}  // namespace xg::files
