// relu, sigmoid, tanh, softmax, log_softmax.
#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

namespace {
/// Values in [-2, 2] kept at least 1e-3 away from 0 (relu's kink).
Tensor<double> away_from_zero(const Shape& s, std::uint64_t seed) {
  auto t = random_tensor(s, seed, -2.0, 2.0);
  for (auto& v : t)
    if (std::abs(v) < 1e-3) v = v < 0 ? -1e-3 : 1e-3;
  return t;
}
}  // namespace

TEST_SUITE("activations") {

TEST_CASE("relu, sigmoid and tanh match std and pass gradcheck over several shapes") {
  for (const Shape& s : {Shape{7}, Shape{2, 3}, Shape{2, 3, 4, 5}}) {
    CAPTURE(shape_str(s));
    const auto t = away_from_zero(s, 1);
    Variable<double> x(t);
    for (std::size_t i = 0; i < t.size(); ++i) {
      const double v = t.data()[i];
      CHECK(ops::relu(x).value().data()[i] == (v > 0 ? v : 0.0));
      CHECK(ops::sigmoid(x).value().data()[i] == doctest::Approx(1 / (1 + std::exp(-v))));
      CHECK(ops::tanh(x).value().data()[i] == doctest::Approx(std::tanh(v)));
    }
    CHECK_GRADCHECK([](const auto& v) { return ops::relu(v[0]); }, {t});
    CHECK_GRADCHECK([](const auto& v) { return ops::sigmoid(v[0]); }, {t});
    CHECK_GRADCHECK([](const auto& v) { return ops::tanh(v[0]); }, {t});
  }
}

TEST_CASE("relu has gradient exactly 0 at x = 0 (PyTorch's convention)") {
  Variable<double> x(Tensor<double>{-1.0, 0.0, 1.0}, true);
  ops::sum(ops::relu(x)).backward();
  CHECK(x.grad().data()[0] == 0.0);
  CHECK(x.grad().data()[1] == 0.0);
  CHECK(x.grad().data()[2] == 1.0);
}

TEST_CASE("sigmoid, tanh and relu propagate NaN, as in PyTorch") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Variable<float> x(Tensor<float>{nan, 1.0f, nan, -1.0f, 0.5f, nan, 2.0f, -3.0f, nan});  // odd length: the kernel tails
  for (const auto& y : {ops::sigmoid(x).value(), ops::tanh(x).value(), ops::relu(x).value()}) {
    CHECK(std::isnan(y.data()[0]));
    CHECK(std::isnan(y.data()[8]));
    CHECK(std::isfinite(y.data()[1]));
  }
}

TEST_CASE("the float32 sigmoid kernel agrees with the exact formula to 1e-6 over the whole range") {
  Tensor<float> t = Tensor<float>::from_shape({20001});
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = -100.0f + 0.01f * static_cast<float>(i);
  const auto y = ops::sigmoid(Variable<float>(t)).value();
  for (std::size_t i = 0; i < t.size(); ++i) {
    const double exact = 1.0 / (1.0 + std::exp(-static_cast<double>(t.data()[i])));
    CHECK(std::abs(y.data()[i] - exact) <= 1e-6 * std::max(exact, 1e-30) + 1e-37);
  }
}

TEST_CASE("sigmoid stays finite and exact for large |x|") {
  Variable<float> x(Tensor<float>{-1000.0f, -100.0f, 100.0f, 1000.0f});
  auto y = ops::sigmoid(x).value();
  CHECK(y.data()[0] == 0.0f);
  CHECK(y.data()[3] == 1.0f);
  for (float v : y) CHECK(std::isfinite(v));
}

TEST_CASE("softmax and log_softmax match a plain reference along any axis and pass gradcheck") {
  const auto t = random_tensor({2, 3, 4}, 2, -3.0, 3.0);
  Variable<double> x(t);
  auto s = ops::softmax(x, 1).value();
  auto ls = ops::log_softmax(x, 1).value();
  for (std::size_t a = 0; a < 2; ++a)
    for (std::size_t c = 0; c < 4; ++c) {
      double z = 0;
      for (std::size_t b = 0; b < 3; ++b) z += std::exp(t.data()[(a * 3 + b) * 4 + c]);
      for (std::size_t b = 0; b < 3; ++b) {
        const std::size_t i = (a * 3 + b) * 4 + c;
        CHECK(s.data()[i] == doctest::Approx(std::exp(t.data()[i]) / z));
        CHECK(ls.data()[i] == doctest::Approx(t.data()[i] - std::log(z)));
      }
    }
  for (std::int64_t d : {0, 1, -1}) {
    CAPTURE(d);
    CHECK_GRADCHECK([d](const auto& v) { return ops::softmax(v[0], d); }, {t});
    CHECK_GRADCHECK([d](const auto& v) { return ops::log_softmax(v[0], d); }, {t});
  }
}

TEST_CASE("log_softmax is finite for logits of +-1000") {
  Variable<float> x(Tensor<float>{{1000.0f, -1000.0f, 0.0f}});
  auto y = ops::log_softmax(x).value();
  CHECK(y.data()[0] == 0.0f);
  CHECK(y.data()[1] == -2000.0f);
  CHECK(y.data()[2] == -1000.0f);
}

}  // TEST_SUITE
