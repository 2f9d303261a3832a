// xgrad_bench: medians of repeated timings (warm-up first) for the kernels, the engine and MNIST training.
// Not a test: the machine is shared and noisy. Prints a table and, with --json PATH, writes the numbers.
//
//   xgrad_bench ops      matmul 1024³ and the conv/pool shapes of issue 3, forward and forward+backward
//   xgrad_bench engine   a 10,000-op chain of tiny elementwise ops, forward + backward, time per op
//   xgrad_bench train    training steps (forward, backward, SGD) in images/s for seed, seed-l2 and deep; inference
//   xgrad_bench gemm     the bound the BLAS sets: every GEMM of a batch-64 training step (seed, deep) timed alone,
//                        one thread, against the whole step
#include <immintrin.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/memory.h"
#include "core/cpu.h"
#include "core/files.h"
#include "core/linalg.h"
#include "core/parallel.h"
#include "data/loader.h"
#include "data/mnist.h"
#include "models/mnist_cnn.h"
#include "nn/optim.h"
#include "ops/conv_kernels.h"
#include "ops/ops.h"

using namespace xg;
using Clock = std::chrono::steady_clock;

namespace {

int g_runs = 7;

/// Median seconds per call of `fn` over g_runs timed runs (each at least ~30 ms of calls) after a warm-up.
double median_seconds(const std::function<void()>& fn) {
  fn();
  auto t0 = Clock::now();
  fn();
  const double one = std::chrono::duration<double>(Clock::now() - t0).count();
  const int reps = std::max(1, static_cast<int>(0.03 / std::max(one, 1e-9)));
  std::vector<double> times;
  for (int r = 0; r < g_runs; ++r) {
    t0 = Clock::now();
    for (int i = 0; i < reps; ++i) fn();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / reps);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

Tensor<float> randn(const Shape& s, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<float> t = Tensor<float>::from_shape(s);
  for (auto& v : t) v = static_cast<float>(rng.normal());
  return t;
}

nlohmann::json bench_ops() {
  nlohmann::json rows = nlohmann::json::array();
  auto row = [&](const std::string& name, double flops_fwd, double flops_fb, const std::function<Variable<float>()>& fwd,
                 std::vector<Variable<float>*> params) {
    for (std::size_t threads : {1, 2}) {
      set_num_threads(threads);
      const double tf = median_seconds([&] {
        NoGradGuard g;
        fwd();
      });
      Tensor<float> seed;  // the upstream gradient, made once (it is not part of the op)
      {
        NoGradGuard g;
        seed = full<float>(fwd().shape(), 1.0f);
      }
      const double tfb = median_seconds([&] {
        for (auto* p : params) p->zero_grad();
        Variable<float> y = fwd();
        y.backward(seed);
      });
      std::printf("%-34s %d thr  fwd %9.3f ms %7.1f GFLOP/s   fwd+bwd %9.3f ms %7.1f GFLOP/s\n", name.c_str(),
                  static_cast<int>(threads), tf * 1e3, flops_fwd / tf * 1e-9, tfb * 1e3, flops_fb / tfb * 1e-9);
      rows.push_back({{"name", name}, {"threads", threads}, {"forward_ms", tf * 1e3}, {"forward_backward_ms", tfb * 1e3},
                      {"forward_gflops", flops_fwd / tf * 1e-9}, {"forward_backward_gflops", flops_fb / tfb * 1e-9}});
    }
  };
  {
    Variable<float> a(randn({1024, 1024}, 1), true), b(randn({1024, 1024}, 2), true);
    const double f = 2.0 * 1024 * 1024 * 1024;
    row("matmul 1024x1024x1024", f, 3 * f, [&] { return ops::matmul(a, b); }, {&a, &b});
  }
  struct Conv {
    const char* name;
    std::size_t n, c, hw, f, k;
  };
  for (const Conv& c : {Conv{"conv2d N=64 1->20 28x28 k5", 64, 1, 28, 20, 5}, Conv{"conv2d N=64 20->40 12x12 k5", 64, 20, 12, 40, 5},
                        Conv{"conv2d N=10 1->3 28x28 k5", 10, 1, 28, 3, 5}}) {
    Variable<float> x(randn({c.n, c.c, c.hw, c.hw}, 3), false), w(randn({c.f, c.c, c.k, c.k}, 4), true), b(randn({c.f}, 5), true);
    const std::size_t o = c.hw - c.k + 1;
    const double f = 2.0 * static_cast<double>(c.n * c.f * o * o * c.c * c.k * c.k);
    // backward computes dW (and db) only, as in a first layer; with dX it would be 3x the forward
    Variable<float> xg_(randn({c.n, c.c, c.hw, c.hw}, 3), c.c > 1);
    row(c.name, f, c.c > 1 ? 3 * f : 2 * f, [&] { return ops::conv2d(xg_, w, b); }, {&xg_, &w, &b});
  }
  Variable<float> px(randn({64, 20, 24, 24}, 6), true);
  const double pool_elems = 64.0 * 20 * 24 * 24;
  row("max_pool2d 2x2 N=64 C=20 24x24", pool_elems, 2 * pool_elems, [&] { return ops::max_pool2d(px, 2); }, {&px});
  row("l2_pool2d 2x2 N=64 C=20 24x24", 2 * pool_elems, 5 * pool_elems, [&] { return ops::l2_pool2d(px, 2); }, {&px});
  set_num_threads(0);
  return rows;
}

nlohmann::json bench_engine() {
  constexpr int kOps = 10000;
  Variable<float> x(full<float>({4}, 1.0f), true);
  const double t = median_seconds([&] {
    Variable<float> y = x;
    for (int i = 0; i < kOps / 2; ++i) y = (y * 1.0001f) + 0.0001f;
    y.backward(Tensor<float>(xt::ones<float>({4})));
    x.zero_grad();
  });
  const double per_op_us = t / kOps * 1e6;
  std::printf("engine: %d-op chain of [4]-element scale/add ops, forward+backward: %.3f ms, %.3f us per op\n", kOps,
              t * 1e3, per_op_us);
  return {{"ops", kOps}, {"seconds", t}, {"us_per_op", per_op_us}};
}

// --- The physical limit -------------------------------------------------------------------------------------------
// Peak FMA throughput of this CPU: 12 independent chains of vector FMAs (enough to hide the FMA latency on current
// cores), at the widest level the CPU has. 2 FLOPs per lane per FMA.
template <int kLanes, class Fma>
double fma_gflops(long iters, Fma fma) {
  const auto t0 = std::chrono::steady_clock::now();
  const float sink = fma(iters);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (sink == 12345.0f) std::printf(" ");  // keep the result alive
  return 12.0 * kLanes * 2.0 * static_cast<double>(iters) / s * 1e-9;
}
__attribute__((target("avx512f"))) float fma_chains_avx512(long iters) {
  __m512 a[12], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int k = 0; k < 12; ++k) a[k] = _mm512_set1_ps(static_cast<float>(k));
  for (long i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) a[k] = _mm512_fmadd_ps(a[k], b, c);
  alignas(64) float lanes[16];
  float out = 0;
  for (int k = 0; k < 12; ++k) {
    _mm512_store_ps(lanes, a[k]);
    for (float v : lanes) out += v;
  }
  return out;
}
__attribute__((target("avx2,fma"))) float fma_chains_avx2(long iters) {
  __m256 a[12], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int k = 0; k < 12; ++k) a[k] = _mm256_set1_ps(static_cast<float>(k));
  for (long i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) a[k] = _mm256_fmadd_ps(a[k], b, c);
  alignas(32) float lanes[8];
  float out = 0;
  for (int k = 0; k < 12; ++k) {
    _mm256_store_ps(lanes, a[k]);
    for (float v : lanes) out += v;
  }
  return out;
}
/// GFLOP/s of `threads` cores running the FMA chains at once (median of 5), at the active level.
double fma_peak(std::size_t threads) {
  const xg::Isa isa = xg::active_isa();
  if (isa == xg::Isa::Baseline) return 0.0;  // no FMA instructions at the baseline
  constexpr long kIters = 50'000'000;
  std::vector<double> runs;
  for (int r = 0; r < 5; ++r) {
    std::vector<double> per(threads);
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        per[t] = isa == xg::Isa::Avx512 ? fma_gflops<16>(kIters, fma_chains_avx512) : fma_gflops<8>(kIters, fma_chains_avx2);
      });
    for (auto& th : pool) th.join();
    double sum = 0;
    for (double v : per) sum += v;
    runs.push_back(sum);
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

nlohmann::json bench_peak() {
  nlohmann::json out;
  for (std::size_t threads : {1, 2}) {
    const double g = fma_peak(threads);
    std::printf("FMA peak (%s, %zu thread%s): %.1f GFLOP/s\n", xg::to_string(xg::active_isa()), threads,
                threads == 1 ? "" : "s", g);
    out[threads == 1 ? "gflops_1_thread" : "gflops_2_threads"] = g;
  }
  return out;
}


/// Median seconds of one SGD training step (forward, backward, update) of the `arch` network on a fixed random batch,
/// PyTorch's initialisation scale (as bench/torch_bench.py), at the current thread count.
double train_step_seconds(const std::string& arch, std::size_t batch) {
  Rng rng(0);
  mnist::MnistCnnConfig cfg = mnist::MnistCnnConfig::preset(arch);
  cfg.init = mnist::InitScheme::PyTorch;
  mnist::MnistCnn<float> model(cfg, rng);
  nn::Sgd<float> opt(model.parameters(), {.lr = 0.01});
  Variable<float> x(randn({batch, 1, 28, 28}, 7));
  ops::Labels y(batch);
  for (std::size_t i = 0; i < batch; ++i) y[i] = static_cast<std::int64_t>(i % 10);
  return median_seconds([&] {
    opt.zero_grad();
    ops::cross_entropy(model(x), y).backward();
    opt.step();
  });
}

/// One GEMM of a training step: the arguments of its gemm / parallel_gemm call and how often a step makes it.
struct StepGemm {
  std::string what;
  bool ta, tb;
  std::size_t m, n, k, calls;
  bool row_blocked;  ///< through parallel_gemm (the fully connected layers), else gemm (the convolutions' blocks)
  bool runs = true;  ///< false: counted (dense-equivalent FLOPs) but replaced by conv2d_max_pool2d's sparse passes
};

/// The GEMMs of one training step of `cfg` at `batch`, as ops/conv_kernels.h and ops/matmul.cpp issue them: per block
/// of images (detail::block_size) the forward w·col, the weight gradient g·colᵀ and, except for the first layer, the
/// input gradient wᵀ·g; the fully connected layers' forward x·wᵀ and two gradients. A max-pooled layer with patches
/// of kSparsePatchMin values or more computes its two gradients with the sparse passes instead: those GEMMs are listed
/// with runs = false (their FLOPs still count in training_flops_per_image: the dense-equivalent work).
std::vector<StepGemm> step_gemms(const mnist::MnistCnnConfig& cfg, std::size_t batch) {
  std::vector<StepGemm> out;
  std::size_t side = 28, channels = 1;
  for (std::size_t s = 0; s < cfg.stages.size(); ++s) {
    const auto& st = cfg.stages[s];
    const std::size_t oh = side - st.kernel + 1, ohw = oh * oh, ckk = channels * st.kernel * st.kernel;
    const std::size_t block = ops::detail::block_size(batch, ckk, ohw);
    const std::string name = "conv " + std::to_string(channels) + "->" + std::to_string(st.maps);
    // Blocks of `block` images and, when the batch does not divide, one shorter block.
    for (std::size_t nb : {block, batch % block}) {
      const std::size_t calls = nb == block ? batch / block : (nb ? 1 : 0);
      if (!calls) continue;
      const std::string img = " (" + std::to_string(nb) + " image" + (nb == 1 ? ")" : "s)");
      out.push_back({name + " forward" + img, false, false, st.maps, nb * ohw, ckk, calls, false});
      const bool dense = !(st.pool == nn::PoolKind::Max && ckk >= ops::detail::kSparsePatchMin);
      out.push_back({name + " weight grad" + img, false, true, st.maps, ckk, nb * ohw, calls, false, dense});
      if (s > 0) out.push_back({name + " input grad" + img, true, false, ckk, nb * ohw, st.maps, calls, false, dense});
    }
    side = oh / st.pool_size;
    channels = st.maps;
  }
  std::size_t in = channels * side * side;
  std::vector<std::size_t> widths = cfg.hidden;
  widths.push_back(10);
  for (std::size_t w : widths) {
    const std::string name = "fc " + std::to_string(in) + "->" + std::to_string(w);
    out.push_back({name + " forward", false, true, batch, w, in, 1, true});
    out.push_back({name + " input grad", false, false, batch, in, w, 1, true});
    out.push_back({name + " weight grad", true, false, w, in, batch, 1, true});
    in = w;
  }
  return out;
}

/// Multiply-add FLOPs of one training image (forward, and backward for the weights and for every input that needs
/// it: not the images) through the convolutions and fully connected layers; activations and pools are left out
/// (they are memory-bound and ~1% of the count).
/// Counted as the GEMMs of a step (step_gemms): every FLOP counted is in one.
double training_flops_per_image(const mnist::MnistCnnConfig& c) {
  const std::size_t batch = 64;
  double flops = 0;
  for (const StepGemm& g : step_gemms(c, batch))
    flops += 2.0 * static_cast<double>(g.m * g.n * g.k) * static_cast<double>(g.calls);
  return flops / static_cast<double>(batch);
}

/// Times every GEMM of a batch-64 training step alone (cache-hot operands, one thread, the BLAS xgrad loaded) and
/// the whole step, and prints the bound: the images/s xgrad would reach if everything but the GEMMs took no time.
nlohmann::json bench_gemm() {
  nlohmann::json rows = nlohmann::json::array();
  set_num_threads(1);
  const std::size_t batch = 64;
  for (const char* arch : {"seed", "deep"}) {
    const mnist::MnistCnnConfig cfg = mnist::MnistCnnConfig::preset(arch);
    std::printf("%s network, batch %zu, one thread: every GEMM of a training step, timed alone\n", arch, batch);
    std::printf("  %-36s %-16s %10s %8s %6s %9s\n", "gemm", "M x N x K", "us/call", "GFLOP/s", "calls", "ms/step");
    double gemm_seconds = 0;
    for (const StepGemm& sg : step_gemms(cfg, batch)) {
      if (!sg.runs) {
        std::printf("  %-36s sparse passes over the max-pool's window maxima instead (not a GEMM)\n", sg.what.c_str());
        continue;
      }
      std::vector<float> a(sg.m * sg.k, 0.5f), b(sg.k * sg.n, 0.25f), c(sg.m * sg.n);
      const std::size_t lda = sg.ta ? sg.m : sg.k, ldb = sg.tb ? sg.k : sg.n;
      const double t = median_seconds([&] {
        if (sg.row_blocked)
          parallel_gemm<float>(sg.ta, sg.tb, sg.m, sg.n, sg.k, 1.f, a.data(), lda, b.data(), ldb, 0.f, c.data(), sg.n);
        else
          gemm<float>(sg.ta, sg.tb, sg.m, sg.n, sg.k, 1.f, a.data(), lda, b.data(), ldb, 0.f, c.data(), sg.n);
      });
      const double gf = 2.0 * static_cast<double>(sg.m * sg.n * sg.k) / t * 1e-9;
      const std::string shape = std::to_string(sg.m) + "x" + std::to_string(sg.n) + "x" + std::to_string(sg.k);
      std::printf("  %-36s %-16s %10.1f %8.1f %6zu %9.3f\n", sg.what.c_str(), shape.c_str(), t * 1e6, gf, sg.calls,
                  t * static_cast<double>(sg.calls) * 1e3);
      gemm_seconds += t * static_cast<double>(sg.calls);
      rows.push_back({{"arch", arch}, {"gemm", sg.what}, {"m", sg.m}, {"n", sg.n}, {"k", sg.k}, {"us_per_call", t * 1e6},
                      {"gflops", gf}, {"calls_per_step", sg.calls}});
    }
    const double step = train_step_seconds(arch, batch);
    std::printf("  GEMMs %.3f ms of a %.3f ms step (%.0f%%): %.0f images/s now, %.0f if the rest took no time\n\n",
                gemm_seconds * 1e3, step * 1e3, 100 * gemm_seconds / step, batch / step, batch / gemm_seconds);
    rows.push_back({{"arch", arch}, {"gemm_ms_per_step", gemm_seconds * 1e3}, {"step_ms", step * 1e3},
                    {"images_per_second", batch / step}, {"gemm_bound_images_per_second", batch / gemm_seconds}});
  }
  set_num_threads(0);
  return rows;
}

nlohmann::json bench_train() {
  nlohmann::json rows = nlohmann::json::array();
  for (const char* arch : {"seed", "seed-l2", "deep"}) {
    for (std::size_t batch : {10, 64}) {
      for (std::size_t threads : {1, 2}) {
        set_num_threads(threads);
        const mnist::MnistCnnConfig cfg = mnist::MnistCnnConfig::preset(arch);
        const double t = train_step_seconds(arch, batch);
        const double ips = static_cast<double>(batch) / t;
        const double gflops = ips * training_flops_per_image(cfg) * 1e-9;
        std::printf("train %-8s batch %-3zu %zu thr  %9.1f images/s  (%.3f ms/step, %.2f MFLOP/image, %.1f GFLOP/s)\n", arch,
                    batch, threads, ips, t * 1e3, training_flops_per_image(cfg) * 1e-6, gflops);
        rows.push_back({{"workload", "train"}, {"arch", arch}, {"batch", batch}, {"threads", threads}, {"images_per_second", ips},
                        {"mflop_per_image", training_flops_per_image(cfg) * 1e-6}, {"gflops", gflops}});
      }
    }
  }
  for (std::size_t threads : {1, 2}) {
    set_num_threads(threads);
    Rng rng(0);
    mnist::MnistCnn<float> model(mnist::MnistCnnConfig::preset("seed"), rng);
    model.eval();
    Variable<float> x(randn({1000, 1, 28, 28}, 8));
    const double t = median_seconds([&] {
      NoGradGuard g;
      model(x);
    });
    std::printf("infer seed     batch 1000 %zu thr  %9.1f images/s\n", threads, 1000.0 / t);
    rows.push_back({{"workload", "infer"}, {"arch", "seed"}, {"batch", 1000}, {"threads", threads}, {"images_per_second", 1000.0 / t}});
  }
  set_num_threads(0);
  return rows;
}

/// What a background prefetch could hide: the time the DataLoader takes to assemble one batch of 64 MNIST-format
/// images (bytes to floats, shuffled order), with and without a random shift, against one training step of the deep
/// network on the same batch size (1 thread).
nlohmann::json bench_loader() {
  set_num_threads(1);
  const std::size_t n = 8192, batch = 64;
  std::vector<std::uint8_t> px(n * 784), lb(n);
  Rng r(3);
  for (auto& v : px) v = static_cast<std::uint8_t>(r.below(256));
  for (auto& v : lb) v = static_cast<std::uint8_t>(r.below(10));
  const data::MnistDataset d(std::move(px), std::move(lb));
  nlohmann::json rows = nlohmann::json::array();
  for (int shift : {0, 2}) {
    data::DataLoader loader(d, {.batch_size = batch, .shuffle = true});
    if (shift) loader.add_transform(std::make_shared<data::RandomShift>(static_cast<std::size_t>(shift), 1));
    loader.start_epoch(0);
    std::size_t epoch = 0;
    data::Batch b;
    const double t = median_seconds([&] {
      if (!loader.next(b)) {
        loader.start_epoch(++epoch);
        loader.next(b);
      }
    });
    std::printf("loader batch %zu shift %d      %9.1f us/batch\n", batch, shift, t * 1e6);
    rows.push_back({{"workload", "loader"}, {"batch", batch}, {"shift", shift}, {"us_per_batch", t * 1e6}});
  }
  Rng rng(0);
  mnist::MnistCnnConfig cfg = mnist::MnistCnnConfig::preset("deep");
  mnist::MnistCnn<float> model(cfg, rng);
  nn::Sgd<float> opt(model.parameters(), nn::SgdOptions{0.01});
  Variable<float> x(randn({batch, 1, 28, 28}, 5));
  const ops::Labels y(batch, 3);
  const double step = median_seconds([&] {
    opt.zero_grad();
    ops::cross_entropy(model(x), y).backward();
    opt.step();
  });
  std::printf("deep train step batch %zu      %9.1f us/step\n", batch, step * 1e6);
  rows.push_back({{"workload", "deep_step"}, {"batch", batch}, {"us_per_step", step * 1e6}});
  set_num_threads(0);
  return rows;
}


/// Heap bytes in use (glibc: small chunks plus mmapped blocks), a measure of live tensors that the allocator's reuse of
/// freed memory (peak RSS) does not blur.
double heap_mib() {
  const struct mallinfo2 m = mallinfo2();
  return static_cast<double>(m.uordblks + m.hblkhd) / (1024.0 * 1024.0);
}

/// What a training step's graph holds at its peak: heap in use right after the forward (the loss alive, nothing
/// released by backward yet) minus just before it, one thread, after two warm-up steps.
nlohmann::json bench_memory() {
  nlohmann::json rows = nlohmann::json::array();
  set_num_threads(1);
  for (const char* arch : {"seed", "deep"}) {
    for (std::size_t batch : {64, 512}) {
      Rng rng(0);
      mnist::MnistCnnConfig cfg = mnist::MnistCnnConfig::preset(arch);
      mnist::MnistCnn<float> model(cfg, rng);
      nn::Sgd<float> opt(model.parameters(), {.lr = 0.01});
      Variable<float> x(randn({batch, 1, 28, 28}, 7));
      ops::Labels y(batch);
      for (std::size_t i = 0; i < batch; ++i) y[i] = static_cast<std::int64_t>(i % 10);
      for (int warm = 0; warm < 2; ++warm) {  // scratch buffers and optimizer state exist from here on
        opt.zero_grad();
        ops::cross_entropy(model(x), y).backward();
        opt.step();
      }
      opt.zero_grad();
      const double before = heap_mib();
      auto loss = ops::cross_entropy(model(x), y);
      const double graph = heap_mib() - before;
      loss.backward();
      opt.step();
      std::printf("memory %-6s batch %-4zu graph after the forward %8.2f MiB (%.1f KiB per image)\n", arch, batch, graph,
                  graph * 1024.0 / static_cast<double>(batch));
      rows.push_back({{"workload", "memory"}, {"arch", arch}, {"batch", batch}, {"graph_mib", graph}});
    }
  }
  set_num_threads(0);
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  xg::tune_malloc_for_training();  // a training program opts in (core/memory.h)
  std::vector<std::string> what;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--runs" && i + 1 < argc) g_runs = std::max(3, std::atoi(argv[++i]));
    else if (a == "ops" || a == "engine" || a == "train" || a == "peak" || a == "loader" || a == "memory" ||
             a == "gemm")
      what.push_back(a);
    else {
      std::fprintf(stderr, "usage: xgrad_bench [ops] [engine] [train] [peak] [loader] [memory] [gemm] [--runs N] [--json PATH]\n");
      return 2;
    }
  }
  if (what.empty()) what = {"peak", "ops", "engine", "train"};
  nlohmann::json out;
  out["runs"] = g_runs;
  // Say what runs, so that no table is read without it.
  out["cpu"] = xg::cpu_model_name();
  out["kernels"] = xg::kernel_description();
  std::printf("xgrad_bench on %s; kernels: %s\n", out["cpu"].get<std::string>().c_str(), out["kernels"].get<std::string>().c_str());
  for (const auto& w : what) {
    if (w == "ops") out["ops"] = bench_ops();
    if (w == "engine") out["engine"] = bench_engine();
    if (w == "train") out["train"] = bench_train();
    if (w == "peak") out["peak"] = bench_peak();
    if (w == "loader") out["loader"] = bench_loader();
    if (w == "memory") out["memory"] = bench_memory();
    if (w == "gemm") out["gemm"] = bench_gemm();
  }
  if (!json_path.empty()) {
    const std::string text = out.dump(2) + "\n";
    xg::files::write_atomic(json_path, text.data(), text.size(), "--json");
  }
  return 0;
}
