// conv_transpose2d: the adjoint of conv2d (⟨convT(x, w), z⟩ = ⟨x, conv2d(z, w)⟩ for any z), shapes with stride,
// padding, output_padding and dilation, gradcheck of input, weight and bias over a sweep, thread identity, errors.
#include <limits>

#include "core/parallel.h"
#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

namespace {
struct Case {
  std::size_t n, cin, cout, h, w, k;
  std::int64_t s, p, op, d;
};
const std::vector<Case> kCases{
    {1, 1, 1, 3, 3, 2, 1, 0, 0, 1}, {2, 3, 2, 4, 5, 3, 2, 1, 1, 1}, {1, 2, 3, 3, 4, 2, 3, 0, 2, 1},
    {2, 2, 2, 5, 3, 3, 1, 2, 0, 2}, {1, 3, 1, 2, 2, 5, 2, 2, 1, 2},
};
double dot(const Tensor<double>& a, const Tensor<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a.data()[i] * b.data()[i];
  return s;
}
}  // namespace

TEST_SUITE("conv_transpose2d") {

TEST_CASE("conv_transpose2d is conv2d's adjoint in its input, for strides, paddings, output paddings and dilations") {
  std::uint64_t seed = 1;
  for (const auto& c : kCases) {
    const auto x = random_tensor({c.n, c.cin, c.h, c.w}, seed++), w = random_tensor({c.cin, c.cout, c.k, c.k}, seed++);
    const auto y = ops::conv_transpose2d(Variable<double>(x), Variable<double>(w), {}, c.s, c.p, c.op, c.d);
    const std::int64_t oh = (static_cast<std::int64_t>(c.h) - 1) * c.s - 2 * c.p + c.d * (static_cast<std::int64_t>(c.k) - 1) + c.op + 1;
    CHECK(y.shape()[2] == static_cast<std::size_t>(oh));
    const auto z = random_tensor(y.shape(), seed++);
    const auto cz = ops::conv2d(Variable<double>(z), Variable<double>(w), {}, c.s, c.p, c.d);
    REQUIRE(cz.shape() == Shape(x.shape().begin(), x.shape().end()));
    CHECK(dot(y.value(), z) == doctest::Approx(dot(x, cz.value())).epsilon(1e-12));
  }
}

TEST_CASE("conv_transpose2d passes gradcheck in its input, weight and bias, and agrees in float32 with float64") {
  std::uint64_t seed = 100;
  for (const auto& c : kCases) {
    const auto x = random_tensor({c.n, c.cin, c.h, c.w}, seed++), w = random_tensor({c.cin, c.cout, c.k, c.k}, seed++),
               b = random_tensor({c.cout}, seed++);
    CHECK_GRADCHECK([c](const auto& v) { return ops::conv_transpose2d(v[0], v[1], v[2], c.s, c.p, c.op, c.d); }, {x, w, b});
    const auto r = check_float_against_double([c](const auto& v) { return ops::conv_transpose2d(v[0], v[1], v[2], c.s, c.p, c.op, c.d); },
                                              {x, w, b});
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("conv_transpose2d is bit-identical at 1, 2 and 3 threads and refuses bad arguments") {
  const auto x = random_tensor<float>({4, 3, 7, 7}, 5), w = random_tensor<float>({3, 2, 4, 4}, 6);
  auto run = [&](std::size_t threads) {
    set_num_threads(threads);
    Variable<float> vx(x, true), vw(w, true);
    auto y = ops::conv_transpose2d(vx, vw, {}, 2, 1);
    ops::sum(ops::mul(y, y)).backward();
    set_num_threads(0);
    return std::vector<Tensor<float>>{y.value(), vx.grad(), vw.grad()};
  };
  const auto one = run(1);
  for (std::size_t t : {2, 3}) {
    const auto many = run(t);
    for (std::size_t i = 0; i < 3; ++i) CHECK(xgt::bit_equal(one[i], many[i]));
  }
  CHECK(one[0].shape()[2] == 14);  // stride 2, kernel 4, padding 1: doubles 7 → 14
  Variable<float> vx(x);
  CHECK_THROWS_WITH_AS(ops::conv_transpose2d(vx, Variable<float>(w), {}, 1, 0, 1), doctest::Contains("output_padding (1, 1) must be smaller"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv_transpose2d(vx, Variable<float>(zeros<float>({2, 2, 3, 3}))), doctest::Contains("expects input with 2 channels"), ShapeError);
}

TEST_CASE("conv_transpose2d checks its geometry's arithmetic: huge padding or stride is a ShapeError or the exact result") {
  // Round 3: padding INT64_MAX on [1,1,1,1] returned [1,1,3,3]; stride INT64_MAX with output_padding 5 overflowed in
  // the kernels (UBSan: signed overflow). The hardening suite runs this under UBSan.
  const std::int64_t big = std::numeric_limits<std::int64_t>::max();
  Variable<double> one(random_tensor({1, 1, 1, 1}, 7)), w(random_tensor({1, 1, 3, 3}, 8));
  CHECK_THROWS_WITH_AS(ops::conv_transpose2d(one, w, {}, 1, big), doctest::Contains("conv_transpose2d: 2 × padding"), ShapeError);
  Variable<double> two(random_tensor({1, 1, 2, 2}, 9));
  CHECK_THROWS_WITH_AS(ops::conv_transpose2d(two, w, {}, big), doctest::Contains("conv_transpose2d: (input − 1) × stride"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::conv_transpose2d(one, w, {}, 1, 0, 0, big), doctest::Contains("conv_transpose2d: dilation × (kernel − 1)"), ShapeError);
  // One input pixel: the stride never applies, so stride 2^63 − 1 gives what stride 6 gives (output_padding 5 < both).
  const auto huge = ops::conv_transpose2d(one, w, {}, big, 0, 5), small = ops::conv_transpose2d(one, w, {}, 6, 0, 5);
  CHECK(huge.shape() == Shape{1, 1, 8, 8});
  CHECK(xgt::bit_equal(huge.value(), small.value()));
}

}  // TEST_SUITE
