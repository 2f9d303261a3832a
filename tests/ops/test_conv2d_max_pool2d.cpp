// conv2d_max_pool2d: the bits of max_pool2d(activation(conv2d(...))) forward and backward, gradcheck, bit-identity
// across thread counts, and its errors. (nn::conv2d_pool, which chooses it: tests/nn/test_layers.cpp.)
#include <cmath>
#include <cstring>
#include <limits>

#include "helpers.h"
#include "ops/conv_kernels.h"

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
    // Patches of 72 values or more: the sparse weight and input gradient passes (valid, strided and padded, padded
    // and dilated geometry).
    {{3, 8, 9, 9}, {4, 8, 3, 3}, 2, 1, 0, 1, true, true},
    {{2, 8, 8, 7}, {3, 8, 3, 3}, 2, 2, 1, 1, true, true},
    {{1, 8, 12, 12}, {2, 8, 3, 3}, 2, 1, 2, 2, true, true},
    // One filter, a non-square kernel whose width (4) has no compiled-in copy, a non-square 1×2 pool.
    {{2, 16, 6, 9}, {1, 16, 2, 4}, {1, 2}, 1, 0, 1, true, true},
};

/// Whether conv2d_max_pool2d's backward takes the sparse passes for this case (patches of kSparsePatchMin or more).
bool sparse(const FusedCase& k) { return k.w[1] * k.w[2] * k.w[3] >= ops::detail::kSparsePatchMin; }

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

TEST_CASE_TEMPLATE("conv2d_max_pool2d gives the bits of max_pool2d after conv2d (long patches: its dw and dx within rounding)", T,
                   float, double) {
  // The output and db always have the two ops' bits, and so do dw and dx for short patches (the same dense passes).
  // For long patches dw and dx skip the cells the pool did not select and add the rest in another order.
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-13;
  for (const FusedCase& k : kCases)
    for (const ops::Activation a : kActivations) {
      CAPTURE(describe(k));
      CAPTURE(ops::to_string(a));
      const auto fused = run<T>(k, a, true), separate = run<T>(k, a, false);
      REQUIRE(fused.size() == separate.size());
      for (std::size_t i = 0; i < fused.size(); ++i) {
        CAPTURE(i);
        const bool dw_or_dx = i == 1 || (i == 2 && k.need_x);
        if (sparse(k) && dw_or_dx) {
          double worst = 0, scale = 1;
          for (std::size_t e = 0; e < fused[i].size(); ++e) {
            worst = std::max(worst, std::abs(double(fused[i].data()[e]) - double(separate[i].data()[e])));
            scale = std::max(scale, std::abs(double(separate[i].data()[e])));
          }
          CHECK_MESSAGE(worst <= tol * scale, "max difference " << worst << " against values up to " << scale);
        } else {
          CHECK(xgt::bit_equal(fused[i], separate[i]));
        }
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
  const Tensor<float> w = random_tensor<float>({20, 1, 5, 5}, 40), w4 = random_tensor<float>({6, 4, 3, 3}, 45),
                      w8 = random_tensor<float>({6, 8, 3, 3}, 49);
  for (const ops::Activation a : kActivations) {
    CAPTURE(ops::to_string(a));
    // One-image blocks (24×24 maps), and blocks of three images (8×8 maps: the block-major gradient layout).
    xgt::check_thread_identity([&](const Variable<float>& x) { return ops::conv2d_max_pool2d(x, Variable<float>(w), {}, 2, 1, 0, 1, a); },
                               random_tensor<float>({12, 1, 28, 28}, 41));
    xgt::check_thread_identity([&](const Variable<float>& x) { return ops::conv2d_max_pool2d(x, Variable<float>(w4), {}, 2, 1, 0, 1, a); },
                               random_tensor<float>({12, 4, 10, 10}, 46));
    // Long patches (the sparse passes: weight-gradient chunks of images, input gradient per image), valid and padded.
    xgt::check_thread_identity([&](const Variable<float>& x) { return ops::conv2d_max_pool2d(x, Variable<float>(w8), {}, 2, 1, 0, 1, a); },
                               random_tensor<float>({17, 8, 10, 10}, 47));
    xgt::check_thread_identity([&](const Variable<float>& x) { return ops::conv2d_max_pool2d(x, Variable<float>(w8), {}, 2, 2, 1, 1, a); },
                               random_tensor<float>({9, 8, 11, 11}, 48));
    auto r = check_float_against_double(
        [a](const auto& v) { return ops::conv2d_max_pool2d(v[0], v[1], v[2], 2, 1, 0, 1, a); },
        {random_tensor({8, 20, 12, 12}, 42), random_tensor({40, 20, 5, 5}, 43), random_tensor({40}, 44)});
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("conv2d_max_pool2d's weight and bias gradients are bit-identical at 1, 2 and 3 threads, long patches included") {
  const Tensor<float> x = random_tensor<float>({19, 8, 10, 10}, 50);
  for (const Shape& ws : {Shape{6, 8, 3, 3}, Shape{5, 2, 3, 3}}) {  // sparse (72-value patches) and dense (18)
    CAPTURE(shape_str(ws));
    const Tensor<float> w = random_tensor<float>(ws, 51), b = random_tensor<float>({ws[0]}, 52);
    const Tensor<float> xs = xt::eval(xt::view(x, xt::all(), xt::range(0, ws[1]), xt::all(), xt::all()));
    std::vector<std::pair<Tensor<float>, Tensor<float>>> grads;
    for (std::size_t threads : {1, 2, 3}) {
      set_num_threads(threads);
      Variable<float> wv(w, true), bv(b, true);
      ops::sum(ops::conv2d_max_pool2d(Variable<float>(xs), wv, bv, 2, 1, 0, 1, ops::Activation::Relu)).backward();
      grads.emplace_back(wv.grad(), bv.grad());
    }
    set_num_threads(0);
    for (std::size_t t = 1; t < grads.size(); ++t) {
      CHECK(xgt::bit_equal(grads[0].first, grads[t].first));
      CHECK(xgt::bit_equal(grads[0].second, grads[t].second));
    }
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
