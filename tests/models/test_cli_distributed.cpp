// `mpirun -np 2 mnist …` on loopback (built with MPI only): agreement with one process, determinism, resume, and
// failures that end the whole job quickly with one message from rank 0.
#ifdef XGRAD_MPIEXEC
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <thread>
#include <fstream>

#include <nlohmann/json.hpp>

#include "helpers.h"
#include "data/mnist.h"
#include "models/run.h"
#include "nn/checkpoint.h"

namespace fs = std::filesystem;

namespace {
const std::string kExe = XGRAD_MNIST_EXE;
const std::string kFixture = std::string(XGRAD_FIXTURES_DIR) + "/mnist-small";
// OpenMPI refuses root and more ranks than cores unless told; both are fine on a CI container.
const std::string kMpirun = std::string("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                                        "OMPI_MCA_rmaps_base_oversubscribe=1 ") + XGRAD_MPIEXEC;
std::string temp(const std::string& name) { return (fs::temp_directory_path() / ("xgrad_mpi_" + name + std::to_string(::getpid()))).string(); }
xgt::CommandResult mpirun(int ranks, const std::string& args) {
  return xgt::run_command(kMpirun + " -np " + std::to_string(ranks) + " " + kExe + " " + args);
}
std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}
std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
}  // namespace

TEST_SUITE("mnist cli distributed") {

TEST_CASE("mpirun -np 2 trains the seed network for an epoch to within 1e-5 of one process, from identical parameters") {
  const std::string flags = " --data-dir " + kFixture + " --epochs 1 --save ";
  const auto one = temp("one"), two = temp("two"), again = temp("again");
  auto r = xgt::run_command(kExe + flags + one);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  r = mpirun(2, flags + two);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK_MESSAGE(r.out.find("2 MPI ranks") != std::string::npos, r.out);
  CHECK(r.out.find("identical parameters on every rank") != std::string::npos);
  CHECK_MESSAGE(count(r.out, "accuracy on the") == 1, r.out);  // only rank 0 prints

  const xg::nn::Checkpoint a = xg::nn::load_checkpoint(one), b = xg::nn::load_checkpoint(two);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (const auto& t : a.tensors) {
    if (t.name.rfind("model.", 0) != 0) continue;
    const auto x = a.get<float>(t.name), y = b.get<float>(t.name);
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      diff = std::max(diff, std::abs(double(x.data()[i]) - double(y.data()[i])));
      scale = std::max(scale, std::abs(double(x.data()[i])));
    }
    CAPTURE(t.name);
    CHECK(diff <= 1e-5 * scale);
  }
  r = mpirun(2, flags + again + " --quiet");
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK_MESSAGE(read_bytes(again) == read_bytes(two), "two runs with -np 2 and the same seed differ");
  for (const auto& f : {one, two, again}) fs::remove(f);
}

TEST_CASE("--resume works distributed: 1 epoch, resume, 1 more equals 2 epochs bit for bit") {
  const std::string flags = " --data-dir " + kFixture + " --momentum 0.9 --lr 0.05 --quiet --save ";
  const auto straight = temp("straight"), resumed = temp("resumed");
  auto r = mpirun(2, flags + straight + " --epochs 2");
  REQUIRE_MESSAGE(r.code == 0, r.out);
  r = mpirun(2, flags + resumed + " --epochs 1");
  REQUIRE_MESSAGE(r.code == 0, r.out);
  r = mpirun(2, flags + resumed + " --epochs 2 --resume " + resumed);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK(read_bytes(resumed) == read_bytes(straight));
  fs::remove(straight);
  fs::remove(resumed);
}

TEST_CASE("ranks given different flags stop at start with exit 2, naming the flag") {
  const auto r = xgt::run_command(kMpirun + " -np 1 " + kExe + " --data-dir " + kFixture + " --lr 0.1 : -np 1 " + kExe +
                                  " --data-dir " + kFixture + " --lr 0.2");
  CHECK(r.code == 2);
  CHECK_MESSAGE(r.out.find("error: every rank must be given the same flags: rank 1 has --lr 0.2, rank 0 has --lr 0.1") !=
                    std::string::npos, r.out);
  CHECK_MESSAGE(count(r.out, "error:") == 1, r.out);
}

TEST_CASE("a rank that cannot read the data stops every rank — rank 0 reports it once, with exit 3") {
  // Same flags, different working directories: only rank 0 finds the relative --data-dir.
  const auto dir0 = temp("wd0"), dir1 = temp("wd1");
  fs::create_directories(dir0);
  fs::create_directories(dir1);
  fs::create_directory_symlink(kFixture, dir0 + "/digits");
  const auto r = xgt::run_command(kMpirun + " -np 1 -wdir " + dir0 + " " + kExe + " --data-dir digits : -np 1 -wdir " +
                                  dir1 + " " + kExe + " --data-dir digits");
  CHECK(r.code == 3);
  CHECK_MESSAGE(r.out.find("error: rank 1 of 2: ") != std::string::npos, r.out);
  CHECK_MESSAGE(count(r.out, "error:") == 1, r.out);
  fs::remove_all(dir0);
  fs::remove_all(dir1);
}

TEST_CASE("a non-finite loss stops every rank together with exit 5 and one message") {
  xg::mnist::RunConfig cfg;
  const xg::data::MnistDataset no_data;
  xg::mnist::Run t(cfg, no_data);
  t.model().parameters()[2].value().data()[0] = std::numeric_limits<float>::quiet_NaN();
  const auto ckpt = temp("nan");
  xg::nn::save_checkpoint(ckpt, t.checkpoint());
  const auto r = mpirun(2, "--data-dir " + kFixture + " --epochs 1 --quiet --resume " + ckpt);
  CHECK(r.code == 5);
  CHECK_MESSAGE(count(r.out, "error: training: the loss (cross_entropy) is nan at epoch 1, step 1") == 1, r.out);
  fs::remove(ckpt);
}

TEST_CASE("files only rank 0 writes: a metrics or checkpoint path it cannot write stops every rank with one message") {
  // Checked at start-up, before anything trains.
  auto r = mpirun(2, "--data-dir " + kFixture + " --epochs 1 --quiet --metrics /nonexistent-xgrad-dir/m.jsonl");
  CHECK(r.code == 4);
  CHECK_MESSAGE(count(r.out, "error: --metrics '/nonexistent-xgrad-dir/m.jsonl': its directory") == 1, r.out);
  r = mpirun(2, "--data-dir " + kFixture + " --epochs 2 --quiet --save /dev/null");
  CHECK(r.code == 4);
  CHECK_MESSAGE(count(r.out, "error: --save '/dev/null': is a character device") == 1, r.out);
  CHECK_MESSAGE(count(r.out, "error:") == 1, r.out);
  // A write that fails later (the directory removed after the first epoch's save) stops every rank too.
  const auto dir = temp("vanishing");
  fs::create_directories(dir);
  auto p = xgt::spawn({"/bin/sh", "-c", "exec timeout 300 env " + kMpirun + " -np 2 " + kExe + " --data-dir " + kFixture +
                                            " --epochs 100000 --quiet --save " + dir + "/ck.xgck"});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(dir + "/ck.xgck") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!fs::exists(dir + "/ck.xgck")) ::kill(p.pid, SIGTERM);  // never leave the job running
  fs::rename(dir, dir + ".gone");  // atomically: the next save finds no directory (a removal would race with it)
  r = xgt::finish(p);
  CHECK(r.code == 4);
  CHECK_MESSAGE(count(r.out, "error: checkpoint '" + dir + "/ck.xgck': ") == 1, r.out);
  CHECK_MESSAGE(count(r.out, "error:") == 1, r.out);
  fs::remove_all(dir + ".gone");
}

TEST_CASE("--help given to one rank only is a flag mismatch: exit 2 with one message, not a silent exit 0") {
  const auto r = xgt::run_command(kMpirun + " -np 1 " + kExe + " --help : -np 1 " + kExe + " --data-dir " + kFixture +
                                  " --epochs 1 --quiet");
  CHECK(r.code == 2);
  CHECK_MESSAGE(count(r.out, "error: every rank must be given the same flags: rank 0 was given --help and rank 1 was not") == 1,
                r.out);
  const auto all = xgt::run_command(kMpirun + " -np 2 " + kExe + " --help");
  CHECK(all.code == 0);
  CHECK(count(all.out, "Usage:") == 1);
}

TEST_CASE("paths with non-UTF-8 bytes work under mpirun (the flag check compares them as bytes)") {
  const auto dir = temp("bytes");
  const std::string data = dir + "/data\xff", ck = dir + "/ck\xfe";
  fs::create_directories(data);
  for (const auto& e : fs::directory_iterator(kFixture)) fs::copy_file(e.path(), fs::path(data) / e.path().filename());
  const auto r = xgt::run_argv({"env", "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
                                "OMPI_MCA_rmaps_base_oversubscribe=1", XGRAD_MPIEXEC, "-np", "2", kExe, "--data-dir", data,
                                "--epochs", "1", "--quiet", "--save", ck});
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(fs::is_regular_file(ck));
  fs::remove_all(dir);
}

TEST_CASE("a rank that dies makes the whole job exit non-zero quickly instead of hanging") {
  // Rank 1 is killed with SIGKILL in the middle of a long run — once rank 0 has saved its first checkpoint, so that
  // both are training however slow the machine is; `timeout` turns a hang into 124.
  const auto ck = temp("killed");
  fs::remove(ck);
  const auto r = xgt::run_command(
      "timeout 120 env " + kMpirun + " -np 2 sh -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then (while [ ! -e " + ck +
      " ]; do sleep 0.05; done; kill -9 $$) & fi; exec " + kExe + " --data-dir " + kFixture +
      " --epochs 100000 --batch-size 1 --quiet --save " + ck + "'");
  fs::remove(ck);
  CHECK_MESSAGE(r.code != 0, r.out);
  CHECK_MESSAGE(r.code != 124, (std::string("the job hung after a rank died:\n") + r.out));
  CHECK_MESSAGE(r.out.find("error: rank 0: the job was stopped by the MPI launcher: another rank failed or was killed") !=
                    std::string::npos, r.out);
}

TEST_CASE("mpirun -np 2 mnist compare spreads the runs over the ranks and gives one process's results") {
  const auto one = temp("cmp_one"), two = temp("cmp_two");
  const std::string args = " compare --pool max,l2 --seeds 2 --validation 60 --epochs 2 --batch-size 5 --lr 0.2 --data-dir " +
                           kFixture + " --out ";
  auto r = xgt::run_command(kExe + args + one);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  r = mpirun(2, args + two);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK_MESSAGE(r.out.find("2 ranks") != std::string::npos, r.out);
  CHECK_MESSAGE(count(r.out, "Winner on validation") == 1, r.out);  // rank 0 alone prints
  auto a = nlohmann::json::parse(read_bytes(one + "/compare.json")), b = nlohmann::json::parse(read_bytes(two + "/compare.json"));
  for (auto* j : {&a, &b})
    for (auto& p : (*j)["poolings"]) p.erase("train_images_per_second");
  CHECK(a["poolings"] == b["poolings"]);  // each run is a process of its own: the same bits wherever it ran
  fs::remove_all(one);
  fs::remove_all(two);
}

TEST_CASE("ranks that loaded different data stop at start with exit 3 naming both fingerprints, with or without limits") {
  // Round 3: identical flags, but each rank's working directory resolved --data-dir to other digits: with limits the
  // job trained on a mix and exited 0; without, the ranks' batch counts differed and the job hung.
  const auto dir0 = temp("data0"), dir1 = temp("data1");
  fs::create_directories(dir0);
  fs::create_directories(dir1 + "/digits");
  fs::create_directory_symlink(kFixture, dir0 + "/digits");
  // Other digits: the fixture's first 200 training images, one pixel changed.
  xg::data::Split s = xg::data::load_mnist_dir(kFixture);
  std::vector<std::uint8_t> px(s.train.pixels().begin(), s.train.pixels().begin() + 200 * 784), lb(s.train.labels().begin(), s.train.labels().begin() + 200);
  px[0] ^= 0x40;
  xg::data::write_idx(dir1 + "/digits/train-images-idx3-ubyte", {200, 28, 28}, px);
  xg::data::write_idx(dir1 + "/digits/train-labels-idx1-ubyte", {200}, lb);
  xg::data::write_idx(dir1 + "/digits/t10k-images-idx3-ubyte", {static_cast<std::uint32_t>(s.test.size()), 28, 28}, s.test.pixels());
  xg::data::write_idx(dir1 + "/digits/t10k-labels-idx1-ubyte", {static_cast<std::uint32_t>(s.test.size())}, s.test.labels());
  for (const std::string limits : {"", " --limit 100"}) {
    CAPTURE(limits);
    const std::string args = " --data-dir digits --epochs 1" + limits;
    const auto start = std::chrono::steady_clock::now();
    const auto r = xgt::run_command("timeout 120 env " + kMpirun + " -np 1 -wdir " + dir0 + " " + kExe + args + " : -np 1 -wdir " + dir1 + " " + kExe + args);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(100));
    CHECK(r.code == 3);
    CHECK_MESSAGE(r.out.find("every rank must train on the same data: rank 1 loaded training ") != std::string::npos, r.out);
    CHECK_MESSAGE(r.out.find("rank 0 loaded training ") != std::string::npos, r.out);
    CHECK_MESSAGE(r.out.find("epoch 1/1") == std::string::npos, r.out);  // nothing trained
  }
  fs::remove_all(dir0);
  fs::remove_all(dir1);
}

}  // TEST_SUITE
#endif
