// conv2d: plain-loop reference, a seeded gradcheck sweep, float32 vs float64, and every bad-input error.
#include <cstring>
#include <type_traits>

#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

namespace {

struct ConvCase {
  std::size_t n, c, h, w, f, kh, kw;
  std::int64_t sh, sw, ph, pw, dh, dw;
  bool bias;
};

std::string describe(const ConvCase& k) {
  return "x [" + std::to_string(k.n) + "," + std::to_string(k.c) + "," + std::to_string(k.h) + "," +
         std::to_string(k.w) + "] w [" + std::to_string(k.f) + "," + std::to_string(k.c) + "," + std::to_string(k.kh) +
         "," + std::to_string(k.kw) + "] stride (" + std::to_string(k.sh) + "," + std::to_string(k.sw) + ") pad (" +
         std::to_string(k.ph) + "," + std::to_string(k.pw) + ") dil (" + std::to_string(k.dh) + "," +
         std::to_string(k.dw) + ")" + (k.bias ? " bias" : "");
}

/// The oracle: seven nested loops in double, no im2col, no BLAS.
Tensor<double> conv_reference(const Tensor<double>& x, const Tensor<double>& w, const Tensor<double>* b, const ConvCase& k) {
  const std::int64_t H = static_cast<std::int64_t>(k.h), W = static_cast<std::int64_t>(k.w);
  const std::size_t oh = static_cast<std::size_t>((H + 2 * k.ph - k.dh * (static_cast<std::int64_t>(k.kh) - 1) - 1) / k.sh + 1);
  const std::size_t ow = static_cast<std::size_t>((W + 2 * k.pw - k.dw * (static_cast<std::int64_t>(k.kw) - 1) - 1) / k.sw + 1);
  Tensor<double> y = zeros<double>({k.n, k.f, oh, ow});
  for (std::size_t n = 0; n < k.n; ++n)
    for (std::size_t f = 0; f < k.f; ++f)
      for (std::size_t i = 0; i < oh; ++i)
        for (std::size_t j = 0; j < ow; ++j) {
          double acc = b ? b->data()[f] : 0.0;
          for (std::size_t c = 0; c < k.c; ++c)
            for (std::size_t p = 0; p < k.kh; ++p)
              for (std::size_t q = 0; q < k.kw; ++q) {
                const std::int64_t r = static_cast<std::int64_t>(i) * k.sh - k.ph + static_cast<std::int64_t>(p) * k.dh;
                const std::int64_t s = static_cast<std::int64_t>(j) * k.sw - k.pw + static_cast<std::int64_t>(q) * k.dw;
                if (r < 0 || r >= H || s < 0 || s >= W) continue;
                acc += w.data()[((f * k.c + c) * k.kh + p) * k.kw + q] *
                       x.data()[((n * k.c + c) * k.h + static_cast<std::size_t>(r)) * k.w + static_cast<std::size_t>(s)];
              }
          y.data()[((n * k.f + f) * oh + i) * ow + j] = acc;
        }
  return y;
}

bool valid(const ConvCase& k) {
  const std::int64_t eh = k.dh * (static_cast<std::int64_t>(k.kh) - 1) + 1, ew = k.dw * (static_cast<std::int64_t>(k.kw) - 1) + 1;
  return eh <= static_cast<std::int64_t>(k.h) + 2 * k.ph && ew <= static_cast<std::int64_t>(k.w) + 2 * k.pw;
}

/// The seeded sweep: hand-picked edge cases plus random configurations from the ranges.
std::vector<ConvCase> sweep() {
  std::vector<ConvCase> cases = {
      {1, 1, 5, 5, 1, 5, 5, 1, 1, 0, 0, 1, 1, true},   // kernel == input: 1x1 output
      {2, 3, 7, 5, 2, 3, 2, 1, 1, 0, 0, 1, 1, true},   // non-square input and kernel
      {1, 1, 9, 9, 2, 2, 2, 3, 3, 0, 0, 1, 1, false},  // stride > kernel (skipped pixels)
      {3, 1, 8, 7, 1, 3, 3, 2, 3, 1, 2, 1, 1, true},   // strides not dividing the input, padding
      {1, 3, 6, 6, 2, 3, 3, 1, 1, 2, 2, 2, 2, true},   // dilation and padding
      {2, 1, 1, 1, 3, 1, 1, 1, 1, 0, 0, 1, 1, true},   // 1x1 image, pointwise kernel
      {2, 3, 4, 5, 4, 1, 1, 1, 1, 0, 0, 1, 1, false},  // pointwise fast path
      {1, 1, 1, 3, 1, 3, 3, 1, 1, 1, 1, 1, 1, true},   // padding makes a 1-row image usable
  };
  xg::Rng rng(2026);
  const std::size_t kernels[] = {1, 2, 3, 5};
  while (cases.size() < 40) {
    ConvCase k{};
    k.n = 1 + rng.below(3);
    k.c = rng.below(2) ? 3 : 1;
    k.h = 1 + rng.below(9);
    k.w = 1 + rng.below(9);
    k.f = 1 + rng.below(3);
    k.kh = kernels[rng.below(4)];
    k.kw = rng.below(3) ? k.kh : kernels[rng.below(4)];
    k.sh = 1 + static_cast<std::int64_t>(rng.below(3));
    k.sw = rng.below(2) ? k.sh : 1 + static_cast<std::int64_t>(rng.below(3));
    k.ph = static_cast<std::int64_t>(rng.below(3));
    k.pw = rng.below(2) ? k.ph : static_cast<std::int64_t>(rng.below(3));
    k.dh = 1 + static_cast<std::int64_t>(rng.below(2));
    k.dw = 1 + static_cast<std::int64_t>(rng.below(2));
    k.bias = rng.below(2) == 0;
    if (valid(k)) cases.push_back(k);
  }
  return cases;
}

}  // namespace

TEST_SUITE("conv2d") {

TEST_CASE_TEMPLATE("conv2d forward matches the plain-loop reference over the seeded sweep", T, double, float) {
  const double tolerance = std::is_same_v<T, double> ? 1e-12 : 1e-5;  // against the float64 oracle
  std::uint64_t seed = 1;
  for (const auto& k : sweep()) {
    const auto x = random_tensor({k.n, k.c, k.h, k.w}, seed++), w = random_tensor({k.f, k.c, k.kh, k.kw}, seed++),
               b = random_tensor({k.f}, seed++);
    SUBCASE(describe(k).c_str()) {
      const auto ref = conv_reference(x, w, k.bias ? &b : nullptr, k);
      Variable<T> bv = k.bias ? Variable<T>(xt::cast<T>(b)) : Variable<T>();
      auto y = ops::conv2d(Variable<T>(xt::cast<T>(x)), Variable<T>(xt::cast<T>(w)), bv, {k.sh, k.sw}, {k.ph, k.pw},
                           {k.dh, k.dw});
      REQUIRE(y.shape() == xgt::shape(ref));
      CHECK(xgt::max_abs_diff(y.value(), ref) < tolerance);
    }
  }
}

TEST_CASE("conv2d matches the reference on the MNIST layer shapes (the fixed-width im2col paths, OW 8 and 24)") {
  for (const ConvCase& k : {ConvCase{2, 1, 28, 28, 3, 5, 5, 1, 1, 0, 0, 1, 1, true},
                            ConvCase{3, 20, 12, 12, 4, 5, 5, 1, 1, 0, 0, 1, 1, true},
                            ConvCase{2, 2, 28, 13, 2, 5, 5, 1, 1, 0, 0, 1, 1, false}}) {
    CAPTURE(describe(k));
    const auto x = random_tensor({k.n, k.c, k.h, k.w}, 50), w = random_tensor({k.f, k.c, k.kh, k.kw}, 51),
               b = random_tensor({k.f}, 52);
    const auto ref = conv_reference(x, w, k.bias ? &b : nullptr, k);
    Variable<double> xv(x, true), wv(w, true), bv = k.bias ? Variable<double>(b, true) : Variable<double>();
    auto y = ops::conv2d(xv, wv, bv);
    CHECK(xgt::max_abs_diff(y.value(), ref) < 1e-12);
    GradcheckOptions o;
    o.max_checks_per_input = 40;
    CHECK_GRADCHECK([&](const auto& v) { return ops::conv2d(v[0], v[1], k.bias ? v[2] : Variable<double>()); },
                    k.bias ? std::vector<Tensor<double>>{x, w, b} : std::vector<Tensor<double>>{x, w}, o);
  }
}

TEST_CASE("conv2d passes gradcheck for x, w and b over the seeded sweep") {
  std::uint64_t seed = 100;
  for (const auto& k : sweep()) {
    std::vector<Tensor<double>> in{random_tensor({k.n, k.c, k.h, k.w}, seed++), random_tensor({k.f, k.c, k.kh, k.kw}, seed++)};
    if (k.bias) in.push_back(random_tensor({k.f}, seed++));
    SUBCASE(describe(k).c_str()) {
      const bool bias = k.bias;
      CHECK_GRADCHECK([k, bias](const auto& v) {
        return ops::conv2d(v[0], v[1], bias ? v[2] : Variable<double>(), {k.sh, k.sw}, {k.ph, k.pw}, {k.dh, k.dw});
      }, in);
    }
  }
}

TEST_CASE("conv2d in float32 agrees with float64 on the MNIST layers (forward and all gradients)") {
  auto r = check_float_against_double([](const auto& v) { return ops::conv2d(v[0], v[1], v[2]); },
                                      {random_tensor({10, 1, 28, 28}, 1), random_tensor({3, 1, 5, 5}, 2), random_tensor({3}, 3)});
  CHECK_MESSAGE(r.ok, r.message);
  r = check_float_against_double([](const auto& v) { return ops::conv2d(v[0], v[1], v[2]); },
                                 {random_tensor({8, 20, 12, 12}, 4), random_tensor({40, 20, 5, 5}, 5), random_tensor({40}, 6)});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("conv2d with a fused activation gives the bits of conv2d followed by the activation, forward and backward") {
  // Blocks of one image and of several (the MNIST layers), with and without an input gradient and a bias.
  struct Case { Shape x, w; bool need_x, bias; };
  for (const Case& k : {Case{{64, 1, 28, 28}, {20, 1, 5, 5}, false, true}, Case{{8, 20, 12, 12}, {40, 20, 5, 5}, true, true},
                        Case{{3, 2, 9, 7}, {4, 2, 3, 3}, true, false}, Case{{1, 1, 6, 6}, {2, 1, 3, 3}, true, true}}) {
    for (const ops::Activation a : {ops::Activation::Relu, ops::Activation::Sigmoid, ops::Activation::Tanh}) {
      CAPTURE(ops::to_string(a));
      CAPTURE(shape_str(k.x));
      const Tensor<float> x = random_tensor<float>(k.x, 20, -2, 2), w = random_tensor<float>(k.w, 21),
                          b = random_tensor<float>({k.w[0]}, 22);
      auto run = [&](bool fused) {
        Variable<float> xv(x, k.need_x), wv(w, true), bv = k.bias ? Variable<float>(b, true) : Variable<float>();
        Variable<float> y = fused ? ops::conv2d(xv, wv, bv, 1, 0, 1, a) : ops::activation(ops::conv2d(xv, wv, bv), a);
        y.backward(random_tensor<float>(y.shape(), 23));
        std::vector<Tensor<float>> out{y.value(), wv.grad()};
        if (k.need_x) out.push_back(xv.grad());
        if (k.bias) out.push_back(bv.grad());
        return out;
      };
      const auto fused = run(true), separate = run(false);
      for (std::size_t i = 0; i < fused.size(); ++i) {
        CAPTURE(i);
        REQUIRE(fused[i].size() == separate[i].size());
        CHECK(std::memcmp(fused[i].data(), separate[i].data(), fused[i].size() * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("conv2d with a fused activation passes gradcheck, and its float32 agrees with float64") {
  std::uint64_t seed = 300;
  const auto cases = sweep();
  for (const ops::Activation a : {ops::Activation::Relu, ops::Activation::Sigmoid, ops::Activation::Tanh}) {
    CAPTURE(ops::to_string(a));
    for (std::size_t i = 0; i < 12; ++i) {
      const ConvCase& k = cases[i];
      CAPTURE(describe(k));
      std::vector<Tensor<double>> in{random_tensor({k.n, k.c, k.h, k.w}, seed++), random_tensor({k.f, k.c, k.kh, k.kw}, seed++)};
      if (k.bias) in.push_back(random_tensor({k.f}, seed++));
      const bool bias = k.bias;
      CHECK_GRADCHECK([k, bias, a](const auto& v) {
        return ops::conv2d(v[0], v[1], bias ? v[2] : Variable<double>(), {k.sh, k.sw}, {k.ph, k.pw}, {k.dh, k.dw}, a);
      }, in);
    }
    auto r = check_float_against_double([a](const auto& v) { return ops::conv2d(v[0], v[1], v[2], 1, 0, 1, a); },
                                        {random_tensor({8, 20, 12, 12}, 4), random_tensor({40, 20, 5, 5}, 5), random_tensor({40}, 6)});
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("conv2d computes only the gradients that are needed") {
  Variable<double> x(random_tensor({2, 1, 6, 6}, 7), false), w(random_tensor({2, 1, 3, 3}, 8), true),
      b(random_tensor({2}, 9), false);
  ops::sum(ops::conv2d(x, w, b)).backward();
  CHECK(w.has_grad());
  CHECK_FALSE(x.has_grad());
  CHECK_FALSE(b.has_grad());
}

TEST_CASE("conv2d rejects bad input when called, naming the op and the shapes or values") {
  Variable<double> x(random_tensor({1, 3, 8, 8}, 10)), w(random_tensor({4, 3, 3, 3}, 11));
  CHECK_THROWS_WITH_AS(ops::conv2d(Variable<double>(random_tensor({8, 8}, 12)), w),
                       doctest::Contains("conv2d: expected 4-D input [N,C,H,W], but got input of shape [8,8]"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, Variable<double>(random_tensor({4, 3, 3}, 13))), doctest::Contains("weight of shape [4,3,3]"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, Variable<double>(random_tensor({4, 2, 3, 3}, 14))),
                       doctest::Contains("conv2d: weight of shape [4,2,3,3] expects input with 2 channels, but got input of shape [1,3,8,8] with 3 channels"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, w, Variable<double>(random_tensor({5}, 15))), doctest::Contains("conv2d: bias of shape [5]"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d(Variable<double>(random_tensor({1, 3, 3, 3}, 16)), Variable<double>(random_tensor({1, 3, 5, 5}, 17))),
                       doctest::Contains("padded input size per channel (3, 3) is smaller than the kernel size (5, 5)"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, w, {}, 0), doctest::Contains("conv2d: stride must be positive, got (0, 0)"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, w, {}, 1, {-1, 0}), doctest::Contains("conv2d: padding must be non-negative, got (-1, 0)"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, w, {}, 1, 0, {1, 0}), doctest::Contains("conv2d: dilation must be positive, got (1, 0)"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d(Variable<double>(random_tensor({1, 3, 4, 4}, 18)), w, {}, 1, 0, 3),
                       doctest::Contains("dilated kernel size (7, 7)"), ShapeError);
}

TEST_CASE("conv2d geometry that overflows is a ShapeError naming the values, never a wrapped shape or bad_alloc") {
  Variable<double> x(random_tensor({1, 1, 5, 5}, 20)), w(random_tensor({2, 1, 3, 3}, 21));
  const std::int64_t big = std::int64_t(1) << 62;
  CHECK_THROWS_WITH_AS(ops::conv2d(x, w, {}, 1, 0, big), doctest::Contains("conv2d: dilation × (kernel − 1)"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, w, {}, 1, big, big), doctest::Contains("conv2d: "), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, w, {}, 1, std::int64_t(1) << 31), doctest::Contains("more elements than fit in memory"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv2d(x, w, {}, 1, std::numeric_limits<std::int64_t>::max()), doctest::Contains("2 × padding"), ShapeError);
}

}  // TEST_SUITE
