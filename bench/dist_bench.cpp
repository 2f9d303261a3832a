// xgrad_dist_bench: the cost of averaging gradients across ranks, for docs/distributed.md's scaling model.
// Not a test. Run it under the launcher, e.g. `mpirun -np 2 build/bench/xgrad_dist_bench --json out.json`:
//   - MPI_Allreduce (sum, in place) of float buffers from 1 KiB to 64 MiB and of the MNIST networks' gradient sizes;
//   - dist::GradientReducer::reduce for the seed and deep networks (packing, MPI_Allreduce, unpacking).
// Medians of --runs timed runs (each ≥ 20 ms of calls, the count chosen by rank 0) after a warm-up; rank 0 prints.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/memory.h"
#include "core/files.h"
#include "dist/data_parallel.h"
#include "models/mnist_cnn.h"

using namespace xg;
using Clock = std::chrono::steady_clock;

namespace {

int g_runs = 7;

/// Median seconds per call of `fn` on this rank; every rank makes the same calls.
double median_seconds(dist::Communicator& w, const std::function<void()>& fn) {
  fn();
  w.barrier();
  auto t0 = Clock::now();
  fn();
  double one = std::chrono::duration<double>(Clock::now() - t0).count();
  w.broadcast(&one, sizeof one, 0);
  const int reps = std::max(1, static_cast<int>(0.02 / std::max(one, 1e-9)));
  std::vector<double> times;
  for (int r = 0; r < g_runs; ++r) {
    w.barrier();
    t0 = Clock::now();
    for (int i = 0; i < reps; ++i) fn();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / reps);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::size_t gradient_floats(const std::string& arch) {
  Rng rng(0);
  mnist::MnistCnn<float> model(mnist::MnistCnnConfig::preset(arch), rng);
  return model.num_parameters();
}

}  // namespace

int main(int argc, char** argv) {
  xg::tune_malloc_for_training();  // a training program opts in (core/memory.h)
  dist::Environment env(argc, argv);
  dist::Communicator& w = env.world();
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--runs" && i + 1 < argc) g_runs = std::max(3, std::atoi(argv[++i]));
    else {
      if (w.rank() == 0) std::fprintf(stderr, "usage: [mpirun -np K] xgrad_dist_bench [--runs N] [--json PATH]\n");
      return 2;
    }
  }
  const bool rank0 = w.rank() == 0;
  const int k = w.size();
  if (rank0) std::printf("%d rank(s), backend %s, %d on this machine\n", k, w.backend().c_str(), w.local_size());
  nlohmann::json out{{"ranks", k}, {"backend", w.backend()}, {"local_ranks", w.local_size()}};

  std::vector<std::pair<std::string, std::size_t>> sizes{{"seed network gradients", gradient_floats("seed")},
                                                         {"deep network gradients", gradient_floats("deep")}};
  for (std::size_t n = 256; n <= (std::size_t(1) << 24); n *= 4) sizes.emplace_back("", n);
  nlohmann::json rows = nlohmann::json::array();
  if (rank0) std::printf("%-24s %12s %12s %14s %14s\n", "MPI_Allreduce", "floats", "bytes", "median us", "bus GB/s");
  for (const auto& [name, n] : sizes) {
    std::vector<float> buf(n, 1.0f);
    const double t = median_seconds(w, [&] { w.all_reduce_sum(buf.data(), n); });
    const double bytes = 4.0 * static_cast<double>(n);
    // Bus bandwidth (NCCL's convention): a ring allreduce moves 2(K−1)/K of the buffer through each link.
    const double bus = k > 1 ? 2.0 * (k - 1) / k * bytes / t / 1e9 : 0.0;
    if (rank0) std::printf("%-24s %12zu %12.0f %14.2f %14.2f\n", name.c_str(), n, bytes, t * 1e6, bus);
    rows.push_back({{"name", name}, {"floats", n}, {"bytes", bytes}, {"seconds", t}, {"bus_gb_per_s", bus}});
  }
  out["allreduce"] = rows;

  nlohmann::json reducers = nlohmann::json::array();
  for (const char* arch : {"seed", "deep"}) {
    Rng rng(0);
    mnist::MnistCnn<float> model(mnist::MnistCnnConfig::preset(arch), rng);
    for (auto p : model.parameters()) p.set_grad(zeros<float>(p.shape()));
    dist::GradientReducer<float> reducer(w, model.parameters());
    const double t = median_seconds(w, [&] { reducer.reduce(1.0 / k); });
    if (rank0)
      std::printf("GradientReducer %-8s %zu floats in %zu bucket(s): %.2f us per step\n", arch, model.num_parameters(),
                  reducer.num_buckets(), t * 1e6);
    reducers.push_back({{"arch", arch}, {"floats", model.num_parameters()}, {"buckets", reducer.num_buckets()}, {"seconds", t}});
  }
  out["reducer"] = reducers;
  if (rank0 && !json_path.empty()) {
    const std::string text = out.dump(2) + "\n";
    xg::files::write_atomic(json_path, text.data(), text.size(), "--json");
  }
  return 0;
}
