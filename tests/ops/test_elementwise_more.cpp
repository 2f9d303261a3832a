// sqrt, pow, abs, clamp, minimum, maximum and the scalar-on-the-left operators: references, gradcheck (away from the
// kinks), float32 against float64, ties and NaN, errors.
#include <cmath>

#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

TEST_SUITE("elementwise") {

TEST_CASE("sqrt, pow, abs, clamp, rsub and rdiv pass gradcheck and agree in float32 with float64") {
  auto away = random_tensor({3, 4}, 5, 0.2, 2.0);  // positive and away from the kinks
  xg::Rng sign(6);
  auto mixed = away;
  for (auto& v : mixed) v = sign.below(2) ? v : -v;
  const std::vector<std::pair<const char*, std::function<Variable<double>(const std::vector<Variable<double>>&)>>> cases{
      {"sqrt", [](const auto& v) { return ops::sqrt(v[0]); }},
      {"pow 3", [](const auto& v) { return ops::pow(v[0], 3.0); }},
      {"pow -1.5", [](const auto& v) { return ops::pow(v[0], -1.5); }},
      {"rdiv", [](const auto& v) { return 2.0 / v[0]; }},
  };
  for (const auto& [name, f] : cases) {
    CAPTURE(name);
    CHECK_GRADCHECK(f, {away});
  }
  CHECK_GRADCHECK([](const auto& v) { return ops::abs(v[0]); }, {mixed});
  CHECK_GRADCHECK([](const auto& v) { return ops::clamp(v[0], -1.0, 1.0); }, {mixed});  // |x| ≥ 0.2, ±1 not hit exactly
  CHECK_GRADCHECK([](const auto& v) { return 1.0 - v[0]; }, {mixed});
  const auto r = check_float_against_double([](const auto& v) {
    using T = typename std::decay_t<decltype(v[0])>::value_type;
    return ops::add(ops::mul(ops::sqrt(v[0]), ops::pow(v[0], T(1.5))), ops::clamp(T(2) / v[0], T(0.5), T(3)));
  }, {away});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("minimum and maximum broadcast, split ties evenly, propagate NaN and pass gradcheck") {
  const auto a = xgt::distinct_tensor({2, 3}, 7), b = xgt::distinct_tensor({3}, 8);
  CHECK_GRADCHECK([](const auto& v) { return ops::maximum(v[0], v[1]); }, {a, b});
  CHECK_GRADCHECK([](const auto& v) { return ops::minimum(v[0], v[1]); }, {a, b});
  Variable<double> x(Tensor<double>{1.0, 2.0, 3.0}, true), y(Tensor<double>{2.0, 2.0, std::nan("")}, true);
  auto m = ops::maximum(x, y);
  CHECK(m.value().data()[0] == 2.0);
  CHECK(m.value().data()[1] == 2.0);
  CHECK(std::isnan(m.value().data()[2]));
  ops::sum(ops::minimum(x, y)).backward();
  CHECK(x.grad().data()[0] == 1.0);
  CHECK(x.grad().data()[1] == 0.5);  // a tie: half to each (PyTorch's rule)
  CHECK(y.grad().data()[1] == 0.5);
  CHECK_THROWS_WITH_AS(ops::maximum(Variable<double>(zeros<double>({2, 3})), Variable<double>(zeros<double>({4}))),
                       doctest::Contains("maximum: shapes [2,3] and [4] cannot be broadcast"), ShapeError);
}

TEST_CASE_TEMPLATE("scalar-on-the-left operators take any arithmetic literal", T, float, double) {
  Variable<T> x(Tensor<T>{1, 2, 4}, true);
  const auto y = 1 - x, z = 2 / x, w = 3 * x + 1.5, u = x / 2 - 1;
  CHECK(y.value() == Tensor<T>{0, -1, -3});
  CHECK(z.value() == Tensor<T>{2, 1, 0.5});
  CHECK(w.value() == Tensor<T>{4.5, 7.5, 13.5});
  CHECK(u.value() == Tensor<T>{-0.5, 0, 1});
  ops::sum(z).backward();
  CHECK(x.grad() == Tensor<T>{-2, -0.5, -0.125});
  CHECK_THROWS_WITH_AS(ops::clamp(x, T(2), T(1)), doctest::Contains("clamp: min 2"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::pow(x, std::numeric_limits<T>::infinity()), doctest::Contains("pow: the exponent must be finite"), ShapeError);
}

}  // TEST_SUITE
