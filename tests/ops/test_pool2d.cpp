// max_pool2d, l2_pool2d and avg_pool2d: plain references, gradcheck sweep, the kinks, and every bad-input error.
#include <type_traits>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/parallel.h"
#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

namespace {

struct PoolCase {
  std::size_t n, c, h, w, kh, kw;
  std::int64_t sh, sw, ph, pw;
};

std::string describe(const PoolCase& k) {
  return "x [" + std::to_string(k.n) + "," + std::to_string(k.c) + "," + std::to_string(k.h) + "," +
         std::to_string(k.w) + "] kernel (" + std::to_string(k.kh) + "," + std::to_string(k.kw) + ") stride (" +
         std::to_string(k.sh) + "," + std::to_string(k.sw) + ") pad (" + std::to_string(k.ph) + "," +
         std::to_string(k.pw) + ")";
}

enum class Kind { Max, L2, Avg };

/// The oracle: plain loops over each window in double; padded cells are skipped (never win, count as 0).
Tensor<double> pool_reference(const Tensor<double>& x, const PoolCase& k, Kind kind) {
  const std::size_t oh = static_cast<std::size_t>((static_cast<std::int64_t>(k.h) + 2 * k.ph - static_cast<std::int64_t>(k.kh)) / k.sh + 1);
  const std::size_t ow = static_cast<std::size_t>((static_cast<std::int64_t>(k.w) + 2 * k.pw - static_cast<std::int64_t>(k.kw)) / k.sw + 1);
  Tensor<double> y = zeros<double>({k.n, k.c, oh, ow});
  for (std::size_t p = 0; p < k.n * k.c; ++p)
    for (std::size_t i = 0; i < oh; ++i)
      for (std::size_t j = 0; j < ow; ++j) {
        double best = -INFINITY, sq = 0, sum = 0;
        for (std::size_t a = 0; a < k.kh; ++a)
          for (std::size_t b = 0; b < k.kw; ++b) {
            const std::int64_t r = static_cast<std::int64_t>(i) * k.sh - k.ph + static_cast<std::int64_t>(a);
            const std::int64_t s = static_cast<std::int64_t>(j) * k.sw - k.pw + static_cast<std::int64_t>(b);
            if (r < 0 || s < 0 || r >= static_cast<std::int64_t>(k.h) || s >= static_cast<std::int64_t>(k.w)) continue;
            const double v = x.data()[(p * k.h + static_cast<std::size_t>(r)) * k.w + static_cast<std::size_t>(s)];
            best = std::max(best, v);
            sq += v * v;
            sum += v;
          }
        y.data()[(p * oh + i) * ow + j] =
            kind == Kind::Max ? best : kind == Kind::L2 ? std::sqrt(sq) : sum / static_cast<double>(k.kh * k.kw);
      }
  return y;
}

std::vector<PoolCase> sweep() {
  std::vector<PoolCase> cases = {
      {1, 1, 4, 4, 2, 2, 2, 2, 0, 0},  // the seed network's 2x2 pool
      {2, 3, 5, 5, 5, 5, 5, 5, 2, 2},  // kernel == input (1x1 output), maximum padding
      {1, 1, 9, 9, 2, 2, 3, 3, 0, 0},  // stride > kernel: skipped pixels
      {3, 1, 7, 6, 3, 2, 2, 1, 1, 1},  // non-square kernel, overlapping windows, padding
      {1, 3, 1, 1, 1, 1, 1, 1, 0, 0},  // 1x1 image
      {2, 1, 8, 5, 3, 3, 2, 2, 1, 0},  // stride not dividing the input
  };
  xg::Rng rng(77);
  const std::size_t kernels[] = {1, 2, 3, 5};
  while (cases.size() < 30) {
    PoolCase k{};
    k.n = 1 + rng.below(3);
    k.c = rng.below(2) ? 3 : 1;
    k.h = 1 + rng.below(9);
    k.w = 1 + rng.below(9);
    k.kh = kernels[rng.below(4)];
    k.kw = rng.below(3) ? k.kh : kernels[rng.below(4)];
    k.sh = 1 + static_cast<std::int64_t>(rng.below(3));
    k.sw = rng.below(2) ? k.sh : 1 + static_cast<std::int64_t>(rng.below(3));
    k.ph = static_cast<std::int64_t>(rng.below(k.kh / 2 + 1));
    k.pw = static_cast<std::int64_t>(rng.below(k.kw / 2 + 1));
    if (static_cast<std::int64_t>(k.h) + 2 * k.ph >= static_cast<std::int64_t>(k.kh) &&
        static_cast<std::int64_t>(k.w) + 2 * k.pw >= static_cast<std::int64_t>(k.kw))
      cases.push_back(k);
  }
  return cases;
}

template <class T>
Variable<T> pool(Kind kind, const Variable<T>& x, const PoolCase& k) {
  switch (kind) {
    case Kind::Max: return ops::max_pool2d(x, {static_cast<std::int64_t>(k.kh), static_cast<std::int64_t>(k.kw)}, ops::Size2{k.sh, k.sw}, {k.ph, k.pw});
    case Kind::L2: return ops::l2_pool2d(x, {static_cast<std::int64_t>(k.kh), static_cast<std::int64_t>(k.kw)}, ops::Size2{k.sh, k.sw}, {k.ph, k.pw});
    case Kind::Avg: return ops::avg_pool2d(x, {static_cast<std::int64_t>(k.kh), static_cast<std::int64_t>(k.kw)}, ops::Size2{k.sh, k.sw}, {k.ph, k.pw});
  }
  return x;
}

}  // namespace

TEST_SUITE("pool2d") {

TEST_CASE_TEMPLATE("max, l2 and avg pooling match the plain-loop reference over the seeded sweep", T, double, float) {
  const double tolerance = std::is_same_v<T, double> ? 1e-12 : 1e-5;  // against the float64 oracle
  std::uint64_t seed = 1;
  for (const auto& k : sweep()) {
    const auto x = random_tensor({k.n, k.c, k.h, k.w}, seed++, -2.0, 2.0);
    SUBCASE(describe(k).c_str()) {
      for (Kind kind : {Kind::Max, Kind::L2, Kind::Avg}) {
        CAPTURE(static_cast<int>(kind));
        const auto ref = pool_reference(x, k, kind);
        const auto y = pool(kind, Variable<T>(xt::cast<T>(x)), k);
        REQUIRE(y.shape() == xgt::shape(ref));
        CHECK(xgt::max_abs_diff(y.value(), ref) < tolerance);
      }
    }
  }
}

TEST_CASE("max, l2 and avg pooling pass gradcheck over the seeded sweep") {
  std::uint64_t seed = 100;
  for (const auto& k : sweep()) {
    // max: distinct values 1e-2 apart (no ties within eps); l2: |x| >= 0.1 so every window norm is far from 0.
    const auto distinct = xgt::distinct_tensor({k.n, k.c, k.h, k.w}, seed++);
    auto away = random_tensor({k.n, k.c, k.h, k.w}, seed++, 0.1, 1.0);
    xg::Rng sign(seed++);
    for (auto& v : away) v = sign.below(2) ? v : -v;
    SUBCASE(describe(k).c_str()) {
      CHECK_GRADCHECK([k](const auto& v) { return pool(Kind::Max, v[0], k); }, {distinct});
      CHECK_GRADCHECK([k](const auto& v) { return pool(Kind::L2, v[0], k); }, {away});
      CHECK_GRADCHECK([k](const auto& v) { return pool(Kind::Avg, v[0], k); }, {away});
    }
  }
}

TEST_CASE("max_pool2d: a tie gives the whole gradient to the first maximum in row-major order") {
  Variable<double> x(Tensor<double>{{{{1.0, 1.0}, {1.0, 0.0}}}}, true);
  ops::sum(ops::max_pool2d(x, 2)).backward();
  const auto& g = x.grad();
  CHECK(g.data()[0] == 1.0);
  CHECK(g.data()[1] == 0.0);
  CHECK(g.data()[2] == 0.0);
  CHECK(g.data()[3] == 0.0);
}

TEST_CASE("max_pool2d's float32 2x2 kernels (widths 24 and 8, and any other) follow the scan-order rule, ties and NaNs") {
  // Values from a set of five make ties frequent; a few NaNs must propagate (the last NaN in scan order wins).
  for (const Shape& s : {Shape{2, 3, 24, 24}, Shape{2, 3, 8, 8}, Shape{1, 2, 10, 6}, Shape{1, 1, 7, 9}}) {
    CAPTURE(shape_str(s));
    Rng rng(77);
    Tensor<float> x = Tensor<float>::from_shape(s);
    for (auto& v : x) v = rng.below(40) == 0 ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(rng.below(5));
    Variable<float> xv(x, true);
    Variable<float> y = ops::max_pool2d(xv, 2);
    const Tensor<float> g = random_tensor<float>(y.shape(), 78);
    y.backward(g);
    const std::size_t h = s[2], w = s[3], oh = h / 2, ow = w / 2;
    Tensor<float> dx = zeros<float>(s);
    for (std::size_t p = 0; p < s[0] * s[1]; ++p)
      for (std::size_t i = 0; i < oh; ++i)
        for (std::size_t j = 0; j < ow; ++j) {
          const float* plane = x.data() + p * h * w;
          std::size_t at = 2 * i * w + 2 * j;
          for (std::size_t cell : {2 * i * w + 2 * j + 1, (2 * i + 1) * w + 2 * j, (2 * i + 1) * w + 2 * j + 1})
            if (plane[cell] > plane[at] || std::isnan(plane[cell])) at = cell;
          const float got = y.value().data()[p * oh * ow + i * ow + j];
          CHECK((std::isnan(plane[at]) ? std::isnan(got) : got == plane[at]));
          dx.data()[p * h * w + at] += g.data()[p * oh * ow + i * ow + j];
        }
    CHECK(std::memcmp(dx.data(), xv.grad().data(), dx.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("l2_pool2d's float32 2x2 kernels (widths 24 and 8, and any other) agree with float64, uncovered cells get 0") {
  for (const Shape& s : {Shape{2, 3, 24, 24}, Shape{2, 3, 8, 8}, Shape{1, 2, 10, 6}, Shape{1, 1, 7, 9}}) {
    CAPTURE(shape_str(s));
    auto r = check_float_against_double([](const auto& v) { return ops::l2_pool2d(v[0], 2); },
                                        {random_tensor(s, 79, 0.1, 1.0)});  // |x| >= 0.1: no window near the zero kink
    CHECK_MESSAGE(r.ok, r.message);
    Variable<float> x(random_tensor<float>(s, 80), true);
    ops::sum(ops::l2_pool2d(x, 2)).backward();
    for (std::size_t p = 0; p < s[0] * s[1]; ++p) {  // an odd last row or column lies outside every window
      const float* g = x.grad().data() + p * s[2] * s[3];
      if (s[3] % 2)
        for (std::size_t r = 0; r < s[2]; ++r) CHECK(g[r * s[3] + s[3] - 1] == 0.0f);
      if (s[2] % 2)
        for (std::size_t c = 0; c < s[3]; ++c) CHECK(g[(s[2] - 1) * s[3] + c] == 0.0f);
    }
  }
}

TEST_CASE("max_pool2d: padded cells never win, even when every real value is negative") {
  Variable<double> x(full<double>({1, 1, 2, 2}, -5.0), true);
  auto y = ops::max_pool2d(x, 2, 1, 1);  // 3x3 windows of which most cells are padding
  for (double v : y.value()) CHECK(v == -5.0);
  ops::sum(y).backward();
  double total = 0;
  for (double g : x.grad()) total += g;
  CHECK(total == 9.0);  // all nine windows send their gradient to real cells
}

TEST_CASE("l2_pool2d: an all-zero window has output 0 and gradient exactly 0, never NaN") {
  Tensor<double> t = zeros<double>({1, 1, 4, 4});
  t.data()[0] = 3.0;
  t.data()[1] = 4.0;  // first window: norm 5; the other three windows are all zero
  Variable<double> x(t, true);
  auto y = ops::l2_pool2d(x, 2);
  CHECK(y.value().data()[0] == 5.0);
  CHECK(y.value().data()[1] == 0.0);
  ops::sum(y).backward();
  CHECK(x.grad().data()[0] == doctest::Approx(0.6));
  CHECK(x.grad().data()[1] == doctest::Approx(0.8));
  for (std::size_t i = 2; i < 16; ++i) {
    CHECK_FALSE(std::isnan(x.grad().data()[i]));
    if (i != 4 && i != 5) CHECK(x.grad().data()[i] == 0.0);
  }
  Variable<float> zf(zeros<float>({2, 3, 4, 4}), true);
  ops::sum(ops::l2_pool2d(zf, 2)).backward();
  for (float g : zf.grad()) CHECK(g == 0.0f);
}

TEST_CASE("avg_pool2d with count_include_pad = false divides by the cells inside the input") {
  Variable<double> x(full<double>({1, 1, 2, 2}, 1.0));
  CHECK(ops::avg_pool2d(x, 2, 1, 1).value().data()[0] == doctest::Approx(0.25));
  CHECK(ops::avg_pool2d(x, 2, 1, 1, false).value().data()[0] == doctest::Approx(1.0));
  CHECK_GRADCHECK([](const auto& v) { return ops::avg_pool2d(v[0], 3, 2, 1, false); }, {random_tensor({2, 2, 5, 6}, 5)});
}

TEST_CASE("pools reject bad input when called, naming the op and the values") {
  Variable<double> x(random_tensor({1, 2, 6, 6}, 6));
  for (const char* name : {"max_pool2d", "l2_pool2d", "avg_pool2d"}) {
    CAPTURE(name);
    auto call = [&](const Variable<double>& in, ops::Size2 k, std::optional<ops::Size2> s, ops::Size2 p) {
      const std::string n(name);
      return n == "max_pool2d" ? ops::max_pool2d(in, k, s, p) : n == "l2_pool2d" ? ops::l2_pool2d(in, k, s, p) : ops::avg_pool2d(in, k, s, p);
    };
    const std::string rank_msg = std::string(name) + ": expected 4-D input [N,C,H,W], but got input of shape [6,6]";
    CHECK_THROWS_WITH_AS(call(Variable<double>(random_tensor({6, 6}, 7)), 2, {}, 0), doctest::Contains(rank_msg.c_str()),
                         ShapeError);
    CHECK_THROWS_WITH_AS(call(x, 0, {}, 0), doctest::Contains("kernel size must be positive, got (0, 0)"), ShapeError);
    CHECK_THROWS_WITH_AS(call(x, 2, ops::Size2{0, 1}, 0), doctest::Contains("stride must be positive, got (0, 1)"), ShapeError);
    CHECK_THROWS_WITH_AS(call(x, 2, {}, -1), doctest::Contains("padding must be non-negative"), ShapeError);
    CHECK_THROWS_WITH_AS(call(x, 2, {}, 2), doctest::Contains("pad should be at most half of kernel size, but got pad=(2, 2) and kernel_size=(2, 2)"), ShapeError);
    CHECK_THROWS_WITH_AS(call(Variable<double>(random_tensor({1, 1, 2, 2}, 8)), 3, {}, 0),
                         doctest::Contains("output size is too small"), ShapeError);
  }
}

TEST_CASE("pool geometry that overflows is a ShapeError, never a wrapped shape") {
  Variable<double> x(random_tensor({1, 1, 4, 4}, 30));
  const std::int64_t big = std::int64_t(1) << 62;
  // Padding is at most kernel/2, so only 2 × padding itself can overflow (the output is never larger than H+1).
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  CHECK_THROWS_WITH_AS(ops::max_pool2d(x, max, 1, max / 2), doctest::Contains("max_pool2d: height + 2 × padding"), ShapeError);
  CHECK(ops::avg_pool2d(x, big, 1, big / 2).shape() == Shape{1, 1, 5, 5});
}

namespace {
/// (Σ |x|^p)^(1/p) by plain loops in long double: the Lp reference.
Tensor<double> lp_reference(const Tensor<double>& x, const PoolCase& k, double p) {
  const std::size_t oh = static_cast<std::size_t>((static_cast<std::int64_t>(k.h) + 2 * k.ph - static_cast<std::int64_t>(k.kh)) / k.sh + 1);
  const std::size_t ow = static_cast<std::size_t>((static_cast<std::int64_t>(k.w) + 2 * k.pw - static_cast<std::int64_t>(k.kw)) / k.sw + 1);
  Tensor<double> y = zeros<double>({k.n, k.c, oh, ow});
  for (std::size_t q = 0; q < k.n * k.c; ++q)
    for (std::size_t i = 0; i < oh; ++i)
      for (std::size_t j = 0; j < ow; ++j) {
        long double acc = 0;
        for (std::size_t a = 0; a < k.kh; ++a)
          for (std::size_t b = 0; b < k.kw; ++b) {
            const std::int64_t r = static_cast<std::int64_t>(i) * k.sh - k.ph + static_cast<std::int64_t>(a);
            const std::int64_t s = static_cast<std::int64_t>(j) * k.sw - k.pw + static_cast<std::int64_t>(b);
            if (r < 0 || s < 0 || r >= static_cast<std::int64_t>(k.h) || s >= static_cast<std::int64_t>(k.w)) continue;
            acc += std::pow(std::abs(static_cast<long double>(x.data()[(q * k.h + static_cast<std::size_t>(r)) * k.w + static_cast<std::size_t>(s)])), static_cast<long double>(p));
          }
        y.data()[(q * oh + i) * ow + j] = static_cast<double>(std::pow(acc, 1.0L / static_cast<long double>(p)));
      }
  return y;
}
template <class T>
Variable<T> lp(const Variable<T>& x, double p, const PoolCase& k) {
  return ops::lp_pool2d(x, p, {static_cast<std::int64_t>(k.kh), static_cast<std::int64_t>(k.kw)}, ops::Size2{k.sh, k.sw}, {k.ph, k.pw});
}
template <class T>
Variable<T> stochastic(const Variable<T>& x, const PoolCase& k, bool training, Rng& rng) {
  return ops::stochastic_pool2d(x, {static_cast<std::int64_t>(k.kh), static_cast<std::int64_t>(k.kw)}, ops::Size2{k.sh, k.sw},
                                {k.ph, k.pw}, training, rng);
}
}  // namespace

TEST_CASE("lp_pool2d matches the plain-loop Lp norm for p = 1, 1.5, 3 and 7 over the seeded sweep, and p = 2 is l2_pool2d") {
  std::uint64_t seed = 500;
  for (const auto& k : sweep()) {
    CAPTURE(describe(k));
    const auto x = random_tensor({k.n, k.c, k.h, k.w}, seed++, -2.0, 2.0);
    for (double p : {1.0, 1.5, 3.0, 7.0}) {
      CAPTURE(p);
      const auto y = lp(Variable<double>(x), p, k);
      const auto ref = lp_reference(x, k, p);
      REQUIRE(y.shape() == xgt::shape(ref));
      CHECK(xgt::max_abs_diff(y.value(), ref) < 1e-12);
    }
    Tensor<float> xf = Tensor<float>::from_shape(x.shape());
    std::copy(x.begin(), x.end(), xf.begin());
    CHECK(xgt::bit_equal(lp(Variable<float>(xf), 2.0, k).value(), pool(Kind::L2, Variable<float>(xf), k).value()));
  }
}

TEST_CASE("lp_pool2d passes gradcheck over the seeded sweep and agrees in float32 with float64") {
  std::uint64_t seed = 600;
  for (const auto& k : sweep()) {
    CAPTURE(describe(k));
    auto away = random_tensor({k.n, k.c, k.h, k.w}, seed++, 0.1, 1.0);  // |x| ≥ 0.1: away from the kink at 0
    xg::Rng sign(seed++);
    for (auto& v : away) v = sign.below(2) ? v : -v;
    for (double p : {1.0, 1.5, 3.0, 7.0}) {
      CAPTURE(p);
      CHECK_GRADCHECK([k, p](const auto& v) { return lp(v[0], p, k); }, {away});
      const auto r = check_float_against_double([k, p](const auto& v) { return lp(v[0], p, k); }, {away});
      CHECK_MESSAGE(r.ok, r.message);
    }
  }
}

TEST_CASE("lp_pool2d: zero windows give 0 with gradient 0, zero cells follow PyTorch, large p and large values stay finite, NaN propagates") {
  Variable<double> z(zeros<double>({1, 1, 4, 4}), true);
  auto y = ops::lp_pool2d(z, 3.0, 2);
  ops::sum(y).backward();
  CHECK(std::all_of(y.value().begin(), y.value().end(), [](double v) { return v == 0.0; }));
  CHECK(std::all_of(z.grad().begin(), z.grad().end(), [](double v) { return v == 0.0; }));
  // A zero cell in a window that is not all zero (ReLU's zeros): p = 1 passes g to it, as PyTorch's sum does; p > 1
  // gives it the true derivative, 0.
  for (const double p : {1.0, 3.0}) {
    Tensor<double> half = zeros<double>({1, 1, 1, 2});
    half.data()[1] = 1.0;
    Variable<double> h(half, true);
    auto yh = ops::lp_pool2d(h, p, ops::Size2{1, 2});
    ops::sum(yh * 3.0).backward();
    CHECK(yh.value().data()[0] == 1.0);
    CHECK_MESSAGE(h.grad().data()[0] == (p == 1.0 ? 3.0 : 0.0), "p = " << p);
    CHECK(h.grad().data()[1] == 3.0);
  }
  Tensor<float> big = Tensor<float>::from_shape({1, 1, 2, 2});
  std::fill(big.begin(), big.end(), 1e30f);  // (1e30)^50 overflows any float; the scaled form does not
  Variable<float> b(big, true);
  auto yb = ops::lp_pool2d(b, 50.0, 2);
  CHECK(yb.value().data()[0] == doctest::Approx(1e30 * std::pow(4.0, 1.0 / 50)).epsilon(1e-5));
  ops::sum(yb).backward();
  CHECK(std::isfinite(b.grad().data()[0]));
  Tensor<double> n = zeros<double>({1, 1, 2, 2});
  n.data()[3] = std::nan("");
  CHECK(std::isnan(ops::lp_pool2d(Variable<double>(n), 3.0, 2).value().data()[0]));
  CHECK_THROWS_WITH_AS(ops::lp_pool2d(z, 0.5, 2), doctest::Contains("lp_pool2d: p must be a finite number >= 1, got 0.5"), ShapeError);
  CHECK_THROWS_AS(ops::lp_pool2d(z, std::nan(""), 2), ShapeError);
  CHECK_THROWS_WITH_AS(ops::lp_pool2d(z, 3.0, 5), doctest::Contains("lp_pool2d: given input of shape [1,1,4,4]"), ShapeError);
}

TEST_CASE("stochastic_pool2d in training outputs a cell of each window, sends the gradient to it, and draws cells with probability a / sum a") {
  Tensor<double> x = zeros<double>({1, 1, 2, 2});
  const double a[] = {1.0, 2.0, 3.0, 4.0};
  std::copy(a, a + 4, x.data());
  Rng rng(1);
  int counts[4] = {0, 0, 0, 0};
  constexpr int kDraws = 20000;
  for (int t = 0; t < kDraws; ++t) {
    Variable<double> v(x, true);
    auto y = ops::stochastic_pool2d(v, 2, std::nullopt, 0, true, rng);
    ops::sum(y).backward();
    int hit = -1;
    for (int i = 0; i < 4; ++i)
      if (v.grad().data()[i] == 1.0) hit = i;
    REQUIRE(hit >= 0);
    CHECK(y.value().data()[0] == a[hit]);
    ++counts[hit];
  }
  for (int i = 0; i < 4; ++i) {
    const double expected = kDraws * a[i] / 10.0, sd = std::sqrt(kDraws * a[i] / 10.0 * (1 - a[i] / 10.0));
    CHECK_MESSAGE(std::abs(counts[i] - expected) < 5 * sd, "cell " << i << ": " << counts[i] << " draws, expected " << expected);
  }
  // A zero cell is never drawn; an all-zero window gives 0 and no gradient.
  Tensor<double> zeros_one = x;
  zeros_one.data()[3] = 0.0;
  for (int t = 0; t < 200; ++t) CHECK(ops::stochastic_pool2d(Variable<double>(zeros_one), 2, std::nullopt, 0, true, rng).value().data()[0] != 0.0);
  Variable<double> z(zeros<double>({1, 1, 2, 2}), true);
  auto yz = ops::stochastic_pool2d(z, 2, std::nullopt, 0, true, rng);
  ops::sum(yz).backward();
  CHECK(yz.value().data()[0] == 0.0);
  CHECK(std::all_of(z.grad().begin(), z.grad().end(), [](double g) { return g == 0.0; }));
}

TEST_CASE("stochastic_pool2d in eval is the probability-weighted average sum a^2 / sum a and passes gradcheck") {
  std::uint64_t seed = 700;
  Rng unused(0);
  for (const auto& k : sweep()) {
    CAPTURE(describe(k));
    const auto x = random_tensor({k.n, k.c, k.h, k.w}, seed++, 0.1, 1.0);
    const auto y = stochastic(Variable<double>(x), k, false, unused);
    const auto l1 = pool_reference(x, k, Kind::Avg);  // mean over kernel cells × kh·kw = Σa
    const auto l2 = pool_reference(x, k, Kind::L2);   // sqrt(Σa²)
    for (std::size_t i = 0; i < y.numel(); ++i) {
      const double sum = l1.data()[i] * static_cast<double>(k.kh * k.kw), sq = l2.data()[i] * l2.data()[i];
      CHECK(y.value().data()[i] == doctest::Approx(sum == 0 ? 0.0 : sq / sum).epsilon(1e-12));
    }
    CHECK_GRADCHECK([k](const auto& v) {
      Rng r(0);
      return stochastic(v[0], k, false, r);
    }, {x});
  }
}

TEST_CASE("stochastic_pool2d in eval stays finite for values near the type's maximum") {
  // Round 3: Σ a² overflowed to inf for values near 3e38 in float32 and the output was inf/inf = NaN.
  Rng unused(0);
  Tensor<float> t = zeros<float>({1, 1, 2, 2});
  t(0, 0, 0, 0) = 3e38f;
  t(0, 0, 0, 1) = 3e38f;
  t(0, 0, 1, 0) = 1e38f;
  Variable<float> x(t, true);
  const auto y = ops::stochastic_pool2d(x, 2, std::nullopt, 0, false, unused);
  const double expected = (3e38 * 3e38 * 2 + 1e38 * 1e38) / 7e38;  // Σa²/Σa in double
  CHECK(std::isfinite(y.value()(0, 0, 0, 0)));
  CHECK(y.value()(0, 0, 0, 0) == doctest::Approx(expected).epsilon(1e-6));
  y.backward(full<float>({1, 1, 1, 1}, 1.0f));
  for (const float g : x.grad()) CHECK(std::isfinite(g));
  // d/da_k = (2 a_k − y) / Σa
  CHECK(x.grad()(0, 0, 0, 0) == doctest::Approx((2 * 3e38 - expected) / 7e38).epsilon(1e-6));
  CHECK(x.grad()(0, 0, 1, 1) == doctest::Approx(-expected / 7e38).epsilon(1e-6));
}

TEST_CASE("stochastic_pool2d is the same for the same generator state at 1, 2 and 3 threads, and refuses negative input") {
  const auto x = random_tensor<float>({4, 3, 24, 24}, 9, 0.0, 1.0);
  const auto first = xgt::check_thread_identity([](const Variable<float>& v) {
    Rng rng(42);
    return ops::stochastic_pool2d(v, 2, std::nullopt, 0, true, rng);
  }, x);
  Rng other(43);
  CHECK_FALSE(xgt::bit_equal(ops::stochastic_pool2d(Variable<float>(x), 2, std::nullopt, 0, true, other).value(), first));
  Tensor<float> neg = x;
  neg.data()[5 * 24 * 24 + 3] = -0.25f;
  Rng r(1);
  CHECK_THROWS_WITH_AS(ops::stochastic_pool2d(Variable<float>(neg), 2, std::nullopt, 0, true, r),
                       doctest::Contains("stochastic_pool2d: the input at [1,2,0,3] is -0.25"), NumericError);
  CHECK_THROWS_WITH_AS(ops::stochastic_pool2d(Variable<float>(x), 0, std::nullopt, 0, true, r),
                       doctest::Contains("stochastic_pool2d: kernel size must be positive"), ShapeError);
}

TEST_CASE("lp_pool2d is bit-identical at 1, 2 and 3 threads") {
  const auto x = random_tensor<float>({4, 3, 24, 24}, 10, -1.0, 1.0);
  xgt::check_thread_identity([](const Variable<float>& v) { return ops::lp_pool2d(v, 3.0, 3, ops::Size2{2, 2}, 1); }, x);
}

}  // TEST_SUITE
