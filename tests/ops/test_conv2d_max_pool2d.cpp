// conv2d_max_pool2d: the bits of max_pool2d(activation(conv2d(...))) forward and backward, gradcheck, bit-identity
// across thread counts, and its errors. (nn::conv2d_pool, which chooses it: tests/nn/test_layers.cpp.)
#include <cmath>
#include <cstring>
#include <limits>

#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

namespace {

struct FusedCase {
  Shape x, w;
  ops::Size2 pool;
  std::int64_t stride, padding, dilation;
  bool need_x, bias;
};

std::string describe(const FusedCase& k) {
  return "x " + shape_str(k.x) + " w " + shape_str(k.w) + " pool " + ops::to_string(k.pool) + " stride " +
         std::to_string(k.stride) + " padding " + std::to_string(k.padding) + " dilation " + std::to_string(k.dilation) +
         (k.need_x ? " dx" : "") + (k.bias ? " bias" : "");
}

/// The MNIST layers (one-image blocks, maps 24 and 8 wide), blocks of several images, odd maps that leave a row and a
/// column outside every window, 3×3, 2×3 and 1×1 windows, strided, padded and dilated convolutions.
const std::vector<FusedCase> kCases = {
    {{16, 1, 28, 28}, {20, 1, 5, 5}, 2, 1, 0, 1, false, true},
    {{8, 20, 12, 12}, {40, 20, 5, 5}, 2, 1, 0, 1, true, true},
    {{3, 2, 9, 7}, {4, 2, 3, 3}, 2, 1, 0, 1, true, false},
    {{2, 3, 11, 11}, {2, 3, 3, 3}, 3, 1, 0, 1, true, true},
    {{2, 2, 10, 9}, {3, 2, 3, 2}, 2, 2, 1, 1, true, true},
    {{1, 1, 12, 12}, {2, 1, 3, 3}, 2, 1, 2, 2, true, true},
    {{4, 3, 9, 11}, {5, 3, 2, 2}, {2, 3}, 1, 0, 1, true, true},
    {{2, 2, 6, 5}, {3, 2, 3, 3}, 1, 1, 1, 1, true, true},
};

template <class T>
std::vector<Tensor<T>> run(const FusedCase& k, ops::Activation a, bool fused) {
  const Tensor<T> x = random_tensor<T>(k.x, 30, -2, 2), w = random_tensor<T>(k.w, 31), b = random_tensor<T>({k.w[0]}, 32);
  Variable<T> xv(x, k.need_x), wv(w, true), bv = k.bias ? Variable<T>(b, true) : Variable<T>();
  Variable<T> y = fused ? ops::conv2d_max_pool2d(xv, wv, bv, k.pool, k.stride, k.padding, k.dilation, a)
                        : ops::max_pool2d(ops::conv2d(xv, wv, bv, k.stride, k.padding, k.dilation, a), k.pool);
  y.backward(random_tensor<T>(y.shape(), 33));
  std::vector<Tensor<T>> out{y.value(), wv.grad()};
  if (k.need_x) out.push_back(xv.grad());
  if (k.bias) out.push_back(bv.grad());
  return out;
}

const ops::Activation kActivations[] = {ops::Activation::None, ops::Activation::Relu, ops::Activation::Sigmoid,
                                        ops::Activation::Tanh};

}  // namespace

TEST_SUITE("conv2d_max_pool2d") {

TEST_CASE_TEMPLATE("conv2d_max_pool2d gives the bits of max_pool2d after conv2d, output and every gradient", T, float, double) {
  for (const FusedCase& k : kCases)
    for (const ops::Activation a : kActivations) {
      CAPTURE(describe(k));
      CAPTURE(ops::to_string(a));
      const auto fused = run<T>(k, a, true), separate = run<T>(k, a, false);
      REQUIRE(fused.size() == separate.size());
      for (std::size_t i = 0; i < fused.size(); ++i) {
        CAPTURE(i);
        CHECK(xgt::bit_equal(fused[i], separate[i]));
      }
    }
}

TEST_CASE("conv2d_max_pool2d passes gradcheck in x, w and b for every activation") {
  std::uint64_t seed = 400;
  for (const FusedCase& k : kCases) {
    if (k.x[0] * k.x[1] * k.x[2] * k.x[3] > 2000) continue;  // the small cases: gradcheck perturbs every input
    for (const ops::Activation a : kActivations) {
      CAPTURE(describe(k));
      CAPTURE(ops::to_string(a));
      std::vector<Tensor<double>> in{random_tensor(k.x, seed++), random_tensor(k.w, seed++)};
      if (k.bias) in.push_back(random_tensor({k.w[0]}, seed++));
      CHECK_GRADCHECK([k, a](const auto& v) {
        return ops::conv2d_max_pool2d(v[0], v[1], k.bias ? v[2] : Variable<double>(), k.pool, k.stride, k.padding,
                                      k.dilation, a);
      }, in);
    }
  }
}

TEST_CASE("conv2d_max_pool2d is bit-identical at 1, 2 and 3 threads, and its float32 agrees with float64") {
  const Tensor<float> w = random_tensor<float>({20, 1, 5, 5}, 40), w4 = random_tensor<float>({6, 4, 3, 3}, 45);
  for (const ops::Activation a : kActivations) {
    CAPTURE(ops::to_string(a));
    // One-image blocks (24×24 maps), and blocks of three images (8×8 maps: the block-major gradient layout).
    xgt::check_thread_identity([&](const Variable<float>& x) { return ops::conv2d_max_pool2d(x, Variable<float>(w), {}, 2, 1, 0, 1, a); },
                               random_tensor<float>({12, 1, 28, 28}, 41));
    xgt::check_thread_identity([&](const Variable<float>& x) { return ops::conv2d_max_pool2d(x, Variable<float>(w4), {}, 2, 1, 0, 1, a); },
                               random_tensor<float>({12, 4, 10, 10}, 46));
    auto r = check_float_against_double(
        [a](const auto& v) { return ops::conv2d_max_pool2d(v[0], v[1], v[2], 2, 1, 0, 1, a); },
        {random_tensor({8, 20, 12, 12}, 42), random_tensor({40, 20, 5, 5}, 43), random_tensor({40}, 44)});
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("conv2d_max_pool2d propagates NaN and infinity in a window as max_pool2d does") {
  // A 1×1 convolution with weight 1 passes the input through: NaN and +inf win their windows, -inf never does.
  Tensor<double> x = random_tensor({1, 1, 4, 6}, 70);
  x.data()[0] = std::numeric_limits<double>::quiet_NaN();
  x.data()[8] = std::numeric_limits<double>::infinity();
  x.data()[20] = -std::numeric_limits<double>::infinity();
  const Variable<double> xv(x), w(full<double>({1, 1, 1, 1}, 1.0));
  const Tensor<double> fused = ops::conv2d_max_pool2d(xv, w, {}, 2).value(), separate = ops::max_pool2d(ops::conv2d(xv, w), 2).value();
  CHECK(xgt::bit_equal(fused, separate));
  CHECK(std::isnan(fused.data()[0]));
  CHECK(fused.data()[1] == std::numeric_limits<double>::infinity());
}

TEST_CASE("conv2d_max_pool2d is named after its parts and refuses bad pools and bad convolutions when called") {
  Variable<double> x(random_tensor({2, 3, 8, 8}, 50)), w(random_tensor({4, 3, 3, 3}, 51), true);
  const Variable<double> y = ops::conv2d_max_pool2d(x, w, {}, 2, 1, 0, 1, ops::Activation::Relu);
  CHECK(y.shape() == Shape{2, 4, 3, 3});
  CHECK(y.creator()->name() == std::string("conv2d+relu+max_pool2d"));
  CHECK_THROWS_WITH_AS(ops::conv2d_max_pool2d(x, w, {}, 7, 1, 0, 1, ops::Activation::Sigmoid),
                       doctest::Contains("conv2d+sigmoid+max_pool2d: pool size (7, 7) is larger than the convolution's "
                                         "output (6, 6) (input [2,3,8,8], weight [4,3,3,3])"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d_max_pool2d(x, w, {}, {2, 0}), doctest::Contains("conv2d+max_pool2d: pool size must be positive, got (2, 0)"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d_max_pool2d(x, Variable<double>(random_tensor({4, 2, 3, 3}, 52)), {}, 2),
                       doctest::Contains("conv2d+max_pool2d: weight of shape [4,2,3,3] expects input with 2 channels"), ShapeError);
}

}  // TEST_SUITE
