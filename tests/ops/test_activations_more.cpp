// leaky_relu, elu, gelu (exact and tanh), softplus and silu: values against their formulas, gradcheck over a sweep
// (away from the kinks), float32 against float64, thread-count bit-identity, bad arguments; and their layers.
#include <cmath>

#include "core/parallel.h"
#include "helpers.h"
#include "nn/layers.h"

using namespace xg;
using xgt::random_tensor;

namespace {
using Fn = std::function<Variable<double>(const std::vector<Variable<double>>&)>;
const std::vector<std::pair<const char*, Fn>>& activations() {
  static const std::vector<std::pair<const char*, Fn>> fns{
      {"leaky_relu 0.1", [](const auto& v) { return ops::leaky_relu(v[0], 0.1); }},
      {"elu 1.5", [](const auto& v) { return ops::elu(v[0], 1.5); }},
      {"gelu exact", [](const auto& v) { return ops::gelu(v[0]); }},
      {"gelu tanh", [](const auto& v) { return ops::gelu(v[0], ops::GeluApproximation::Tanh); }},
      {"softplus beta 2", [](const auto& v) { return ops::softplus(v[0], 2.0, 20.0); }},
      {"silu", [](const auto& v) { return ops::silu(v[0]); }},
  };
  return fns;
}
}  // namespace

TEST_SUITE("activations") {

TEST_CASE("the pointwise activations match their formulas") {
  const Tensor<double> x{-3.0, -0.5, 0.25, 2.0};
  auto v = [&](auto f) { return f(Variable<double>(x)).value(); };
  const auto lr = v([](auto a) { return ops::leaky_relu(a, 0.1); });
  CHECK(xgt::max_abs_diff(lr, Tensor<double>{-0.3, -0.05, 0.25, 2.0}) < 1e-15);
  const auto e = v([](auto a) { return ops::elu(a, 1.0); });
  CHECK(e.data()[0] == doctest::Approx(std::exp(-3.0) - 1));
  const auto g = v([](auto a) { return ops::gelu(a); });
  CHECK(g.data()[3] == doctest::Approx(2.0 * 0.5 * (1 + std::erf(2.0 / std::sqrt(2.0)))));
  const auto gt = v([](auto a) { return ops::gelu(a, ops::GeluApproximation::Tanh); });
  CHECK(gt.data()[3] == doctest::Approx(g.data()[3]).epsilon(1e-3));  // the approximation is close
  const auto sp = v([](auto a) { return ops::softplus(a); });
  CHECK(sp.data()[1] == doctest::Approx(std::log1p(std::exp(-0.5))));
  CHECK(ops::softplus(Variable<double>(Tensor<double>{30.0})).value().data()[0] == 30.0);  // the linear regime
  const auto si = v([](auto a) { return ops::silu(a); });
  CHECK(si.data()[2] == doctest::Approx(0.25 / (1 + std::exp(-0.25))));
}

TEST_CASE("the pointwise activations pass gradcheck and agree in float32 with float64") {
  auto x = random_tensor({4, 5}, 11, 0.05, 3.0);  // |x| ≥ 0.05: away from the kink at 0
  xg::Rng sign(12);
  for (auto& v : x) v = sign.below(2) ? v : -v;
  for (const auto& [name, f] : activations()) {
    CAPTURE(name);
    CHECK_GRADCHECK(f, {x});
  }
  const auto r = check_float_against_double([](const auto& v) {
    using T = typename std::decay_t<decltype(v[0])>::value_type;
    return ops::add(ops::add(ops::leaky_relu(v[0], T(0.1)), ops::elu(v[0], T(1))),
                    ops::add(ops::gelu(v[0]), ops::add(ops::softplus(v[0], T(1), T(20)), ops::silu(v[0]))));
  }, {x});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("the pointwise activations are bit-identical at 1, 2 and 3 threads, and refuse bad parameters") {
  const auto x = random_tensor<float>({8, 20000}, 13, -4.0, 4.0);  // several parallel chunks
  xgt::check_thread_identity([](const Variable<float>& v) { return ops::gelu(ops::silu(v)); }, x);
  Variable<float> v(x);
  CHECK_THROWS_WITH_AS(ops::elu(v, -1.0f), doctest::Contains("elu: alpha must be positive"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::softplus(v, 0.0f), doctest::Contains("softplus: beta must be positive"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::leaky_relu(v, std::nanf("")), doctest::Contains("leaky_relu: negative_slope must be finite"), ShapeError);
}

}  // TEST_SUITE
