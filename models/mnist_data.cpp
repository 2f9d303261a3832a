#include "models/mnist_data.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/errors.h"

namespace xg::mnist {

namespace {
std::string hex(unsigned v) {
  const char* d = "0123456789abcdef";
  return std::string("0x") + d[(v >> 4) & 15] + d[v & 15];
}
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | std::uint32_t(p[3]);
}
}  // namespace

IdxArray parse_idx(const std::uint8_t* b, std::size_t size, std::size_t expected_ndim, const std::string& source) {
  auto err = [&](std::size_t offset, const std::string& what) {
    return DataError(source + ": byte offset " + std::to_string(offset) + ": " + what);
  };
  if (size < 4) throw err(size, "truncated IDX header (" + std::to_string(size) + " bytes, need at least 4)");
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
  if (size < header)
    throw err(size, "truncated IDX header (" + std::to_string(size) + " bytes, the " + std::to_string(ndim) +
                        " dimensions need " + std::to_string(header) + ")");
  IdxArray out;
  std::size_t count = 1;
  for (std::size_t i = 0; i < ndim; ++i) {
    const std::uint32_t d = be32(b + 4 + 4 * i);
    if (d == 0) throw err(4 + 4 * i, "dimension " + std::to_string(i) + " is 0");
    if (count > std::numeric_limits<std::size_t>::max() / d)
      throw err(4 + 4 * i, "the dimension product overflows");
    count *= d;
    out.dims.push_back(d);
  }
  const std::size_t payload = size - header;
  if (count > payload)
    throw err(size, "truncated payload: the header promises " + std::to_string(count) + " bytes of data, the file has " +
                        std::to_string(payload));
  if (count < payload)
    throw err(header + count, std::to_string(payload - count) + " trailing bytes after the " + std::to_string(count) +
                                  " bytes the header promises");
  out.data.assign(b + header, b + size);  // allocated only now, and backed by the file
  return out;
}

std::vector<std::uint8_t> read_file(const std::string& path, std::size_t max_bytes) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw DataError(path + ": cannot open: " + (errno ? std::strerror(errno) : "unknown error"));
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> chunk(1 << 20);
  for (;;) {
    const int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const std::string msg = gzerror(f, &code);
      gzclose(f);
      throw DataError(path + ": byte offset " + std::to_string(out.size()) + " (decompressed): damaged gzip stream: " + msg);
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      gzclose(f);
      throw DataError(path + ": larger than the limit of " + std::to_string(max_bytes) + " bytes");
    }
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  int code = Z_OK;
  const std::string msg = gzerror(f, &code);
  const int closed = gzclose(f);
  // A truncated gzip stream ends with a clean EOF from gzread: only gzerror / gzclose reveal it.
  if (code != Z_OK && code != Z_STREAM_END)
    throw DataError(path + ": byte offset " + std::to_string(out.size()) + " (decompressed): damaged gzip stream: " + msg);
  if (closed != Z_OK)
    throw DataError(path + ": damaged gzip stream (truncated or bad checksum; gzclose returned " +
                    std::to_string(closed) + ")");
  return out;
}

std::vector<std::uint8_t> gunzip(const std::uint8_t* data, std::size_t size, const std::string& source,
                                 std::size_t max_bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw DataError(source + ": cannot initialise zlib");
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> chunk(1 << 16);
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(std::min<std::size_t>(size, UINT32_MAX));
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = chunk.data();
    zs.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    const std::size_t produced = chunk.size() - zs.avail_out;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {  // no progress and no input left: the stream was cut short
      inflateEnd(&zs);
      throw DataError(source + ": byte offset " + std::to_string(size) + ": truncated gzip stream");
    }
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const std::string msg = zs.msg ? zs.msg : "inflate error";
      inflateEnd(&zs);
      throw DataError(source + ": byte offset " + std::to_string(zs.total_in) + " (compressed): damaged gzip stream: " + msg);
    }
    if (out.size() + produced > max_bytes) {
      inflateEnd(&zs);
      throw DataError(source + ": inflates to more than the limit of " + std::to_string(max_bytes) + " bytes");
    }
    out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(produced));
    if (rc == Z_OK && zs.avail_in == 0 && produced == 0) {
      inflateEnd(&zs);
      throw DataError(source + ": byte offset " + std::to_string(size) + ": truncated gzip stream");
    }
  }
  inflateEnd(&zs);
  return out;
}

Dataset::Dataset(std::vector<std::uint8_t> pixels, std::vector<std::uint8_t> labels)
    : pixels_(std::move(pixels)), labels_(std::move(labels)) {
  if (pixels_.size() != labels_.size() * kPixels)
    throw DataError("dataset: " + std::to_string(pixels_.size()) + " pixel bytes do not make " +
                    std::to_string(labels_.size()) + " images of 28x28");
}

template <class T>
Tensor<T> Dataset::images(const std::vector<std::size_t>& idx) const {
  Tensor<T> out = Tensor<T>::from_shape({idx.size(), 1, kRows, kCols});
  T* po = out.data();
  const T scale = T(1) / T(255);
  for (std::size_t b = 0; b < idx.size(); ++b) {
    const std::uint8_t* src = pixels_.data() + idx[b] * kPixels;
    for (std::size_t i = 0; i < kPixels; ++i) po[b * kPixels + i] = static_cast<T>(src[i]) * scale;
  }
  return out;
}

ops::Labels Dataset::labels_of(const std::vector<std::size_t>& idx) const {
  ops::Labels out(idx.size());
  for (std::size_t b = 0; b < idx.size(); ++b) out[b] = labels_[idx[b]];
  return out;
}

Dataset Dataset::split_tail(std::size_t n) {
  if (n >= size())
    throw DataError("dataset: cannot hold out " + std::to_string(n) + " of " + std::to_string(size()) + " samples");
  const std::size_t keep = size() - n;
  Dataset tail(std::vector<std::uint8_t>(pixels_.begin() + static_cast<std::ptrdiff_t>(keep * kPixels), pixels_.end()),
               std::vector<std::uint8_t>(labels_.begin() + static_cast<std::ptrdiff_t>(keep), labels_.end()));
  pixels_.resize(keep * kPixels);
  labels_.resize(keep);
  return tail;
}

void Dataset::truncate(std::size_t n) {
  if (n >= size()) return;
  pixels_.resize(n * kPixels);
  labels_.resize(n);
}

Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path) {
  const auto ib = read_file(images_path);
  IdxArray images = parse_idx(ib.data(), ib.size(), 3, images_path);
  if (images.dims[1] != 28 || images.dims[2] != 28)
    throw DataError(images_path + ": byte offset 8: images are " + std::to_string(images.dims[1]) + "x" +
                    std::to_string(images.dims[2]) + ", expected 28x28");
  const auto lb = read_file(labels_path);
  IdxArray labels = parse_idx(lb.data(), lb.size(), 1, labels_path);
  if (images.dims[0] != labels.dims[0])
    throw DataError(images_path + " has " + std::to_string(images.dims[0]) + " images but " + labels_path + " has " +
                    std::to_string(labels.dims[0]) + " labels");
  for (std::size_t i = 0; i < labels.data.size(); ++i)
    if (labels.data[i] > 9)
      throw DataError(labels_path + ": byte offset " + std::to_string(8 + i) + ": label " +
                      std::to_string(labels.data[i]) + " of sample " + std::to_string(i) + " is not a digit 0-9");
  return Dataset(std::move(images.data), std::move(labels.data));
}

std::string find_idx_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  const fs::path raw = fs::path(dir) / stem, gz = fs::path(dir) / (stem + ".gz");
  if (fs::exists(raw)) return raw.string();
  if (fs::exists(gz)) return gz.string();
  throw DataError(dir + ": neither " + stem + " nor " + stem + ".gz exists");
}

Split load_mnist_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw DataError(dir + ": not a directory");
  Split s;
  s.train = load_idx_pair(find_idx_file(dir, "train-images-idx3-ubyte"), find_idx_file(dir, "train-labels-idx1-ubyte"));
  s.test = load_idx_pair(find_idx_file(dir, "t10k-images-idx3-ubyte"), find_idx_file(dir, "t10k-labels-idx1-ubyte"));
  return s;
}

std::vector<std::size_t> shuffled_indices(std::size_t n, Rng& rng) {
  std::vector<std::size_t> idx(n);
  for (std::size_t i = 0; i < n; ++i) idx[i] = i;
  for (std::size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);
  return idx;
}

void write_idx(const std::string& path, const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> out{0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
  out.insert(out.end(), data.begin(), data.end());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw DataError(path + ": cannot create: " + std::strerror(errno));
    f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
    if (!f.flush()) throw DataError(path + ": cannot write: " + std::strerror(errno));
  }
  std::filesystem::rename(tmp, path);
}

template Tensor<float> Dataset::images(const std::vector<std::size_t>&) const;
template Tensor<double> Dataset::images(const std::vector<std::size_t>&) const;

}  // namespace xg::mnist
