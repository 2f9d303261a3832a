// The public gradcheck helper: passes correct ops, fails wrong ones with a useful report.
#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

namespace {
// y = x², with a backward that forgets the factor 2 (a deliberately wrong op).
struct WrongSquareOp final : Op<double> {
  const char* name() const override { return "wrong_square"; }
  GradList<double> backward(const Tensor<double>& g) override {
    const Tensor<double>& x = inputs()[0].value();
    Tensor<double> dx = g * x;  // should be 2 * g * x
    return {std::move(dx)};
  }
};
Variable<double> wrong_square(const Variable<double>& x) {
  Tensor<double> y = x.value() * x.value();
  OpCall call("wrong_square");
  return call.record<WrongSquareOp>(std::move(y), {x});
}
// y = x, with a backward that ignores the upstream gradient (assumes ones).
struct IgnoresUpstreamOp final : Op<double> {
  const char* name() const override { return "ignores_upstream"; }
  GradList<double> backward(const Tensor<double>& g) override { return {full<double>(shape_of(g), 1.0)}; }
};
// y = 2x with a correct backward that reads x's shape... and its value, though it says it keeps neither.
struct ClaimsNoInputOp final : Op<double> {
  bool keeps_input(std::size_t) const override { return false; }
  bool keeps_output() const override { return false; }
  GradList<double> backward(const Tensor<double>& g) override {
    (void)inputs()[0].value();  // the value it declared it does not read
    return {g * 2.0};
  }
};
// y = e^x with a correct backward that reads its output, though keeps_output() says it does not.
struct ClaimsNoOutputOp final : Op<double> {
  bool keeps_output() const override { return false; }
  GradList<double> backward(const Tensor<double>& g) override { return {g * output()}; }
};
}  // namespace

TEST_SUITE("gradcheck") {

TEST_CASE("gradcheck fails an op whose backward reads an input or output value it declared it does not keep") {
  auto claims_no_input = [](const std::vector<Variable<double>>& v) {
    OpCall call("claims_no_input");
    return call.record<ClaimsNoInputOp>(Tensor<double>(v[0].value() * 2.0), {v[0]});
  };
  auto r = gradcheck(claims_no_input, {random_tensor({3}, 5)});
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("was released") != std::string::npos);
  auto claims_no_output = [](const std::vector<Variable<double>>& v) {
    OpCall call("claims_no_output");
    return call.record<ClaimsNoOutputOp>(Tensor<double>(xt::exp(v[0].value())), {v[0]});
  };
  r = gradcheck(claims_no_output, {random_tensor({3}, 6)});
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("claims_no_output") != std::string::npos);  // the released value is its output
}

TEST_CASE("gradcheck passes a correct op and reports how many elements it checked") {
  auto r = gradcheck([](const std::vector<Variable<double>>& v) { return ops::square(v[0]); },
                     {random_tensor({3, 4}, 1)});
  CHECK_MESSAGE(r.ok, r.message);
  CHECK(r.elements_checked == 12);
}

TEST_CASE("gradcheck fails an op with a deliberately wrong backward and names input, element and values") {
  auto r = gradcheck([](const std::vector<Variable<double>>& v) { return wrong_square(v[0]); },
                     {random_tensor({2, 3}, 2)});
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("input 0") != std::string::npos);
  CHECK(r.message.find("analytic") != std::string::npos);
  CHECK(r.message.find("numeric") != std::string::npos);
}

TEST_CASE("gradcheck fails an op whose backward ignores the upstream gradient") {
  auto r = gradcheck([](const std::vector<Variable<double>>& v) {
    OpCall call("ignores_upstream");
    return call.record<IgnoresUpstreamOp>(Tensor<double>(v[0].value()), {v[0]});
  }, {random_tensor({4}, 3)});
  CHECK_FALSE(r.ok);
  CHECK(r.message.find("upstream") != std::string::npos);
}

TEST_CASE("gradcheck samples large inputs with a seeded element subset") {
  GradcheckOptions o;
  o.max_checks_per_input = 20;
  auto r = gradcheck([](const std::vector<Variable<double>>& v) { return ops::tanh(v[0]); },
                     {random_tensor({40, 40}, 4)}, o);
  CHECK_MESSAGE(r.ok, r.message);
  CHECK(r.elements_checked == 20);
}

TEST_CASE("gradcheck skips inputs excluded by which_inputs") {
  GradcheckOptions o;
  o.which_inputs = {true, false};
  auto r = gradcheck([](const std::vector<Variable<double>>& v) { return ops::matmul(v[0], v[1]); },
                     {random_tensor({2, 3}, 5), random_tensor({3, 2}, 6)}, o);
  CHECK_MESSAGE(r.ok, r.message);
  CHECK(r.elements_checked == 6);
}

TEST_CASE("check_float_against_double accepts a float32 op that matches its double run") {
  auto r = check_float_against_double(
      [](const auto& v) { return ops::sum(ops::sigmoid(ops::matmul(v[0], v[1]))); },
      {random_tensor({16, 32}, 7), random_tensor({32, 8}, 8)});
  CHECK_MESSAGE(r.ok, r.message);
}

}  // TEST_SUITE
