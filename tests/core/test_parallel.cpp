// Determinism: every parallel kernel gives the same bits at 1, 2 and 3 threads (fixed chunking, disjoint writes).
#include "core/parallel.h"
#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

namespace {

/// Forward + backward of `f` on float32 inputs; returns the output and every input gradient.
template <class F>
std::vector<Tensor<float>> run(F f, const std::vector<Tensor<float>>& inputs) {
  std::vector<Variable<float>> xs;
  for (const auto& t : inputs) xs.emplace_back(t, true);
  Variable<float> y = f(xs);
  Tensor<float> v = random_tensor<float>(y.shape(), 99);
  y.backward(v);
  std::vector<Tensor<float>> out{y.value()};
  for (auto& x : xs) out.push_back(x.grad());
  return out;
}

template <class F>
void check_thread_invariant(F f, const std::vector<Tensor<float>>& inputs) {
  set_num_threads(1);
  const auto one = run(f, inputs);
  for (std::size_t threads : {2, 3}) {
    set_num_threads(threads);
    const auto many = run(f, inputs);
    for (std::size_t i = 0; i < one.size(); ++i)
      CHECK_MESSAGE(xgt::bit_equal(one[i], many[i]), "tensor " << i << " differs at " << threads << " threads");
  }
  set_num_threads(0);
}

}  // namespace

TEST_SUITE("parallel") {

TEST_CASE("parallel_for covers every index exactly once in fixed chunks") {
  for (std::size_t threads : {1, 2, 3}) {
    set_num_threads(threads);
    std::vector<int> hits(1001, 0);
    std::vector<std::pair<std::size_t, std::size_t>> chunks(1001);
    parallel_for(0, 1001, 64, [&](std::size_t lo, std::size_t hi) {
      chunks[lo] = {lo, hi};
      for (std::size_t i = lo; i < hi; ++i) ++hits[i];
    });
    for (int h : hits) CHECK(h == 1);
    for (std::size_t lo = 0; lo < 1001; lo += 64) CHECK(chunks[lo].second == std::min<std::size_t>(1001, lo + 64));
  }
  set_num_threads(0);
}

TEST_CASE("parallel_for propagates an exception thrown by a task") {
  CHECK_THROWS_AS(parallel_for(0, 100, 1, [](std::size_t lo, std::size_t) {
    if (lo == 57) throw std::runtime_error("task 57");
  }), std::runtime_error);
}

TEST_CASE("conv2d forward and backward are bit-identical at 1, 2 and 3 threads on MNIST-sized batches") {
  SUBCASE("64 images, 1 -> 20 maps, 28x28, kernel 5") {
    check_thread_invariant([](const auto& v) { return ops::conv2d(v[0], v[1], v[2]); },
                           {random_tensor<float>({64, 1, 28, 28}, 1), random_tensor<float>({20, 1, 5, 5}, 2),
                            random_tensor<float>({20}, 3)});
  }
  SUBCASE("64 images, 20 -> 40 maps, 12x12, kernel 5, padding 1, stride 2") {
    check_thread_invariant([](const auto& v) { return ops::conv2d(v[0], v[1], v[2], 2, 1); },
                           {random_tensor<float>({64, 20, 12, 12}, 4), random_tensor<float>({40, 20, 5, 5}, 5),
                            random_tensor<float>({40}, 6)});
  }
}

TEST_CASE("pools, matmul, linear and elementwise ops are bit-identical at 1, 2 and 3 threads") {
  const auto x = random_tensor<float>({64, 20, 24, 24}, 7);
  check_thread_invariant([](const auto& v) { return ops::max_pool2d(v[0], 2); }, {x});
  check_thread_invariant([](const auto& v) { return ops::l2_pool2d(v[0], 3, 2, 1); }, {x});
  check_thread_invariant([](const auto& v) { return ops::avg_pool2d(v[0], 2); }, {x});
  check_thread_invariant([](const auto& v) { return ops::sigmoid(v[0]) * v[0]; }, {x});
  check_thread_invariant([](const auto& v) { return ops::linear(v[0], v[1], v[2]); },
                         {random_tensor<float>({64, 640}, 8), random_tensor<float>({100, 640}, 9),
                          random_tensor<float>({100}, 10)});
  check_thread_invariant([](const auto& v) { return ops::matmul(v[0], v[1]); },  // large: split into row blocks
                         {random_tensor<float>({300, 320}, 12), random_tensor<float>({320, 200}, 13)});
  check_thread_invariant([](const auto& v) { return ops::cross_entropy(v[0], ops::Labels(64, 3)); },
                         {random_tensor<float>({64, 10}, 11)});
}

}  // TEST_SUITE
