// Module, Sequential, layers and initialisers.
#include "helpers.h"
#include "nn/init.h"
#include "nn/layers.h"

using namespace xg;
using namespace xg::nn;

TEST_SUITE("layers") {

TEST_CASE("Linear and Conv2d own their parameters with PyTorch's shapes, names and default init bounds") {
  manual_seed(1);
  Linear<> fc(432, 10);
  CHECK(fc.weight.shape() == Shape{10, 432});
  CHECK(fc.bias.shape() == Shape{10});
  const float bound = 1.0f / std::sqrt(432.0f);
  for (float v : fc.weight.value()) CHECK(std::abs(v) <= bound);
  Conv2d<> conv({.in = 1, .out = 3, .kernel = 5});
  CHECK(conv.weight.shape() == Shape{3, 1, 5, 5});
  auto names = conv.named_parameters();
  REQUIRE(names.size() == 2);
  CHECK(names[0].first == "weight");
  CHECK(names[1].first == "bias");
  CHECK(Linear<>({.in = 4, .out = 2, .bias = false}).named_parameters().size() == 1);
}

TEST_CASE("Sequential chains layers, names children by index and propagates train/eval") {
  manual_seed(2);
  Sequential<> net;
  net.add<Conv2d<>>(Conv2dOptions{.in = 1, .out = 3, .kernel = 5});
  net.add<Sigmoid<>>();
  net.add<MaxPool2d<>>(2);
  net.add<Flatten<>>();
  net.add<Dropout<>>(0.5);
  net.add<Linear<>>(432, 10);
  auto names = net.named_parameters();
  REQUIRE(names.size() == 4);
  CHECK(names[0].first == "0.weight");
  CHECK(names[3].first == "5.bias");
  CHECK(net.num_parameters() == 3 * 25 + 3 + 4320 + 10);
  Variable<float> x(xgt::random_tensor<float>({2, 1, 28, 28}, 3));
  CHECK(net(x).shape() == Shape{2, 10});
  net.eval();
  CHECK_FALSE(net[4].is_training());
  const auto a = net(x).value(), b = net(x).value();
  CHECK(xgt::bit_equal(a, b));  // dropout off in eval mode
  net.train();
  CHECK(net[4].is_training());
}

TEST_CASE("zero_grad on a module drops every parameter's gradient") {
  Linear<double> fc(3, 2);
  ops::sum(fc(Variable<double>(xgt::random_tensor({4, 3}, 4)))).backward();
  CHECK(fc.weight.has_grad());
  fc.zero_grad();
  CHECK_FALSE(fc.weight.has_grad());
  CHECK_FALSE(fc.bias.has_grad());
}

TEST_CASE("initialisers draw from the seeded generator with the documented scales") {
  Variable<double> w(zeros<double>({200, 300}), true);
  Rng rng(5);
  auto stddev = [&] {
    double s = 0, s2 = 0;
    for (double v : w.value()) {
      s += v;
      s2 += v * v;
    }
    const double n = static_cast<double>(w.numel());
    return std::sqrt(s2 / n - (s / n) * (s / n));
  };
  init::xavier_normal_(w, 1.0, rng);
  CHECK(stddev() == doctest::Approx(std::sqrt(2.0 / 500)).epsilon(0.03));
  init::kaiming_normal_(w, 0.0, init::FanMode::FanIn, init::Nonlinearity::Relu, rng);
  CHECK(stddev() == doctest::Approx(std::sqrt(2.0 / 300)).epsilon(0.03));
  init::book_normal_(w, rng);
  CHECK(stddev() == doctest::Approx(1.0 / std::sqrt(300.0)).epsilon(0.03));
  init::xavier_uniform_(w, 1.0, rng);
  for (double v : w.value()) CHECK(std::abs(v) <= std::sqrt(6.0 / 500));
  init::kaiming_uniform_(w, 0.0, init::FanMode::FanOut, init::Nonlinearity::Relu, rng);
  for (double v : w.value()) CHECK(std::abs(v) <= std::sqrt(6.0 / 200));
  Rng r1(9), r2(9);
  Variable<double> a(zeros<double>({3, 3}), true), b(zeros<double>({3, 3}), true);
  init::normal_(a, 0, 1, r1);
  init::normal_(b, 0, 1, r2);
  CHECK(xgt::bit_equal(a.value(), b.value()));
}

TEST_CASE("initialisers that need fans reject tensors of rank below 2") {
  Variable<double> v(zeros<double>({5}), true);
  CHECK_THROWS_WITH_AS(init::xavier_uniform_(v), doctest::Contains("init: fan in and fan out cannot be computed for a tensor of shape [5]"), ShapeError);
}

TEST_CASE("layers reject bad constructor arguments naming the layer") {
  CHECK_THROWS_WITH_AS(Linear<>(0, 3), doctest::Contains("Linear"), ShapeError);
  CHECK_THROWS_WITH_AS(Conv2d<>({.in = 1, .out = 3, .kernel = 0}), doctest::Contains("Conv2d"), ShapeError);
  CHECK_THROWS_WITH_AS(Dropout<>(1.5), doctest::Contains("Dropout: probability has to be between 0 and 1"), ShapeError);
}

TEST_CASE("dropout zeroes about p of the elements, scales the rest by 1/(1-p), and passes gradcheck on a fixed mask") {
  Rng rng(11);
  Variable<double> x(full<double>({100, 100}, 1.0), true);
  auto y = ops::dropout(x, 0.3, true, rng);
  std::size_t zeros_count = 0;
  for (double v : y.value()) {
    if (v == 0.0) ++zeros_count;
    else CHECK(v == doctest::Approx(1.0 / 0.7));
  }
  CHECK(static_cast<double>(zeros_count) / 1e4 == doctest::Approx(0.3).epsilon(0.05));
  CHECK_GRADCHECK([](const auto& v) { Rng r(3); return ops::dropout(v[0], 0.4, true, r); }, {xgt::random_tensor({4, 5}, 12)});
}

TEST_CASE("nn::conv2d_pool fuses a Conv2d with a non-overlapping max-pool, and runs the layers in turn otherwise") {
  manual_seed(60);
  nn::Conv2d<double> conv({.in = 1, .out = 3, .kernel = 5, .activation = ops::Activation::Sigmoid});
  Variable<double> x(xgt::random_tensor({2, 1, 12, 12}, 61));
  nn::MaxPool2d<double> max2(2), overlapping({.kernel = 3, .stride = 2});
  nn::AvgPool2d<double> avg(2);
  CHECK(nn::conv2d_pool(conv, max2, x).creator()->name() == std::string("conv2d+sigmoid+max_pool2d"));
  CHECK(xgt::bit_equal(nn::conv2d_pool(conv, max2, x).value(), max2(conv(x)).value()));
  CHECK(nn::conv2d_pool(conv, overlapping, x).creator()->name() == std::string("max_pool2d"));
  CHECK(nn::conv2d_pool(conv, avg, x).creator()->name() == std::string("avg_pool2d"));
  {  // anomaly mode checks the convolution's output too: the layers run in turn
    AnomalyModeGuard anomaly;
    CHECK(nn::conv2d_pool(conv, max2, x).creator()->name() == std::string("max_pool2d"));
  }
}

}  // TEST_SUITE
