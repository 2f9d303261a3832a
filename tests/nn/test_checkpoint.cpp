// Checkpoints: round trip, every truncation, header and payload flips, architecture mismatch, failed writes.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "helpers.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"

using namespace xg;
using namespace xg::nn;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("xgrad_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
std::vector<std::uint8_t> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
Checkpoint small_checkpoint(Linear<>& fc) {
  Checkpoint ck;
  ck.arch = fc.describe();
  ck.meta_json = R"({"epoch": 3})";
  add_module(ck, fc);
  return ck;
}
}  // namespace

TEST_SUITE("checkpoint") {

TEST_CASE("a saved module loads back bit for bit with its metadata") {
  const auto dir = temp_dir("roundtrip");
  manual_seed(1);
  Linear<> a(5, 3);
  save_checkpoint((dir / "m.xgck").string(), small_checkpoint(a));
  manual_seed(2);
  Linear<> b(5, 3);
  CHECK_FALSE(xgt::bit_equal(a.weight.value(), b.weight.value()));
  const Checkpoint ck = load_checkpoint((dir / "m.xgck").string());
  load_module(b, ck);
  CHECK(xgt::bit_equal(a.weight.value(), b.weight.value()));
  CHECK(xgt::bit_equal(a.bias.value(), b.bias.value()));
  CHECK(ck.meta_json == R"({"epoch":3})");
  CHECK(ck.arch == a.describe());
  CHECK(fs::directory_iterator(dir) != fs::directory_iterator());
  for (const auto& e : fs::directory_iterator(dir)) CHECK(e.path().filename() == "m.xgck");  // no temp file left
  fs::remove_all(dir);
}

TEST_CASE("truncation at every offset and every single-byte flip in the header are refused") {
  manual_seed(3);
  Linear<> fc(3, 2);
  const auto dir = temp_dir("corrupt");
  const auto path = (dir / "m.xgck").string();
  save_checkpoint(path, small_checkpoint(fc));
  const auto bytes = read_all(path);
  for (std::size_t len = 0; len < bytes.size(); ++len)
    CHECK_THROWS_AS(parse_checkpoint(bytes.data(), len, "truncated"), CheckpointError);
  const std::uint64_t hlen = [&] {
    std::uint64_t v;
    std::memcpy(&v, bytes.data() + 12, 8);
    return v;
  }();
  std::size_t flips = 0;
  for (std::size_t i = 0; i < 20 + hlen; ++i) {
    auto copy = bytes;
    copy[i] ^= 0x01;
    CHECK_THROWS_AS(parse_checkpoint(copy.data(), copy.size(), "flipped"), CheckpointError);
    ++flips;
  }
  for (std::size_t i = 20 + hlen; i < bytes.size(); i += 7) {  // sampled payload and trailer flips
    auto copy = bytes;
    copy[i] ^= 0x80;
    CHECK_THROWS_AS(parse_checkpoint(copy.data(), copy.size(), "flipped"), CheckpointError);
  }
  CHECK(flips > 100);
  fs::remove_all(dir);
}

TEST_CASE("loading into another architecture lists every mismatch and leaves the model unchanged") {
  manual_seed(4);
  Sequential<> a;
  a.add<Linear<>>(4, 3);
  a.add<Linear<>>(3, 2);
  Checkpoint ck;
  ck.arch = a.describe();
  add_module(ck, a);
  Sequential<> b;
  b.add<Linear<>>(4, 5);
  b.add<Linear<>>(LinearOptions{.in = 5, .out = 2, .bias = false});
  b.add<Linear<>>(2, 2);
  const auto before = b.parameters()[0].value();
  try {
    load_module(b, ck);
    FAIL("expected a CheckpointError");
  } catch (const CheckpointError& e) {
    const std::string m = e.what();
    CHECK(m.find("model.0.weight: checkpoint has f32 [3,4], the model has f32 [5,4]") != std::string::npos);
    CHECK(m.find("missing: model.2.weight model.2.bias") != std::string::npos);
    CHECK(m.find("unexpected: model.1.bias") != std::string::npos);
  }
  CHECK(xgt::bit_equal(before, b.parameters()[0].value()));
}

TEST_CASE("a failed save keeps the previous checkpoint intact and names the path") {
  manual_seed(5);
  Linear<> fc(3, 2);
  CHECK_THROWS_WITH_AS(save_checkpoint("/nonexistent-dir/m.xgck", small_checkpoint(fc)),
                       doctest::Contains("/nonexistent-dir/m.xgck"), CheckpointError);
  CHECK_THROWS_WITH_AS(load_checkpoint("/nonexistent-dir/m.xgck"), doctest::Contains("cannot open"), CheckpointError);
  if (::geteuid() != 0) return;  // the read-only case below needs a filesystem that refuses root: /proc
  CHECK_THROWS_AS(save_checkpoint("/proc/xgrad.xgck", small_checkpoint(fc)), CheckpointError);
}

}  // TEST_SUITE

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

TEST_SUITE("checkpoint faults") {

TEST_CASE("a save killed with SIGKILL at 40 moments always leaves a complete old or new checkpoint") {
  const auto dir = temp_dir("kill");
  const auto path = (dir / "m.xgck").string();
  manual_seed(10);
  Linear<> a(300, 300), b(300, 300);  // ~360 KB each, so a write takes a while
  Checkpoint ca = small_checkpoint(a), cb = small_checkpoint(b);
  save_checkpoint(path, ca);
  int completed_kills = 0;
  for (int k = 0; k < 40; ++k) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // the child saves alternately until it is killed
      for (int i = 0;; ++i) save_checkpoint(path, (i + k) % 2 ? ca : cb);
    }
    ::usleep(static_cast<useconds_t>(200 + 500 * k));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    completed_kills += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    const Checkpoint got = load_checkpoint(path);  // must not throw: never half-written under the final name
    REQUIRE(got.tensors.size() == 2);
    const bool is_a = got.tensors[0].bytes == ca.tensors[0].bytes, is_b = got.tensors[0].bytes == cb.tensors[0].bytes;
    CHECK((is_a || is_b));
  }
  CHECK(completed_kills == 40);
  save_checkpoint(path, ca);  // a later save removes the temporaries the killed saves left behind
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++files;
    CHECK(e.path().filename() == "m.xgck");
  }
  CHECK(files == 1);
  fs::remove_all(dir);
}

TEST_CASE("a save that runs out of space fails with a clear error and keeps the previous checkpoint intact") {
  const auto dir = temp_dir("full");
  const auto path = (dir / "m.xgck").string();
  manual_seed(11);
  Linear<> small(3, 2), big(300, 300);
  save_checkpoint(path, small_checkpoint(small));
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // a file-size limit of 64 KiB makes write() fail with EFBIG, like a full disk
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit rl{65536, 65536};
    ::setrlimit(RLIMIT_FSIZE, &rl);
    try {
      save_checkpoint(path, small_checkpoint(big));
      ::_exit(1);
    } catch (const CheckpointError& e) {
      const std::string m = e.what();
      ::_exit(m.find("cannot write") != std::string::npos && m.find("unchanged") != std::string::npos ? 0 : 2);
    } catch (...) {
      ::_exit(3);
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  Linear<> restored(3, 2);
  load_module(restored, load_checkpoint(path));
  CHECK(xgt::bit_equal(restored.weight.value(), small.weight.value()));
  for (const auto& e : fs::directory_iterator(dir)) CHECK(e.path().filename() == "m.xgck");  // the temp file is gone
  fs::remove_all(dir);
}

TEST_CASE("duplicate tensor names are refused when saving and when loading") {
  Checkpoint ck;
  ck.add("model.w", zeros<float>({2}));
  ck.add("model.w", zeros<float>({3}));
  CHECK_THROWS_WITH_AS(serialize_checkpoint(ck), doctest::Contains("two tensors are named 'model.w'"), CheckpointError);
  // A file that names two tensors alike (valid checksums around a crafted header).
  const std::string header = R"({"format":"xgrad-checkpoint","arch":"a","meta":{},"tensors":[)"
                             R"({"name":"t","dtype":"f32","shape":[0],"offset":0,"nbytes":0,"crc32":0},)"
                             R"({"name":"t","dtype":"f32","shape":[0],"offset":0,"nbytes":0,"crc32":0}]})";
  const auto bytes = frame_checkpoint(header, {});
  CHECK_THROWS_WITH_AS(parse_checkpoint(bytes.data(), bytes.size(), "dup"), doctest::Contains("two tensors are named 't'"), CheckpointError);
}

TEST_CASE("a header nested 200,000 deep behind valid checksums is a CheckpointError, not a stack overflow") {
  const std::string header = R"({"format":"xgrad-checkpoint","arch":"a","meta":)" + std::string(200000, '[') +
                             std::string(200000, ']') + R"(,"tensors":[]})";
  const auto bytes = frame_checkpoint(header, {});
  CHECK_THROWS_WITH_AS(parse_checkpoint(bytes.data(), bytes.size(), "deep"), doctest::Contains("nested deeper than 32 levels"), CheckpointError);
  Checkpoint ck;
  ck.meta_json = std::string(100, '[') + std::string(100, ']');
  CHECK_THROWS_AS(serialize_checkpoint(ck), CheckpointError);
}

TEST_CASE("loading a directory, a device or a huge non-checkpoint says what it is, without reading it") {
  CHECK_THROWS_WITH_AS(load_checkpoint("/tmp"), doctest::Contains("is a directory, not a regular file"), CheckpointError);
  CHECK_THROWS_WITH_AS(load_checkpoint("/dev/zero"), doctest::Contains("character device"), CheckpointError);
}

TEST_CASE("a header whose numbers have the wrong kind (a float extent, a negative offset) is refused, not converted") {
  // Found by fuzz_checkpoint_header: nlohmann's get<uint64_t> on 4.3e112 is undefined behaviour (UBSan).
  for (const char* field : {R"("shape":[4.3e112])", R"("shape":[-1])", R"("shape":[2.5])"}) {
    CAPTURE(field);
    const std::string header = std::string(R"({"format":"xgrad-checkpoint","arch":"a","meta":{},"tensors":[{"name":"t","dtype":"f32",)") +
                               field + R"(,"offset":0,"nbytes":0,"crc32":0}]})";
    const auto bytes = frame_checkpoint(header, {});
    CHECK_THROWS_WITH_AS(parse_checkpoint(bytes.data(), bytes.size(), "kinds"), doctest::Contains("an extent is"), CheckpointError);
  }
  const std::string header = R"({"format":"xgrad-checkpoint","arch":"a","meta":{},"tensors":[{"name":"t","dtype":"f32","shape":[0],"offset":-64,"nbytes":0,"crc32":0}]})";
  const auto bytes = frame_checkpoint(header, {});
  CHECK_THROWS_WITH_AS(parse_checkpoint(bytes.data(), bytes.size(), "kinds"), doctest::Contains("offset is -64, not a whole number >= 0"), CheckpointError);
}

}  // TEST_SUITE
