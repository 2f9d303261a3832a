#pragma once
/// \file mnist.h
/// MNIST-format data (MNIST, Fashion-MNIST, any 28×28 IDX pair): a validating IDX parser over a byte span, a file
/// reader that inflates gzip transparently and detects truncated or damaged streams, and the image/label dataset.
/// Every problem raises `xg::DataError` naming the file, the byte offset where one applies, and what is wrong.

#include <cstdint>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"
#include "data/dataset.h"

namespace xg::data {

/// A parsed IDX array of unsigned bytes (type 0x08): dims and row-major data.
struct IdxArray {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;
};

/// The largest file (after inflation) the reader accepts: 1 GiB.
inline constexpr std::size_t kMaxFileBytes = std::size_t(1) << 30;

/// Parses an IDX byte span of `expected_ndim` dimensions and type 0x08 (unsigned byte). `source` names the file in
/// errors. Checks the zero bytes, type, rank, that no dimension is 0, that the dimension product does not overflow
/// and matches the payload exactly (short and trailing bytes are both errors), all before allocating.
IdxArray parse_idx(const std::uint8_t* bytes, std::size_t size, std::size_t expected_ndim, const std::string& source);

/// Reads an IDX file (raw, or gzip when it starts with 1f 8b) as a stream: the header first, then exactly the bytes it
/// promises (refused before reading when that is more than `max_bytes`), then the end of the file — trailing bytes,
/// also after the gzip stream, are errors, and a gzip bomb is never inflated past the promise. The path must be a
/// regular file: a directory, a device (/dev/zero), a FIFO or a symlink loop is a DataError naming it.
IdxArray read_idx_file(const std::string& path, std::size_t expected_ndim, std::size_t max_bytes = kMaxFileBytes);

/// Reads a whole regular file, inflating it when it starts with the gzip magic. A truncated or corrupt gzip stream,
/// bytes after it and more than `max_bytes` of content are errors.
std::vector<std::uint8_t> read_file(const std::string& path, std::size_t max_bytes = kMaxFileBytes);

/// Inflates a gzip stream held in memory (the in-memory twin of read_file's gzip layer, used by the fuzzer).
/// Truncated or corrupt streams and outputs larger than `max_bytes` raise DataError naming `source`.
std::vector<std::uint8_t> gunzip(const std::uint8_t* data, std::size_t size, const std::string& source,
                                 std::size_t max_bytes = kMaxFileBytes);

/// Images [N,28,28] as bytes and their labels (0–9); as a data::Dataset, examples are [1,28,28] floats in [0, 1].
class MnistDataset : public Dataset {
 public:
  static constexpr std::size_t kRows = 28, kCols = 28, kPixels = kRows * kCols;
  MnistDataset() = default;
  MnistDataset(std::vector<std::uint8_t> pixels, std::vector<std::uint8_t> labels, std::string name = "MNIST-format set");

  std::size_t size() const override { return labels_.size(); }
  Shape example_shape() const override { return {1, kRows, kCols}; }
  std::size_t classes() const override { return 10; }
  Batch get_batch(const std::vector<std::size_t>& indices) const override;
  std::string name() const override { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  const std::vector<std::uint8_t>& pixels() const { return pixels_; }
  const std::vector<std::uint8_t>& labels() const { return labels_; }

  /// Images `indices` as floats in [0, 1], shape [B,1,28,28], and their labels.
  template <class T = float>
  Tensor<T> images(const std::vector<std::size_t>& indices) const;
  Labels labels_of(const std::vector<std::size_t>& indices) const;
  /// The last `n` samples split off (returned); this dataset keeps the rest.
  MnistDataset split_tail(std::size_t n);
  /// `n` evenly spaced samples (those at k·size/n, k < n) split off (returned, in order); this dataset keeps the rest
  /// in order. A fixed split that keeps every class when the file is sorted by class (the npm digits are).
  MnistDataset split_evenly(std::size_t n);
  /// The first `n` samples only (for quick runs).
  void truncate(std::size_t n);
  /// "N images, checksum H": H a 64-bit FNV-1a-style hash of the pixels and labels (8 bytes a step). Two sets with the
  /// same fingerprint hold the same images in the same order, for all practical purposes; used to check that MPI ranks
  /// and a resumed run train on the data the run started with.
  std::string fingerprint() const;

 private:
  std::vector<std::uint8_t> pixels_;
  std::vector<std::uint8_t> labels_;
  std::string name_ = "MNIST-format set";
};

/// Loads an image file and a label file (raw or .gz) and checks them against each other:
/// images of rank 3 with 28×28 rows/cols, labels of rank 1, the same count, every label ≤ 9.
MnistDataset load_idx_pair(const std::string& images_path, const std::string& labels_path);

/// Training and test (held-out) sets.
struct Split {
  MnistDataset train, test;
};

/// Finds `stem` or `stem.gz` in `dir`; throws DataError naming both when neither exists.
std::string find_idx_file(const std::string& dir, const std::string& stem);
/// Throws DataError unless `dir` is an existing directory (naming what is there instead, or the OS reason).
void check_data_dir(const std::string& dir);
/// Loads the four standard files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-…) from `dir`.
Split load_mnist_dir(const std::string& dir);

/// Writes an IDX file of unsigned bytes (uncompressed): the inverse of parse_idx.
void write_idx(const std::string& path, const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& data);

}  // namespace xg::data
