// batch_norm, layer_norm, adaptive_avg_pool2d and dropout2d as ops (values, gradcheck, float32 against float64) and as
// layers (BatchNorm1d/2d with running statistics as buffers, LayerNorm, AdaptiveAvgPool2d, Dropout2d).
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "helpers.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/serialize.h"

using namespace xg;
using xgt::random_tensor;

TEST_SUITE("normalisation") {

TEST_CASE("batch_norm in training normalises each channel, updates the running statistics, and passes gradcheck") {
  const auto x = random_tensor({4, 3, 2, 2}, 1, -2.0, 3.0);
  Tensor<double> rm = zeros<double>({3}), rv = full<double>({3}, 1.0);
  const auto y = ops::batch_norm(Variable<double>(x), &rm, &rv, Variable<double>(), Variable<double>(), true, 0.1, 1e-5);
  for (std::size_t c = 0; c < 3; ++c) {
    double s = 0, sq = 0, xs = 0, xsq = 0;
    for (std::size_t n = 0; n < 4; ++n)
      for (std::size_t i = 0; i < 4; ++i) {
        const double v = y.value().data()[(n * 3 + c) * 4 + i], u = x.data()[(n * 3 + c) * 4 + i];
        s += v;
        sq += v * v;
        xs += u;
        xsq += u * u;
      }
    CHECK(s / 16 == doctest::Approx(0.0).epsilon(1e-9));
    CHECK(sq / 16 == doctest::Approx(1.0).epsilon(1e-4));
    const double mean = xs / 16, var = xsq / 16 - mean * mean;
    CHECK(rm.data()[c] == doctest::Approx(0.1 * mean));
    CHECK(rv.data()[c] == doctest::Approx(0.9 + 0.1 * var * 16 / 15));  // the unbiased variance, as PyTorch
  }
  const auto w = random_tensor({3}, 2, 0.5, 1.5), b = random_tensor({3}, 3);
  for (const Shape& s : {Shape{5, 3}, Shape{4, 3, 5}, Shape{2, 3, 3, 2}}) {
    CAPTURE(shape_str(s));
    CHECK_GRADCHECK([](const auto& v) {
      return ops::batch_norm(v[0], static_cast<Tensor<double>*>(nullptr), static_cast<Tensor<double>*>(nullptr), v[1], v[2], true);
    }, {random_tensor(s, 4), w, b});
  }
  const auto r = check_float_against_double([](const auto& v) {
    using T = typename std::decay_t<decltype(v[0])>::value_type;
    return ops::batch_norm(v[0], static_cast<Tensor<T>*>(nullptr), static_cast<Tensor<T>*>(nullptr), v[1], v[2], true);
  }, {random_tensor({4, 3, 5}, 5), w, b});
  CHECK_MESSAGE(r.ok, r.message);
  CHECK_THROWS_WITH_AS(ops::batch_norm(Variable<double>(zeros<double>({1, 3})), &rm, &rv, Variable<double>(), Variable<double>(), true),
                       doctest::Contains("batch_norm: expected more than 1 value per channel when training"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::batch_norm(Variable<double>(x), &rm, &rv, Variable<double>(w), Variable<double>(zeros<double>({4})), true),
                       doctest::Contains("batch_norm: bias has shape [4], expected [3]"), ShapeError);
}

TEST_CASE("batch_norm in eval uses the running statistics and passes gradcheck") {
  Tensor<double> rm{0.5, -1.0}, rv{2.0, 0.25};
  const auto x = random_tensor({3, 2, 4}, 6);
  const auto y = ops::batch_norm(Variable<double>(x), &rm, &rv, Variable<double>(), Variable<double>(), false);
  CHECK(y.value()(1, 1, 2) == doctest::Approx((x(1, 1, 2) + 1.0) / std::sqrt(0.25 + 1e-5)));
  CHECK(rm == Tensor<double>{0.5, -1.0});  // unchanged in eval
  CHECK_GRADCHECK([&](const auto& v) { return ops::batch_norm(v[0], &rm, &rv, v[1], v[2], false); },
                  {x, random_tensor({2}, 7), random_tensor({2}, 8)});
}

TEST_CASE("layer_norm normalises the trailing dims and passes gradcheck; adaptive_avg_pool2d and dropout2d") {
  const auto x = random_tensor({2, 3, 4}, 9, -2.0, 2.0);
  const auto y = ops::layer_norm(Variable<double>(x), {3, 4});
  double s = 0;
  for (std::size_t i = 0; i < 12; ++i) s += y.value().data()[12 + i];
  CHECK(s / 12 == doctest::Approx(0.0).epsilon(1e-9));
  CHECK_GRADCHECK([](const auto& v) { return ops::layer_norm(v[0], {4}, v[1], v[2]); }, {x, random_tensor({4}, 10), random_tensor({4}, 11)});
  CHECK_THROWS_WITH_AS(ops::layer_norm(Variable<double>(x), {3}), doctest::Contains("layer_norm: normalized shape [3] is not the trailing shape"), ShapeError);
  // adaptive average pooling: divisible sizes equal avg_pool2d; any sizes pass gradcheck.
  const auto p = random_tensor({2, 2, 6, 4}, 12);
  CHECK(xgt::max_abs_diff(ops::adaptive_avg_pool2d(Variable<double>(p), {3, 2}).value(), ops::avg_pool2d(Variable<double>(p), 2).value()) < 1e-12);
  CHECK_GRADCHECK([](const auto& v) { return ops::adaptive_avg_pool2d(v[0], {4, 3}); }, {random_tensor({1, 2, 5, 7}, 13)});
  // dropout2d zeroes whole channels.
  Rng rng(3);
  const auto d = ops::dropout2d(Variable<double>(full<double>({4, 8, 3, 3}, 1.0)), 0.5, true, rng);
  std::size_t zero_channels = 0;
  for (std::size_t c = 0; c < 32; ++c) {
    const double first = d.value().data()[c * 9];
    for (std::size_t i = 1; i < 9; ++i) CHECK(d.value().data()[c * 9 + i] == first);
    zero_channels += first == 0.0;
    CHECK((first == 0.0 || first == 2.0));
  }
  CHECK(zero_channels > 4);
  CHECK(zero_channels < 28);
}

TEST_CASE("BatchNorm2d keeps its running statistics as buffers: trained, then saved and loaded, eval outputs agree") {
  manual_seed(4);
  auto make = [] {
    auto net = std::make_unique<nn::Sequential<float>>();
    net->add<nn::Conv2d<float>>(1, 4, 3);
    net->add<nn::BatchNorm2d<float>>(4);
    net->add<nn::ReLU<float>>();
    net->add<nn::AdaptiveAvgPool2d<float>>(ops::Size2{2, 2});
    net->add<nn::Flatten<float>>();
    net->add<nn::Linear<float>>(16, 3);
    return net;
  };
  auto net = make();
  auto buffers = net->named_buffers();
  REQUIRE(buffers.size() == 2);
  CHECK(buffers[0].first == "1.running_mean");
  nn::Sgd<float> opt(net->parameters(), {.lr = 0.1});
  Rng data(5);
  Tensor<float> x = Tensor<float>::from_shape({8, 1, 8, 8});
  for (auto& v : x) v = static_cast<float>(data.normal());
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    ops::cross_entropy((*net)(Variable<float>(x)), ops::Labels{0, 1, 2, 0, 1, 2, 0, 1}).backward();
    opt.step();
  }
  CHECK(buffers[0].second->data()[0] != 0.0f);  // the running mean moved
  const std::string path = (std::filesystem::temp_directory_path() / ("xgrad_bn_" + std::to_string(::getpid()))).string();
  xg::save(path, *net);
  auto fresh = make();
  xg::load(path, *fresh);
  CHECK(*fresh->named_buffers()[1].second == *buffers[1].second);
  net->eval();
  fresh->eval();
  CHECK(xgt::bit_equal((*net)(Variable<float>(x)).value(), (*fresh)(Variable<float>(x)).value()));
  CHECK(net->describe().find("BatchNorm2d(features=4") != std::string::npos);
  std::filesystem::remove(path);
  CHECK_THROWS_WITH_AS(nn::BatchNorm2d<float>(4)(Variable<float>(zeros<float>({2, 4}))), doctest::Contains("BatchNorm2d: expected input [N,C,H,W]"), ShapeError);
}

TEST_CASE("GroupNorm registers its per-channel weight and bias, and its settings tell checkpoints apart") {
  nn::GroupNorm<float> gn({.groups = 2, .channels = 4});
  const auto params = gn.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[0].second.shape() == Shape{4});
  CHECK(gn.describe() == "GroupNorm(groups=2, channels=4, eps=1e-05, affine=true)");
  const Variable<float> x(xgt::random_tensor<float>({3, 4, 5, 5}, 7));
  CHECK(xgt::bit_equal(gn(x).value(), ops::group_norm(x, 2, gn.weight, gn.bias).value()));
  CHECK(nn::GroupNorm<float>({.groups = 2, .channels = 4, .affine = false}).named_parameters().empty());
  nn::GroupNorm<float> four({.groups = 4, .channels = 4});
  CHECK(nn::architecture_difference(gn.architecture(), four) == "groups: the checkpoint has 2, this model 4");
  CHECK_THROWS_WITH_AS(nn::GroupNorm<float>({.groups = 3, .channels = 4}), doctest::Contains("GroupNorm: channels must divide into groups"), ShapeError);
}

TEST_CASE("ConvTranspose2d upsamples with PyTorch's layout and lists its parameters") {
  manual_seed(2);
  nn::ConvTranspose2d<float> up({.in = 3, .out = 8, .kernel = 4, .stride = 2, .padding = 1});
  CHECK(up(Variable<float>(zeros<float>({4, 3, 7, 7}))).shape() == Shape{4, 8, 14, 14});
  CHECK(up.weight.shape() == Shape{3, 8, 4, 4});
  CHECK(up.named_parameters().size() == 2);
  CHECK(up.describe().find("output_padding=(0, 0)") != std::string::npos);
  CHECK_THROWS_AS(nn::ConvTranspose2d<float>({.in = 0, .out = 8, .kernel = 4}), ShapeError);
}

TEST_CASE("adaptive_avg_pool2d refuses an output size whose element count or window bounds overflow") {
  // Round 3: an output size of 2^32 wrapped the element count to 0 and the kernel wrote out of bounds (SIGSEGV).
  Variable<float> x(zeros<float>({1, 1, 2, 2}));
  const std::int64_t big = std::int64_t(1) << 32;
  CHECK_THROWS_WITH_AS(ops::adaptive_avg_pool2d(x, {big, big}), doctest::Contains("adaptive_avg_pool2d: the output shape [1,1,4294967296,4294967296]"), ShapeError);
  Variable<float> tall(zeros<float>({1, 1, 16, 1}));
  CHECK_THROWS_WITH_AS(ops::adaptive_avg_pool2d(tall, {std::int64_t(1) << 61, 1}), doctest::Contains("adaptive_avg_pool2d: output height × (input height + 1)"), ShapeError);
  CHECK(ops::adaptive_avg_pool2d(x, {5, 3}).shape() == Shape{1, 1, 5, 3});  // larger than the input is allowed, as in PyTorch
}

}  // TEST_SUITE
