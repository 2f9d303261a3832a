// group_norm: values from its definition, gradcheck over a sweep of shapes and groups in double precision, float32
// against float64, thread-count identity, and its errors. (PyTorch's values: the golden cases.)
#include <cmath>

#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

TEST_SUITE("normalisation") {

TEST_CASE("group_norm normalises each sample's groups of channels and applies the per-channel affine") {
  const auto x = random_tensor({2, 6, 3}, 31, -2.0, 3.0);
  const auto w = random_tensor({6}, 32), b = random_tensor({6}, 33);
  const auto y = ops::group_norm(Variable<double>(x), 3, Variable<double>(w), Variable<double>(b), 1e-5);
  REQUIRE(y.shape() == Shape{2, 6, 3});
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t k = 0; k < 3; ++k) {  // group k: channels 2k, 2k+1, 6 values
      double mean = 0, var = 0;
      for (std::size_t i = 0; i < 6; ++i) mean += x.data()[(n * 6 + 2 * k) * 3 + i] / 6;
      for (std::size_t i = 0; i < 6; ++i) var += std::pow(x.data()[(n * 6 + 2 * k) * 3 + i] - mean, 2) / 6;
      for (std::size_t i = 0; i < 6; ++i) {
        const std::size_t at = (n * 6 + 2 * k) * 3 + i, c = 2 * k + i / 3;
        const double want = (x.data()[at] - mean) / std::sqrt(var + 1e-5) * w.data()[c] + b.data()[c];
        CHECK(y.value().data()[at] == doctest::Approx(want).epsilon(1e-12));
      }
    }
}

TEST_CASE("group_norm passes gradcheck for every grouping, with and without the affine, on 3-D and 4-D inputs") {
  for (const Shape& s : {Shape{2, 4, 3}, Shape{2, 6, 2, 3}, Shape{1, 2, 5}})
    for (std::size_t g : {std::size_t(1), std::size_t(2), s[1]}) {
      CAPTURE(shape_str(s));
      CAPTURE(g);
      const auto x = random_tensor(s, 40 + g, -2.0, 2.0);
      CHECK_GRADCHECK([g](const auto& v) { return ops::group_norm(v[0], g, v[1], v[2]); },
                      {x, random_tensor({s[1]}, 41), random_tensor({s[1]}, 42)});
      CHECK_GRADCHECK([g](const auto& v) { return ops::group_norm(v[0], g); }, {x});
    }
}

TEST_CASE("group_norm in float32 follows float64, is bit-identical at 1, 2 and 3 threads, and refuses bad groupings") {
  const auto x = random_tensor({4, 8, 30, 30}, 50, -3.0, 3.0);
  const auto f = [](const auto& v) { return ops::group_norm(v, 4); };
  Tensor<float> xf = xt::cast<float>(x);
  const auto yf = f(Variable<float>(xf));
  const auto yd = f(Variable<double>(x));
  double worst = 0;
  for (std::size_t i = 0; i < yf.numel(); ++i) worst = std::max(worst, std::abs(double(yf.value().data()[i]) - yd.value().data()[i]));
  CHECK(worst < 1e-5);
  xgt::check_thread_identity([](const Variable<float>& v) { return ops::group_norm(v, 2); }, xf);
  Variable<double> v(x);
  CHECK_THROWS_WITH_AS(ops::group_norm(v, 3), doctest::Contains("group_norm: the 8 channels of input [4,8,30,30] do not divide into 3 groups"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::group_norm(v, 0), doctest::Contains("do not divide into 0 groups"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::group_norm(v, 2, Variable<double>(zeros<double>({4}))), doctest::Contains("group_norm: weight must have shape [8], got [4]"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::group_norm(v, 2, Variable<double>(), Variable<double>(), 0.0), doctest::Contains("eps must be positive"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::group_norm(Variable<double>(zeros<double>({8})), 2), doctest::Contains("expected input [N,C,*], got [8]"), ShapeError);
}

}  // TEST_SUITE
