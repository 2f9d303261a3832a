#include "data/mnist.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include <memory>
#include <type_traits>

#include "core/dispatch.h"
#include "core/errors.h"
#include "core/files.h"

namespace xg::data {

namespace {
std::string hex(unsigned v) {
  const char* d = "0123456789abcdef";
  return std::string("0x") + d[(v >> 4) & 15] + d[v & 15];
}
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | std::uint32_t(p[3]);
}
}  // namespace

namespace {

/// Bytes from a file or from memory, read in order. read() returns 0 only at the end.
struct ByteSource {
  virtual ~ByteSource() = default;
  virtual std::size_t read(std::uint8_t* out, std::size_t n) = 0;
  /// Reads until `n` bytes or the end; returns how many were read.
  std::size_t read_full(std::uint8_t* out, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      const std::size_t r = read(out + done, n - done);
      if (r == 0) break;
      done += r;
    }
    return done;
  }
};

struct MemorySource : ByteSource {
  MemorySource(const std::uint8_t* d, std::size_t n) : data(d), size(n) {}
  std::size_t read(std::uint8_t* out, std::size_t n) override {
    const std::size_t k = std::min(n, size - pos);
    if (k) std::memcpy(out, data + pos, k);
    pos += k;
    return k;
  }
  const std::uint8_t* data;
  std::size_t size, pos = 0;
};

/// A regular file (a directory, a device such as /dev/zero, a FIFO or a symlink loop is refused on opening).
struct FileSource : ByteSource {
  explicit FileSource(const std::string& path) try : file(path, "data file") {
  } catch (const FileError& e) {
    throw DataError(e.what());
  }
  std::size_t read(std::uint8_t* out, std::size_t n) override {
    try {
      return file.read(out, n);
    } catch (const FileError& e) {
      throw DataError(e.what());
    }
  }
  files::RegularFile file;
};

/// Inflates the gzip stream read from `in`: one member, or several in a row as gzip(1) reads them. Truncation, a bad
/// checksum and anything after the last member that is not another member are errors naming `source`.
class GzipSource : public ByteSource {
 public:
  GzipSource(ByteSource& in, std::string source) : in_(in), source_(std::move(source)), buf_(1 << 16) {
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) throw DataError(source_ + ": cannot initialise zlib");
  }
  ~GzipSource() override { inflateEnd(&zs_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  std::size_t read(std::uint8_t* out, std::size_t n) override {
    if (n == 0) return 0;
    for (;;) {
      if (ended_) {  // after a member: another member, the end of the input, or garbage
        if (zs_.avail_in == 0 && !refill()) return 0;
        if (zs_.next_in[0] != 0x1f)
          throw DataError(source_ + ": byte offset " + std::to_string(consumed()) +
                          " (compressed): trailing bytes after the end of the gzip stream");
        inflateReset(&zs_);
        ended_ = false;
      }
      if (zs_.avail_in == 0 && !refill())
        throw DataError(source_ + ": byte offset " + std::to_string(consumed()) +
                        " (compressed): truncated gzip stream (it ends before the end of its last member)");
      zs_.next_out = out;
      zs_.avail_out = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      const std::size_t produced = static_cast<std::size_t>(zs_.next_out - out);
      if (rc == Z_STREAM_END) ended_ = true;
      else if (rc != Z_OK && !(rc == Z_BUF_ERROR && zs_.avail_in == 0))
        throw DataError(source_ + ": byte offset " + std::to_string(consumed()) + " (compressed): damaged gzip stream: " +
                        (zs_.msg ? zs_.msg : "inflate error " + std::to_string(rc)));
      if (produced) return produced;
    }
  }

 private:
  bool refill() {
    const std::size_t r = in_.read(buf_.data(), buf_.size());
    handed_ += r;
    zs_.next_in = buf_.data();
    zs_.avail_in = static_cast<uInt>(r);
    return r > 0;
  }
  std::size_t consumed() const { return handed_ - zs_.avail_in; }

  ByteSource& in_;
  std::string source_;
  std::vector<std::uint8_t> buf_;
  z_stream zs_{};
  bool ended_ = false;
  std::size_t handed_ = 0;  ///< compressed bytes read from in_ so far
};

/// The bytes of a file or buffer, inflated when they start with the gzip magic (1f 8b).
class MaybeGzip {
 public:
  MaybeGzip(ByteSource& raw, const std::string& source) {
    std::uint8_t head[2] = {};
    const std::size_t n = raw.read_full(head, 2);
    replay_ = std::make_unique<Replay>(raw, head, n);
    if (n == 2 && head[0] == 0x1f && head[1] == 0x8b) gz_ = std::make_unique<GzipSource>(*replay_, source);
  }
  ByteSource& source() { return gz_ ? static_cast<ByteSource&>(*gz_) : *replay_; }

 private:
  /// The bytes already read, then the rest.
  struct Replay : ByteSource {
    Replay(ByteSource& r, const std::uint8_t* h, std::size_t n) : raw(r), head(h, h + n) {}
    std::size_t read(std::uint8_t* out, std::size_t n) override {
      if (pos < head.size()) {
        const std::size_t k = std::min(n, head.size() - pos);
        std::memcpy(out, head.data() + pos, k);
        pos += k;
        return k;
      }
      return raw.read(out, n);
    }
    ByteSource& raw;
    std::vector<std::uint8_t> head;
    std::size_t pos = 0;
  };
  std::unique_ptr<Replay> replay_;
  std::unique_ptr<GzipSource> gz_;
};

/// Everything `src` yields, at most `max_bytes` (more is an error naming `source` and `what`).
std::vector<std::uint8_t> read_all(ByteSource& src, std::size_t max_bytes, const std::string& source, const char* what) {
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> chunk(1 << 16);
  for (;;) {
    const std::size_t n = src.read(chunk.data(), chunk.size());
    if (n == 0) return out;
    if (out.size() + n > max_bytes)
      throw DataError(source + ": " + what + " more than the limit of " + std::to_string(max_bytes) + " bytes");
    out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
  }
}

/// Trailing bytes are counted up to this many (a bomb is not read to its end to say how large it is).
constexpr std::size_t kMaxTrailingCount = std::size_t(1) << 20;

/// Reads one IDX array from `src`: the header first (checked before anything is allocated), then exactly the bytes
/// it promises (never more than `max_bytes`), then requires the end of the input.
IdxArray read_idx(ByteSource& src, std::size_t expected_ndim, const std::string& source, std::size_t max_bytes) {
  auto err = [&](std::size_t offset, const std::string& what) {
    return DataError(source + ": byte offset " + std::to_string(offset) + ": " + what);
  };
  std::uint8_t b[4 + 4 * 255];
  const std::size_t got = src.read_full(b, 4);
  if (got < 4) throw err(got, "truncated IDX header (" + std::to_string(got) + " bytes, need at least 4)");
  if (b[0] != 0 || b[1] != 0) {
    std::string hint;
    if (b[0] == 0x1f && b[1] == 0x8b) hint = " (this looks like a gzip stream read as raw bytes)";
    else if (b[0] == '<') hint = " (this looks like an HTML page)";
    else if (b[2] == 0 && b[3] == 0) hint = " (this looks like a little-endian header)";
    throw err(0, "bad IDX magic: the first two bytes must be 0, got " + hex(b[0]) + " " + hex(b[1]) + hint);
  }
  const unsigned type = b[2];
  if (type != 0x08) {
    const bool known = type == 0x09 || type == 0x0B || type == 0x0C || type == 0x0D || type == 0x0E;
    throw err(2, std::string(known ? "unsupported" : "unknown") + " IDX element type " + hex(type) +
                     " (MNIST files are unsigned bytes, type 0x08)");
  }
  const std::size_t ndim = b[3];
  if (ndim != expected_ndim)
    throw err(3, "expected " + std::to_string(expected_ndim) + " dimensions (" +
                     (expected_ndim == 3 ? "an image file" : "a label file") + "), got " + std::to_string(ndim) +
                     (ndim == 1 || ndim == 3 ? " (were the image and label files swapped?)" : ""));
  const std::size_t header = 4 + 4 * ndim;
  const std::size_t dims_got = src.read_full(b + 4, 4 * ndim);
  if (dims_got < 4 * ndim)
    throw err(4 + dims_got, "truncated IDX header (" + std::to_string(4 + dims_got) + " bytes, the " +
                                std::to_string(ndim) + " dimensions need " + std::to_string(header) + ")");
  IdxArray out;
  std::size_t count = 1;
  for (std::size_t i = 0; i < ndim; ++i) {
    const std::uint32_t d = be32(b + 4 + 4 * i);
    if (d == 0) throw err(4 + 4 * i, "dimension " + std::to_string(i) + " is 0");
    if (count > std::numeric_limits<std::size_t>::max() / d) throw err(4 + 4 * i, "the dimension product overflows");
    count *= d;
    out.dims.push_back(d);
  }
  if (count > max_bytes)
    throw err(4, "the header promises " + std::to_string(count) + " bytes of data, more than the limit of " +
                     std::to_string(max_bytes));
  // Read what the header promises in chunks, so that a short file costs only what it holds.
  constexpr std::size_t kChunk = std::size_t(1) << 24;
  while (out.data.size() < count) {
    const std::size_t want = std::min(kChunk, count - out.data.size());
    const std::size_t at = out.data.size();
    out.data.resize(at + want);
    const std::size_t r = src.read_full(out.data.data() + at, want);
    if (r < want)
      throw err(header + at + r, "truncated payload: the header promises " + std::to_string(count) +
                                     " bytes of data, the file has " + std::to_string(at + r));
  }
  std::size_t trailing = 0;
  std::uint8_t scratch[1 << 12];
  while (trailing <= kMaxTrailingCount) {
    const std::size_t r = src.read(scratch, sizeof scratch);
    if (r == 0) break;
    trailing += r;
  }
  if (trailing > kMaxTrailingCount)
    throw err(header + count, "more than " + std::to_string(kMaxTrailingCount) + " trailing bytes after the " +
                                  std::to_string(count) + " bytes the header promises");
  if (trailing)
    throw err(header + count, std::to_string(trailing) + " trailing bytes after the " + std::to_string(count) +
                                  " bytes the header promises");
  return out;
}

}  // namespace

IdxArray parse_idx(const std::uint8_t* b, std::size_t size, std::size_t expected_ndim, const std::string& source) {
  MemorySource m(b, size);
  return read_idx(m, expected_ndim, source, kMaxFileBytes);
}

IdxArray read_idx_file(const std::string& path, std::size_t expected_ndim, std::size_t max_bytes) {
  FileSource f(path);
  MaybeGzip in(f, path);
  return read_idx(in.source(), expected_ndim, path, max_bytes);
}

std::vector<std::uint8_t> read_file(const std::string& path, std::size_t max_bytes) {
  FileSource f(path);
  MaybeGzip in(f, path);
  return read_all(in.source(), max_bytes, path, "larger than the limit: holds");
}

std::vector<std::uint8_t> gunzip(const std::uint8_t* data, std::size_t size, const std::string& source,
                                 std::size_t max_bytes) {
  MemorySource m(data, size);
  GzipSource gz(m, source);
  return read_all(gz, max_bytes, source, "inflates to");
}

MnistDataset::MnistDataset(std::vector<std::uint8_t> pixels, std::vector<std::uint8_t> labels, std::string name)
    : pixels_(std::move(pixels)), labels_(std::move(labels)), name_(std::move(name)) {
  if (pixels_.size() != labels_.size() * kPixels)
    throw DataError("dataset: " + std::to_string(pixels_.size()) + " pixel bytes do not make " +
                    std::to_string(labels_.size()) + " images of 28x28");
}

namespace {
/// dst[i] = src[i] / 255 as src[i] · (1/255): one rounding, so every instruction set gives the same bits.
XG_KERNEL void bytes_to_unit_kernel(const std::uint8_t* src, float* dst, std::size_t n) {
  const float scale = 1.0f / 255.0f;
  for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) * scale;
}
// Compiled per instruction set: at the baseline (SSE2) the byte-to-float widening was 5–7% of a seed training step.
XG_DISPATCH(bytes_to_unit, (const std::uint8_t* src, float* dst, std::size_t n), (src, dst, n))
}  // namespace

template <class T>
Tensor<T> MnistDataset::images(const std::vector<std::size_t>& idx) const {
  Tensor<T> out = xg::empty<T>({idx.size(), 1, kRows, kCols});
  T* po = out.data();
  const T scale = T(1) / T(255);
  for (std::size_t b = 0; b < idx.size(); ++b) {
    const std::uint8_t* src = pixels_.data() + idx[b] * kPixels;
    if constexpr (std::is_same_v<T, float>) bytes_to_unit(src, po + b * kPixels, kPixels);
    else for (std::size_t i = 0; i < kPixels; ++i) po[b * kPixels + i] = static_cast<T>(src[i]) * scale;
  }
  return out;
}

std::string MnistDataset::fingerprint() const {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&h](const std::vector<std::uint8_t>& bytes) {
    std::size_t i = 0;
    for (; i + 8 <= bytes.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, bytes.data() + i, 8);
      h = (h ^ w) * 0x100000001b3ULL;
      h ^= h >> 29;
    }
    for (; i < bytes.size(); ++i) h = (h ^ bytes[i]) * 0x100000001b3ULL;
    h = (h ^ bytes.size()) * 0x100000001b3ULL;
  };
  mix(pixels_);
  mix(labels_);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::to_string(size()) + " images, checksum " + hex;
}

Batch MnistDataset::get_batch(const std::vector<std::size_t>& indices) const {
  check_indices(indices);
  Batch b;
  b.inputs = images<float>(indices);
  b.targets = labels_of(indices);
  b.indices = indices;
  b.global_size = indices.size();
  return b;
}

Labels MnistDataset::labels_of(const std::vector<std::size_t>& idx) const {
  Labels out(idx.size());
  for (std::size_t b = 0; b < idx.size(); ++b) out[b] = labels_[idx[b]];
  return out;
}

MnistDataset MnistDataset::split_tail(std::size_t n) {
  if (n >= size())
    throw DataError("dataset: cannot hold out " + std::to_string(n) + " of " + std::to_string(size()) + " samples");
  const std::size_t keep = size() - n;
  MnistDataset tail(std::vector<std::uint8_t>(pixels_.begin() + static_cast<std::ptrdiff_t>(keep * kPixels), pixels_.end()),
               std::vector<std::uint8_t>(labels_.begin() + static_cast<std::ptrdiff_t>(keep), labels_.end()));
  pixels_.resize(keep * kPixels);
  labels_.resize(keep);
  return tail;
}

MnistDataset MnistDataset::split_evenly(std::size_t n) {
  if (n >= size())
    throw DataError("dataset: cannot hold out " + std::to_string(n) + " of " + std::to_string(size()) + " samples");
  std::vector<bool> out(size(), false);
  for (std::size_t k = 0; k < n; ++k) out[k * size() / n] = true;
  std::vector<std::uint8_t> kp, kl, hp, hl;
  for (std::size_t i = 0; i < size(); ++i) {
    auto& px = out[i] ? hp : kp;
    px.insert(px.end(), pixels_.begin() + static_cast<std::ptrdiff_t>(i * kPixels),
              pixels_.begin() + static_cast<std::ptrdiff_t>((i + 1) * kPixels));
    (out[i] ? hl : kl).push_back(labels_[i]);
  }
  pixels_ = std::move(kp);
  labels_ = std::move(kl);
  return MnistDataset(std::move(hp), std::move(hl), name_ + " (validation)");
}

void MnistDataset::truncate(std::size_t n) {
  if (n >= size()) return;
  pixels_.resize(n * kPixels);
  labels_.resize(n);
}

MnistDataset load_idx_pair(const std::string& images_path, const std::string& labels_path) {
  IdxArray images = read_idx_file(images_path, 3);
  if (images.dims[1] != 28 || images.dims[2] != 28)
    throw DataError(images_path + ": byte offset 8: images are " + std::to_string(images.dims[1]) + "x" +
                    std::to_string(images.dims[2]) + ", expected 28x28");
  IdxArray labels = read_idx_file(labels_path, 1);
  if (images.dims[0] != labels.dims[0])
    throw DataError(images_path + " has " + std::to_string(images.dims[0]) + " images but " + labels_path + " has " +
                    std::to_string(labels.dims[0]) + " labels");
  for (std::size_t i = 0; i < labels.data.size(); ++i)
    if (labels.data[i] > 9)
      throw DataError(labels_path + ": byte offset " + std::to_string(8 + i) + ": label " +
                      std::to_string(labels.data[i]) + " of sample " + std::to_string(i) + " is not a digit 0-9");
  return MnistDataset(std::move(images.data), std::move(labels.data), images_path);
}

std::string find_idx_file(const std::string& dir, const std::string& stem) {
  // stat, not std::filesystem::exists: a symlink loop is reported as a data error naming the path.
  for (const std::string& p : {dir + "/" + stem, dir + "/" + stem + ".gz"}) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) return p;
    if (errno != ENOENT) throw DataError(files::escape_bytes(p) + ": " + std::strerror(errno));
  }
  throw DataError(files::escape_bytes(dir) + ": neither " + stem + " nor " + stem + ".gz exists");
}

void check_data_dir(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    throw DataError(files::escape_bytes(dir) + ": " +
                    (errno == ENOENT ? std::string("no such directory") : std::string(std::strerror(errno))));
  if (!S_ISDIR(st.st_mode)) throw DataError(files::escape_bytes(dir) + ": not a directory (--data-dir names the directory that holds the four IDX files)");
}

Split load_mnist_dir(const std::string& dir) {
  check_data_dir(dir);
  Split s;
  s.train = load_idx_pair(find_idx_file(dir, "train-images-idx3-ubyte"), find_idx_file(dir, "train-labels-idx1-ubyte"));
  s.test = load_idx_pair(find_idx_file(dir, "t10k-images-idx3-ubyte"), find_idx_file(dir, "t10k-labels-idx1-ubyte"));
  return s;
}

void write_idx(const std::string& path, const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> out{0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
  out.insert(out.end(), data.begin(), data.end());
  files::write_atomic(path, out.data(), out.size(), "IDX file");
}

template Tensor<float> MnistDataset::images(const std::vector<std::size_t>&) const;
template Tensor<double> MnistDataset::images(const std::vector<std::size_t>&) const;

}  // namespace xg::data
