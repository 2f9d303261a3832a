// The mnist executable: training on the fixture, and one-line errors with distinct exit codes.
#include <sys/wait.h>

#include <array>
#include <cstring>
#include <map>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "data/mnist.h"
#include "models/run.h"

namespace fs = std::filesystem;

namespace {
using xgt::CommandResult;
CommandResult run(const std::string& args) { return xgt::run_command(std::string(XGRAD_MNIST_EXE) + " " + args); }
const std::string kFixture = std::string(XGRAD_FIXTURES_DIR) + "/mnist-small";
std::string temp(const std::string& name) { return (fs::temp_directory_path() / (name + std::to_string(::getpid()))).string(); }
bool one_error_line(const std::string& out) {
  return out.rfind("error: ", 0) == 0 && out.find('\n') == out.size() - 1 && out.find("terminate") == std::string::npos;
}
}  // namespace

TEST_SUITE("mnist cli") {

TEST_CASE("mnist trains on the fixture, writes metrics and a checkpoint, and evaluates it") {
  const auto metrics = temp("metrics"), ckpt = temp("ckpt");
  auto r = run("--data-dir " + kFixture + " --epochs 2 --batch-size 2 --lr 0.2 --metrics " + metrics + " --save " + ckpt);
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("best") != std::string::npos);
  std::ifstream in(metrics);
  std::string line;
  int epochs = 0;
  double first_loss = 0, last_loss = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    for (const char* k : {"epoch", "train_loss", "heldout_loss", "heldout_accuracy", "lr", "epoch_seconds", "train_images_per_second"})
      CHECK_MESSAGE(j.contains(k), k);
    (epochs == 0 ? first_loss : last_loss) = j["train_loss"].get<double>();
    ++epochs;
    CHECK(j["heldout_accuracy"].get<double>() > 0.3);
  }
  CHECK(epochs == 2);
  CHECK(last_loss < first_loss);
  r = run("--data-dir " + kFixture + " --eval-only --load " + ckpt);
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("accuracy") != std::string::npos);
  r = run("--data-dir " + kFixture + " --arch deep --eval-only --load " + ckpt);
  CHECK(r.code == 4);
  fs::remove(metrics);
  fs::remove(ckpt);
}

namespace {
/// Width and height from a PNG's IHDR chunk, after checking the signature; {0, 0} if it is not a PNG.
std::pair<std::uint32_t, std::uint32_t> png_size(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<unsigned char> b(24);
  in.read(reinterpret_cast<char*>(b.data()), 24);
  const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!in || std::memcmp(b.data(), sig, 8) != 0 || std::memcmp(b.data() + 12, "IHDR", 4) != 0) return {0, 0};
  auto be = [&](std::size_t o) { return std::uint32_t(b[o]) << 24 | std::uint32_t(b[o + 1]) << 16 | std::uint32_t(b[o + 2]) << 8 | b[o + 3]; };
  return {be(16), be(20)};
}
}  // namespace

TEST_CASE("mnist visualize draws the digit, feature maps, pooled maps, filters and overview as valid PNGs") {
  const auto ckpt = temp("visckpt"), out = temp("visout");
  REQUIRE(run("--data-dir " + kFixture + " --epochs 1 --quiet --save " + ckpt).code == 0);
  auto r = run("visualize --load " + ckpt + " --out " + out + " --data-dir " + kFixture + " --index 7");
  CHECK_MESSAGE(r.code == 0, r.out);
  const std::map<std::string, std::pair<std::uint32_t, std::uint32_t>> expected = {
      {"digit.png", {184, 184}},         // 28x28 scaled 6, 8 px margins
      {"feature_maps.png", {464, 160}},  // three 24x24 maps scaled 6
      {"pooled_maps.png", {464, 160}},   // three 12x12 maps scaled 12
      {"filters.png", {392, 136}},       // three 5x5 filters scaled 24
      {"overview.png", {536, 464}}};     // digit | conv maps | pooled maps
  for (const auto& [name, size] : expected) {
    CAPTURE(name);
    CHECK(png_size(out + "/" + name) == size);
  }
  r = run("visualize --load " + ckpt + " --out " + out + " --data-dir " + kFixture + " --arch deep");
  CHECK(r.code == 4);  // the checkpoint is not a deep network
  fs::remove(ckpt);
  fs::remove_all(out);
}

TEST_CASE("mnist plot renders metrics with gnuplot, or says which package is missing") {
  const auto metrics = temp("plotm"), png = temp("plot") + ".png";
  REQUIRE(run("--data-dir " + kFixture + " --epochs 2 --quiet --metrics " + metrics).code == 0);
  auto r = run("plot --metrics " + metrics + " --out " + png);
  CHECK_MESSAGE(r.code == 0, r.out);  // scripts/setup.sh installs gnuplot-nox
  CHECK(png_size(png) == std::make_pair(std::uint32_t(900), std::uint32_t(400)));
  r = xgt::run_command("PATH=/nonexistent-xgrad " + std::string(XGRAD_MNIST_EXE) + " plot --metrics " + metrics + " --out " + png);
  CHECK(r.code == 1);
  CHECK(r.out.find("gnuplot is not installed (apt-get install gnuplot-nox)") != std::string::npos);
  for (const auto& f : {metrics, png}) fs::remove(f);
}

TEST_CASE("--help exits 0 and lists the flags") {
  auto r = run("--help");
  CHECK(r.code == 0);
  CHECK(r.out.find("--batch-size") != std::string::npos);
}

TEST_CASE("bad flags print one error line and exit 2") {
  for (const char* args : {"--epochs 0", "--arch lenet", "--lr -1", "--bogus", "--eval-only", "--batch-size x"}) {
    CAPTURE(args);
    auto r = run(args);
    CHECK(r.code == 2);
    CHECK_MESSAGE(one_error_line(r.out), r.out);
  }
}

TEST_CASE("missing or corrupt data prints one error line and exits 3") {
  auto r = run("--data-dir /nonexistent-xgrad");
  CHECK(r.code == 3);
  CHECK_MESSAGE(one_error_line(r.out), r.out);
  const auto dir = temp("baddata");
  fs::create_directories(dir);
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    fs::copy_file(kFixture + "/" + f, dir + "/" + f);
  fs::resize_file(dir + "/train-images-idx3-ubyte.gz", 1000);  // truncated gzip
  r = run("--data-dir " + dir);
  CHECK(r.code == 3);
  CHECK_MESSAGE(one_error_line(r.out), r.out);
  CHECK(r.out.find("train-images-idx3-ubyte.gz") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("an output file that cannot be written (a missing directory) prints one error line and exits 4") {
  auto r = run("--data-dir " + kFixture + " --epochs 1 --metrics /nonexistent-xgrad-dir/m.jsonl");
  CHECK(r.code == 4);
  CHECK_MESSAGE(one_error_line(r.out), r.out);
  CHECK(r.out.find("--metrics '/nonexistent-xgrad-dir/m.jsonl': its directory '/nonexistent-xgrad-dir' cannot be used") !=
        std::string::npos);
}

TEST_CASE("any other failure (gnuplot failing on its own) prints one error line and exits 1") {
  // A metrics line gnuplot cannot plot is not something xgrad checks; force a gnuplot failure with a PATH whose
  // gnuplot exits 1.
  const auto dir = temp("fakegnuplot");
  fs::create_directories(dir);
  std::ofstream(dir + "/gnuplot") << "#!/bin/sh\necho 'gnuplot: cannot plot' >&2\nexit 1\n";
  fs::permissions(dir + "/gnuplot", fs::perms::owner_all);
  const auto metrics = dir + "/m.jsonl";
  std::ofstream(metrics) << R"({"epoch":1,"train_loss":2.0,"heldout_loss":1.5,"heldout_accuracy":0.5})" << "\n";
  auto r = xgt::run_command("PATH=" + dir + ":$PATH " + std::string(XGRAD_MNIST_EXE) + " plot --metrics " + metrics +
                            " --out " + dir + "/p.png");
  CHECK(r.code == 1);
  CHECK_MESSAGE(one_error_line(r.out), r.out);
  CHECK(r.out.find("gnuplot failed (exit status 1): gnuplot: cannot plot") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a corrupt checkpoint prints one error line and exits 4") {
  const auto bad = temp("badckpt");
  std::ofstream(bad) << "not a checkpoint at all, just some text";
  auto r = run("--data-dir " + kFixture + " --eval-only --load " + bad);
  CHECK(r.code == 4);
  CHECK_MESSAGE(one_error_line(r.out), r.out);
  fs::remove(bad);
}

TEST_CASE("resuming a checkpoint whose weights went NaN stops with one error line and exit 5") {
  xg::mnist::RunConfig cfg;
  const xg::data::MnistDataset no_data;
  xg::mnist::Run t(cfg, no_data);
  t.model().parameters()[2].value().data()[0] = std::numeric_limits<float>::quiet_NaN();
  const auto ckpt = temp("nanckpt");
  xg::nn::save_checkpoint(ckpt, t.checkpoint());
  auto r = run("--data-dir " + kFixture + " --epochs 1 --quiet --resume " + ckpt);
  CHECK(r.code == 5);
  const auto pos = r.out.find("error:");
  REQUIRE(pos != std::string::npos);
  CHECK_MESSAGE(one_error_line(r.out.substr(pos)), r.out);
  CHECK(r.out.find("epoch 1, step 1") != std::string::npos);
  fs::remove(ckpt);
}

}  // TEST_SUITE
