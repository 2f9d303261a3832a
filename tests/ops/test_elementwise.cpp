// add/sub/mul/div with broadcasting, the scalar and unary maps.
#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

namespace {

/// Plain reference: out[idx] = f(a[idx mapped into a], b[idx mapped into b]) with NumPy broadcasting.
template <class F>
Tensor<double> broadcast_reference(const Tensor<double>& a, const Tensor<double>& b, F f) {
  const Shape sa(a.shape().begin(), a.shape().end()), sb(b.shape().begin(), b.shape().end());
  const std::size_t r = std::max(sa.size(), sb.size());
  Shape s(r);
  auto dim = [r](const Shape& x, std::size_t i) { return i < r - x.size() ? std::size_t(1) : x[i - (r - x.size())]; };
  for (std::size_t i = 0; i < r; ++i) s[i] = std::max(dim(sa, i), dim(sb, i));
  Tensor<double> out = Tensor<double>::from_shape(s);
  std::vector<std::size_t> idx(r, 0);
  for (std::size_t o = 0; o < out.size(); ++o) {
    std::size_t rem = o;
    for (std::size_t i = r; i-- > 0;) {
      idx[i] = rem % s[i];
      rem /= s[i];
    }
    auto offset = [&](const Shape& x) {
      std::size_t off = 0;
      for (std::size_t i = 0; i < r; ++i) off = off * dim(x, i) + (dim(x, i) == 1 ? 0 : idx[i]);
      return off;
    };
    out.data()[o] = f(a.data()[offset(sa)], b.data()[offset(sb)]);
  }
  return out;
}

struct Case {
  Shape a, b;
};

}  // namespace

TEST_SUITE("elementwise") {

TEST_CASE("add, sub, mul and div broadcast like NumPy and match a plain reference") {
  const std::vector<Case> cases = {{{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{2, 3}, {2, 1}}, {{4, 3, 2}, {3, 1}},
                                   {{1}, {2, 2}},    {{}, {2, 3}},  {{2, 1, 3}, {1, 4, 1}}};
  for (const auto& c : cases) {
    CAPTURE(shape_str(c.a));
    CAPTURE(shape_str(c.b));
    const auto ta = random_tensor(c.a, 1, 0.5, 2.0), tb = random_tensor(c.b, 2, 0.5, 2.0);
    Variable<double> a(ta), b(tb);
    CHECK(xgt::max_abs_diff((a + b).value(), broadcast_reference(ta, tb, [](double x, double y) { return x + y; })) < 1e-15);
    CHECK(xgt::max_abs_diff((a - b).value(), broadcast_reference(ta, tb, [](double x, double y) { return x - y; })) < 1e-15);
    CHECK(xgt::max_abs_diff((a * b).value(), broadcast_reference(ta, tb, [](double x, double y) { return x * y; })) < 1e-15);
    CHECK(xgt::max_abs_diff((a / b).value(), broadcast_reference(ta, tb, [](double x, double y) { return x / y; })) < 1e-15);
  }
}

TEST_CASE("add, sub, mul and div pass gradcheck, including broadcast axes reduced in backward") {
  const std::vector<Case> cases = {{{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{2, 3}, {2, 1}}, {{4, 3, 2}, {3, 1}},
                                   {{}, {2, 3}},     {{2, 1, 3}, {1, 4, 1}}};
  for (const auto& c : cases) {
    CAPTURE(shape_str(c.a));
    CAPTURE(shape_str(c.b));
    const std::vector<Tensor<double>> in{random_tensor(c.a, 3, 0.5, 2.0), random_tensor(c.b, 4, 0.5, 2.0)};
    CHECK_GRADCHECK([](const auto& v) { return ops::add(v[0], v[1]); }, in);
    CHECK_GRADCHECK([](const auto& v) { return ops::sub(v[0], v[1]); }, in);
    CHECK_GRADCHECK([](const auto& v) { return ops::mul(v[0], v[1]); }, in);
    CHECK_GRADCHECK([](const auto& v) { return ops::div(v[0], v[1]); }, in);
  }
}

TEST_CASE("scale, add_scalar, neg, exp, log and square match std and pass gradcheck") {
  const auto t = random_tensor({3, 4}, 5, 0.1, 2.0);
  Variable<double> x(t);
  for (std::size_t i = 0; i < t.size(); ++i) {
    const double v = t.data()[i];
    CHECK((x * 3.0).value().data()[i] == 3.0 * v);
    CHECK((2.0 * x).value().data()[i] == 2.0 * v);
    CHECK((x / 4.0).value().data()[i] == doctest::Approx(v / 4.0));
    CHECK((x + 1.5).value().data()[i] == v + 1.5);
    CHECK((x - 1.5).value().data()[i] == v - 1.5);
    CHECK((-x).value().data()[i] == -v);
    CHECK(ops::exp(x).value().data()[i] == doctest::Approx(std::exp(v)).epsilon(1e-14));
    CHECK(ops::log(x).value().data()[i] == doctest::Approx(std::log(v)).epsilon(1e-14));
    CHECK(ops::square(x).value().data()[i] == v * v);
  }
  CHECK_GRADCHECK([](const auto& v) { return v[0] * 3.0; }, {t});
  CHECK_GRADCHECK([](const auto& v) { return v[0] + 3.0; }, {t});
  CHECK_GRADCHECK([](const auto& v) { return -v[0]; }, {t});
  CHECK_GRADCHECK([](const auto& v) { return ops::exp(v[0]); }, {t});
  CHECK_GRADCHECK([](const auto& v) { return ops::log(v[0]); }, {t});
  CHECK_GRADCHECK([](const auto& v) { return ops::square(v[0]); }, {t});
}

TEST_CASE("shapes that cannot broadcast raise a ShapeError naming the op and both shapes") {
  Variable<double> a(random_tensor({2, 3}, 6)), b(random_tensor({4}, 7));
  CHECK_THROWS_WITH_AS(a + b, doctest::Contains("add: shapes [2,3] and [4] cannot be broadcast"), ShapeError);
  CHECK_THROWS_WITH_AS(a * b, doctest::Contains("mul: shapes [2,3] and [4]"), ShapeError);
  CHECK_THROWS_WITH_AS(a - b, doctest::Contains("sub"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(a / b, doctest::Contains("div"), std::invalid_argument);
}

}  // TEST_SUITE
