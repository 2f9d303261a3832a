// nll_loss, cross_entropy, mse_loss.
#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

TEST_SUITE("losses") {

TEST_CASE("cross_entropy equals nll_loss of log_softmax and matches a plain reference") {
  const auto t = random_tensor({4, 5}, 1, -3.0, 3.0);
  const ops::Labels y{0, 4, 2, 2};
  Variable<double> x(t);
  double ref = 0;
  for (std::size_t n = 0; n < 4; ++n) {
    double z = 0;
    for (std::size_t k = 0; k < 5; ++k) z += std::exp(t.data()[n * 5 + k]);
    ref += std::log(z) - t.data()[n * 5 + static_cast<std::size_t>(y[n])];
  }
  CHECK(ops::cross_entropy(x, y).item() == doctest::Approx(ref / 4));
  CHECK(ops::cross_entropy(x, y, ops::Reduction::Sum).item() == doctest::Approx(ref));
  CHECK(ops::nll_loss(ops::log_softmax(x), y).item() == doctest::Approx(ref / 4));
  CHECK(ops::cross_entropy(x, y, ops::Reduction::None).shape() == Shape{4});
}

TEST_CASE("cross_entropy, nll_loss and mse_loss pass gradcheck for every reduction") {
  const auto t = random_tensor({3, 4}, 2, -2.0, 2.0);
  const ops::Labels y{1, 3, 0};
  for (auto r : {ops::Reduction::Mean, ops::Reduction::Sum, ops::Reduction::None}) {
    CHECK_GRADCHECK([&](const auto& v) { return ops::cross_entropy(v[0], y, r); }, {t});
    CHECK_GRADCHECK([&](const auto& v) { return ops::nll_loss(v[0], y, r); }, {t});
    CHECK_GRADCHECK([&](const auto& v) { return ops::mse_loss(v[0], v[1], r); }, {t, random_tensor({3, 4}, 3)});
  }
}

TEST_CASE("cross_entropy is finite and exact for logits of +-1000") {
  Variable<float> x(Tensor<float>{{1000.0f, -1000.0f}, {-1000.0f, 1000.0f}}, true);
  auto loss = ops::cross_entropy(x, {1, 1});
  CHECK(loss.item() == doctest::Approx(1000.0f));
  loss.backward();
  for (float g : x.grad()) CHECK(std::isfinite(g));
  CHECK(x.grad().data()[0] == doctest::Approx(0.5f));
  CHECK(x.grad().data()[1] == doctest::Approx(-0.5f));
}

TEST_CASE("mse_loss matches a plain reference") {
  const auto a = random_tensor({2, 3}, 4), b = random_tensor({2, 3}, 5);
  double ref = 0;
  for (std::size_t i = 0; i < 6; ++i) ref += (a.data()[i] - b.data()[i]) * (a.data()[i] - b.data()[i]);
  CHECK(ops::mse_loss(Variable<double>(a), Variable<double>(b)).item() == doctest::Approx(ref / 6));
}

TEST_CASE("bad labels and shapes raise a ShapeError naming the op and the values") {
  Variable<double> x(random_tensor({2, 10}, 6));
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, {1, 10}), doctest::Contains("cross_entropy: target 10 at index 1 is out of bounds for 10 classes"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(x, {-5, 1}), doctest::Contains("target -5"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::nll_loss(x, {1, 2, 3}), doctest::Contains("nll_loss: expected input batch_size (2) to match target batch_size (3)"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(Variable<double>(random_tensor({2, 3, 4}, 7)), {0, 1}), doctest::Contains("[2,3,4]"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::mse_loss(x, Variable<double>(random_tensor({10, 2}, 8))), doctest::Contains("mse_loss: input shape [2,10] and target shape [10,2]"), ShapeError);
}

TEST_CASE("the mean of an empty batch is refused by every loss — the sum of one is 0") {
  Variable<double> empty(Tensor<double>::from_shape({0, 10}));
  CHECK_THROWS_WITH_AS(ops::cross_entropy(empty, {}), doctest::Contains("cross_entropy: the batch [0,10] is empty, so its mean is undefined"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::nll_loss(empty, {}), doctest::Contains("nll_loss: the batch [0,10] is empty"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::mse_loss(empty, empty), doctest::Contains("mse_loss: the input [0,10] is empty"), ShapeError);
  CHECK(ops::cross_entropy(empty, {}, ops::Reduction::Sum).item() == 0.0);
  CHECK(ops::mse_loss(empty, empty, ops::Reduction::Sum).item() == 0.0);
}

}  // TEST_SUITE
