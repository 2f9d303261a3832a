#pragma once
/// \file checkpoint.h
/// Versioned, checksummed checkpoints, written atomically.
///
/// Layout (little-endian): magic "XGCK\r\n\x1a\n" · u32 version · u64 header length · JSON header (architecture,
/// free-form metadata, and per tensor: name, dtype, shape, offset, nbytes, crc32) · zero padding to 64 bytes ·
/// payload (each tensor 64-byte aligned) · u32 CRC32 of everything before it · "XGEND\0\0\0".
/// The header is parsed with bounded nesting (32 levels) and size (16 MiB), and tensor names must be unique.
/// Saving follows the rules of core/files.h (a regular file or a new one; a symlink is followed) and writes a
/// temporary file in the target's directory, fsyncs it, renames it over the target and fsyncs the
/// directory, so a crash leaves either the old or the new file, never a half-written one. Loading verifies
/// everything (sizes, offsets, every CRC) before anything is handed to a model; copying into a module is all or nothing.

#include <cstdint>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/tensor.h"
#include "nn/module.h"

namespace xg::nn {

/// One stored tensor: raw little-endian bytes of dtype "f32" or "f64".
struct CheckpointTensor {
  std::string name;
  std::string dtype;
  Shape shape;
  std::vector<std::uint8_t> bytes;
};

/// The in-memory contents of a checkpoint.
struct Checkpoint {
  static constexpr std::uint32_t kVersion = 1;
  std::string arch;               ///< architecture description; a model of another architecture is refused
  std::string meta_json = "{}";   ///< a JSON object of free-form metadata (epoch, RNG state, configuration…)
  std::vector<CheckpointTensor> tensors;

  template <class T>
  void add(const std::string& name, const Tensor<T>& t);
  bool has(const std::string& name) const;
  /// The tensor `name` as T; throws CheckpointError when missing or of another dtype.
  template <class T>
  Tensor<T> get(const std::string& name) const;
};

/// Writes `ck` to `path` atomically. Throws CheckpointError (with the OS reason) and leaves any previous file intact.
void save_checkpoint(const std::string& path, const Checkpoint& ck);
/// Reads and fully verifies a checkpoint file (at most `max_bytes`).
Checkpoint load_checkpoint(const std::string& path, std::size_t max_bytes = std::size_t(1) << 32);
/// The bytes `save_checkpoint` writes (e.g. to send a checkpoint to other processes).
std::vector<std::uint8_t> serialize_checkpoint(const Checkpoint& ck);
/// Lays out a header (JSON text, taken as it is) and a payload with the magic, version, padding, checksum and end
/// marker: the container without the meaning. For tools, tests and the structure-aware fuzzer, which mutate headers
/// behind valid checksums; save_checkpoint is the way to write a checkpoint.
std::vector<std::uint8_t> frame_checkpoint(const std::string& header_json, const std::vector<std::uint8_t>& payload);
/// The CRC-32 checkpoints use (zlib's), over any length.
std::uint32_t checkpoint_crc32(const std::uint8_t* data, std::size_t size);
/// Parses and verifies a checkpoint held in memory; `source` names it in errors.
Checkpoint parse_checkpoint(const std::uint8_t* data, std::size_t size, const std::string& source);

/// Adds every parameter of `m` as `prefix + name`.
template <class T>
void add_module(Checkpoint& ck, Module<T>& m, const std::string& prefix = "model.");
/// Every difference between the parameters stored under `prefix` and those of `m` (missing, unexpected and
/// mis-shaped tensors) as one message; empty when they match.
template <class T>
std::string module_mismatch(Module<T>& m, const Checkpoint& ck, const std::string& prefix = "model.");
/// The differences between the architecture record `arch` a checkpoint stores and `m.architecture()`, joined by
/// "; " — each names where it is and both values: "conv.stride: the checkpoint has (1, 1), this model (2, 2)".
/// Empty when they are equal, and for checkpoints that carry no record: empty, or the display string the previous
/// release stored (those are checked by their tensors only). CheckpointError for a record that is not valid JSON.
template <class T>
std::string architecture_difference(const std::string& arch, const Module<T>& m);
/// Refuses a checkpoint whose architecture or tensors under `prefix` are not m's: CheckpointError, starting with
/// `where`, naming every architecture difference and every missing, unexpected and mis-shaped tensor. The one check
/// load_module, xg::load and the Trainer's resume run before they change anything.
template <class T>
void check_matches(const Checkpoint& ck, Module<T>& m, const std::string& where = "", const std::string& prefix = "model.");
/// Copies the parameters stored under `prefix` into `m`. Refuses (CheckpointError listing every missing, unexpected
/// and mis-shaped tensor, and an architecture mismatch) without changing `m` unless everything matches.
template <class T>
void load_module(Module<T>& m, const Checkpoint& ck, const std::string& prefix = "model.");

}  // namespace xg::nn
