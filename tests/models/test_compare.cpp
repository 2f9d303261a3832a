// mnist compare: the statistics (Welch's t-test), the choice made on validation numbers only (a case where
// validation and test disagree), and the command end to end on the 300-digit fixture: table, JSON and PNG, identical
// output when rerun, resuming after being stopped, refusals.
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "helpers.h"
#include "models/compare.h"

using namespace xg;
using namespace xg::mnist;
namespace fs = std::filesystem;

namespace {
const std::string kFixture = std::string(XGRAD_FIXTURES_DIR) + "/mnist-small";
std::string temp(const std::string& name) {
  const auto p = fs::temp_directory_path() / ("xgrad_compare_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
std::vector<std::string> compare_args(const std::string& out, const std::string& pools = "max,l2,stochastic") {
  return {XGRAD_MNIST_EXE, "compare", "--pool", pools, "--seeds", "2", "--validation", "60", "--epochs", "3",
          "--data-dir", kFixture, "--batch-size", "5", "--lr", "0.2", "--out", out};
}
/// compare.json without the timing-dependent numbers.
nlohmann::json accuracies(const std::string& dir) {
  auto j = nlohmann::json::parse(slurp(dir + "/compare.json"));
  for (auto& p : j["poolings"]) p.erase("train_images_per_second");
  return j;
}
}  // namespace

TEST_SUITE("compare") {

TEST_CASE("each run's epoch is chosen by validation accuracy only, even where the test accuracy disagrees") {
  // Pool "a": best validation at epoch 2, where its test accuracy is its worst; pool "b": lower validation, higher test.
  std::vector<RunCurve> runs{
      {"a", 0, {0.80, 0.90, 0.85}, {0.95, 0.70, 0.99}, {100, 100, 100}},
      {"a", 1, {0.81, 0.91, 0.91}, {0.96, 0.71, 0.98}, {100, 100, 100}},
      {"b", 0, {0.70, 0.75, 0.74}, {0.99, 0.99, 0.99}, {200, 200, 200}},
      {"b", 1, {0.71, 0.72, 0.76}, {0.98, 0.99, 0.97}, {200, 200, 200}},
  };
  const ComparisonSummary s = summarize_comparison(runs, {"b", "a"});
  REQUIRE(s.pools.size() == 2);
  const PoolSummary& a = s.pools[1];
  CHECK(a.epoch == std::vector<std::size_t>{2, 2});  // seed 1 ties at epochs 2 and 3: the first
  CHECK(a.test == std::vector<double>{0.70, 0.71});   // the test accuracy there, not the best test accuracy
  CHECK(s.pools[0].epoch == std::vector<std::size_t>{2, 3});
  CHECK(s.pools[s.winner].pool == "a");               // chosen on validation, although b's test numbers are higher
  CHECK(s.pools[s.runner_up].pool == "b");
  CHECK(s.significant);
  CHECK(s.pools[0].images_per_second == 200);
  const std::string md = comparison_markdown(s, "settings");
  CHECK_MESSAGE(md.find("Winner on validation: **a**") != std::string::npos, md);
  CHECK_MESSAGE(md.find("larger than the seed-to-seed noise") != std::string::npos, md);
  CHECK_THROWS_AS(summarize_comparison(runs, {"a"}), std::invalid_argument);
}

TEST_CASE("mnist compare on the fixture writes the table, JSON and PNG, and a rerun reuses the runs and writes the same bytes") {
  const auto out = temp("run");
  auto r = xgt::run_argv(compare_args(out));
  REQUIRE_MESSAGE(r.code == 0, r.out);
  for (const char* f : {"compare.md", "compare.json", "compare.png", "runs/max-seed0.jsonl", "runs/stochastic-seed1.jsonl"})
    CHECK_MESSAGE(fs::exists(fs::path(out) / f), f);
  const std::string md = slurp(out + "/compare.md");
  for (const char* pool : {"| max |", "| l2 |", "| stochastic |"}) CHECK_MESSAGE(md.find(pool) != std::string::npos, md);
  CHECK(md.find("Winner on validation") != std::string::npos);
  CHECK(r.out.find("Winner on validation") != std::string::npos);
  const auto j = nlohmann::json::parse(slurp(out + "/compare.json"));
  CHECK(j["poolings"].size() == 3);
  CHECK(j["poolings"][0]["chosen_epoch"].size() == 2);
  // The numbers in the table are those of the runs' own metrics, chosen on validation.
  std::ifstream run(out + "/runs/max-seed0.jsonl");
  std::string line;
  double best = -1, test_there = 0;
  while (std::getline(run, line)) {
    const auto m = nlohmann::json::parse(line);
    if (m["validation_accuracy"].get<double>() > best) {
      best = m["validation_accuracy"];
      test_there = m["heldout_accuracy"];
    }
  }
  CHECK(j["poolings"][0]["validation_accuracy"][0].get<double>() == best);
  CHECK(j["poolings"][0]["test_accuracy_at_chosen_epoch"][0].get<double>() == test_there);
  // Rerun in the same directory: every run is reused, the files are byte-identical.
  const std::string json_before = slurp(out + "/compare.json");
  r = xgt::run_argv(compare_args(out));
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK_MESSAGE(r.out.find("6 already done") != std::string::npos, r.out);
  CHECK(slurp(out + "/compare.md") == md);
  CHECK(slurp(out + "/compare.json") == json_before);
  // A fresh directory: the same accuracies and choices, bit for bit (only the speeds differ).
  const auto again = temp("again");
  r = xgt::run_argv(compare_args(again));
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK(accuracies(again) == accuracies(out));
  fs::remove_all(out);
  fs::remove_all(again);
}

TEST_CASE("mnist compare stopped by SIGTERM keeps its finished runs and resumes to the same result") {
  const auto full = temp("full"), out = temp("stopped");
  const auto args_full = compare_args(full, "max,l2,lp3,stochastic");
  const auto first = xgt::run_argv(args_full);
  REQUIRE_MESSAGE(first.code == 0, first.out);
  auto args = compare_args(out, "max,l2,lp3,stochastic");
  args.insert(args.end(), {"--jobs", "1"});
  const xgt::Spawned child = xgt::spawn(args);
  // Wait for the first finished run, then stop the comparison.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(fs::path(out) / "runs" / "max-seed0.jsonl") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(child.pid, SIGTERM);
  const auto r = xgt::finish(child);
  if (r.code == 0) {
    MESSAGE("the comparison finished before SIGTERM arrived; the resume below reuses every run");
  } else {
    CHECK_MESSAGE(r.code == 143, r.out);
    CHECK_MESSAGE(r.out.find("finished runs stay in") != std::string::npos, r.out);
  }
  std::size_t partial = 0;
  for (const auto& e : fs::directory_iterator(fs::path(out) / "runs")) partial += e.path().extension() == ".partial";
  const auto resumed = xgt::run_argv(args);
  REQUIRE_MESSAGE(resumed.code == 0, resumed.out);
  CHECK_MESSAGE(resumed.out.find("already done") != std::string::npos, resumed.out);
  CHECK(accuracies(out)["poolings"] == accuracies(full)["poolings"]);
  MESSAGE("stale partial files after the stop: ", partial);
  fs::remove_all(full);
  fs::remove_all(out);
}

TEST_CASE("mnist compare refuses flags it sets itself, unknown poolings, and a directory of other settings") {
  const auto out = temp("refuse");
  auto r = xgt::run_argv({XGRAD_MNIST_EXE, "compare", "--out", out, "--seed", "3", "--data-dir", kFixture});
  CHECK(r.code == 2);
  CHECK_MESSAGE(r.out.find("error: compare sets --seed for each run itself") == 0, r.out);
  r = xgt::run_argv({XGRAD_MNIST_EXE, "compare", "--out", out, "--pool", "max,lp0.5", "--data-dir", kFixture});
  CHECK(r.code == 2);
  CHECK_MESSAGE(r.out.find("lp0.5") != std::string::npos, r.out);
  r = xgt::run_argv({XGRAD_MNIST_EXE, "compare", "--out", out, "--pool", "max,max", "--data-dir", kFixture});
  CHECK(r.code == 2);
  r = xgt::run_argv(compare_args(out, "max"));
  REQUIRE_MESSAGE(r.code == 0, r.out);
  auto other = compare_args(out, "max");
  other.insert(other.end(), {"--momentum", "0.5"});
  r = xgt::run_argv(other);
  CHECK(r.code == 2);
  CHECK_MESSAGE(r.out.find("holds runs of other settings") != std::string::npos, r.out);
  fs::remove_all(out);
}

TEST_CASE("mnist compare takes --limit and --test-limit on a fresh directory (the calibration's limits replace them)") {
  // Round 3: the calibration run appended its own --limit and the child exited "At Most 1 required but received 2".
  const auto out = temp("limits");
  auto a = compare_args(out, "max,l2");
  a.insert(a.end(), {"--limit", "100", "--test-limit", "50"});
  const auto r = xgt::run_argv(a);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK_MESSAGE(r.out.find("calibration:") != std::string::npos, r.out);
  fs::remove_all(out);
}

TEST_CASE("mnist compare refuses a crafted calibration.json naming the file, with exit 3 and no run started") {
  // Round 3: "jobs": 0 or 1e30 divided by zero (SIGFPE), -1 started every run at once, "x" gave nlohmann's message.
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  const int cores = CPU_COUNT(&set);
  for (const std::string bad : {"0", "1e30", "-1", "\"x\"", "2.5"}) {
    CAPTURE(bad);
    const auto out = temp("calibration");
    fs::create_directories(out);
    std::ofstream(out + "/calibration.json") << "{\"cores\": " << cores << ", \"jobs\": " << bad << "}";
    const auto r = xgt::run_argv(compare_args(out, "max,l2"));
    CHECK(r.code == 3);
    CHECK_MESSAGE(r.out.find("calibration.json: \"jobs\" must be a whole number from 1 to " + std::to_string(cores)) != std::string::npos, r.out);
    CHECK_FALSE(fs::exists(out + "/runs/max-seed0.jsonl"));
    fs::remove_all(out);
  }
  const auto out = temp("calibration_cores");
  fs::create_directories(out);
  std::ofstream(out + "/calibration.json") << R"({"cores": "x", "jobs": 1})";
  const auto r = xgt::run_argv(compare_args(out, "max,l2"));
  CHECK(r.code == 3);
  CHECK_MESSAGE(r.out.find("\"cores\" must be a whole number") != std::string::npos, r.out);
  fs::remove_all(out);
}

TEST_CASE("mnist compare writes run logs and run files only as regular files: a FIFO, a device or a directory there is refused with exit 4, before training") {
  // Round 3: a FIFO at runs/<run>.log hung compare in process creation; a device node there was written to; a
  // directory gave "cannot start …/mnist: Is a directory"; a directory at runs/<run>.jsonl trained a whole run first.
  for (const std::string kind : {"fifo", "device", "directory", "run directory"}) {
    CAPTURE(kind);
    const auto out = temp("logs");
    fs::create_directories(out + "/runs");
    const std::string log = out + "/runs/max-seed0.log";
    if (kind == "fifo") REQUIRE(::mkfifo(log.c_str(), 0644) == 0);
    if (kind == "device") fs::create_symlink("/dev/null", log);
    if (kind == "directory") fs::create_directory(log);
    if (kind == "run directory") fs::create_directory(out + "/runs/max-seed0.jsonl");
    const auto start = std::chrono::steady_clock::now();
    auto a = compare_args(out, "max");
    a.insert(a.end(), {"--jobs", "1"});
    const auto r = xgt::run_argv(a);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
    CHECK(r.code == 4);
    CHECK_MESSAGE(r.out.find("not a regular file") != std::string::npos, r.out);
    CHECK_MESSAGE(r.out.find("run max-seed0: validation") == std::string::npos, r.out);  // nothing trained
    if (kind == "fifo") CHECK_MESSAGE(r.out.find("reached through symbolic links") == std::string::npos, r.out);
    fs::remove_all(out);
  }
}

TEST_CASE("mnist compare does not tabulate crafted run files with impossible accuracies: it makes the run again") {
  // Round 3: accuracies of ±1e308 were tabulated ("0.00 ± inf").
  const auto out = temp("crafted");
  auto a = compare_args(out, "max");
  auto r = xgt::run_argv(a);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  const std::string path = out + "/runs/max-seed0.jsonl";
  std::string text = slurp(path), crafted;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto m = nlohmann::json::parse(line);
    m["validation_accuracy"] = 1e308;
    crafted += m.dump() + "\n";
  }
  std::ofstream(path, std::ios::trunc) << crafted;
  r = xgt::run_argv(a);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK_MESSAGE(r.out.find("1 already done") != std::string::npos, r.out);  // seed 1 reused, seed 0 made again
  CHECK(slurp(out + "/compare.md").find("inf") == std::string::npos);
  // The same for a crafted speed (±1e308 or text had been tabulated as ±inf or nan).
  for (const std::string speed : {"1e308", "-1e308", "\"x\""}) {
    CAPTURE(speed);
    std::string text = slurp(path), bad;
    std::istringstream ls(text);
    for (std::string line; std::getline(ls, line);) {
      auto m = nlohmann::json::parse(line);
      m["train_images_per_second"] = nlohmann::json::parse(speed);
      bad += m.dump() + "\n";
    }
    std::ofstream(path, std::ios::trunc) << bad;
    r = xgt::run_argv(a);
    REQUIRE_MESSAGE(r.code == 0, r.out);
    CHECK_MESSAGE(r.out.find("1 already done") != std::string::npos, r.out);
    const std::string md = slurp(out + "/compare.md");
    CHECK(md.find("inf") == std::string::npos);
    CHECK(md.find("nan") == std::string::npos);
  }
  fs::remove_all(out);
}

}  // TEST_SUITE
