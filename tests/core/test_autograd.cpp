// The engine: accumulation, graph shapes, long chains, grad mode, detach, zero_grad and graph errors.
#include <cmath>
#include <map>

#include "core/dot.h"
#include "core/profiler.h"
#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

TEST_SUITE("autograd") {

TEST_CASE("a Variable used twice accumulates both gradients (x*x + x)") {
  Variable<double> x(random_tensor({3, 2}, 1), true);
  auto y = ops::sum(x * x + x);
  y.backward();
  for (std::size_t i = 0; i < 6; ++i) CHECK(x.grad().data()[i] == doctest::Approx(2 * x.value().data()[i] + 1));
}

TEST_CASE("a diamond graph sums the gradients of both paths") {
  Variable<double> a(random_tensor({4}, 2), true);
  auto b = a * 2.0;       // path 1
  auto c = ops::exp(a);   // path 2
  auto d = ops::sum(b * c);
  d.backward();
  for (std::size_t i = 0; i < 4; ++i) {
    const double v = a.value().data()[i];
    CHECK(a.grad().data()[i] == doctest::Approx(2 * std::exp(v) + 2 * v * std::exp(v)));
  }
}

TEST_CASE("a chain of 100,000 ops backpropagates and is destroyed without overflowing the stack") {
  Variable<float> x(full<float>({2}, 1.0f), true);
  {
    Variable<float> y = x;
    for (int i = 0; i < 100000; ++i) y = y + 0.0f;
    ops::sum(y).backward();
    CHECK(x.grad().data()[0] == 1.0f);
  }
  {  // destroyed without backward
    Variable<float> y = x;
    for (int i = 0; i < 100000; ++i) y = y * 1.0f;
  }
  CHECK(x.is_leaf());
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Variable<double> x(full<double>({2}, 3.0), true);
  ops::sum(x * x).backward();
  ops::sum(x * x).backward();
  CHECK(x.grad().data()[0] == doctest::Approx(12.0));
  x.zero_grad();
  CHECK_FALSE(x.has_grad());
  CHECK_THROWS_AS(x.grad(), GraphError);
}

TEST_CASE("NoGradGuard records nothing and restores the previous mode") {
  Variable<double> x(random_tensor({2, 2}, 3), true);
  {
    NoGradGuard guard;
    CHECK_FALSE(is_grad_enabled());
    auto y = ops::sigmoid(x) * x;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    {
      NoGradGuard nested;
    }
    CHECK_FALSE(is_grad_enabled());
  }
  CHECK(is_grad_enabled());
  CHECK(ops::sigmoid(x).requires_grad());
}

TEST_CASE("detach cuts the graph: no gradient flows through the detached value") {
  Variable<double> x(full<double>({2}, 2.0), true);
  auto y = x * x;
  auto d = y.detach();
  CHECK(d.is_leaf());
  CHECK_FALSE(d.requires_grad());
  ops::sum(d * x).backward();  // d is a constant 4
  CHECK(x.grad().data()[0] == doctest::Approx(4.0));
}

TEST_CASE("ops compute no gradient for inputs that do not require one") {
  Variable<double> img(random_tensor({1, 1, 5, 5}, 4), false);
  Variable<double> w(random_tensor({2, 1, 3, 3}, 5), true);
  ops::sum(ops::conv2d(img, w)).backward();
  CHECK(w.has_grad());
  CHECK_FALSE(img.has_grad());
  Variable<double> a(random_tensor({2, 2}, 6), false), b(random_tensor({2, 2}, 7), false);
  auto c = ops::matmul(a, b);
  CHECK_FALSE(c.requires_grad());  // nothing requires grad: no node recorded
  CHECK(c.is_leaf());
}

TEST_CASE("saved tensors are freed after backward unless retain_graph is set") {
  Variable<double> x(random_tensor({3}, 8), true);
  auto y = ops::sum(ops::sigmoid(x));
  y.backward(/*retain_graph=*/true);
  CHECK_FALSE(y.creator()->released());
  y.backward();  // allowed: the graph was retained
  CHECK(y.creator()->released());
  CHECK(x.grad().data()[0] == doctest::Approx(2 * (1 / (1 + std::exp(-x.value().data()[0]))) *
                                              (1 - 1 / (1 + std::exp(-x.value().data()[0])))));
}

TEST_CASE("backward twice through a freed graph raises a GraphError that says so") {
  Variable<double> x(random_tensor({3}, 9), true);
  auto y = ops::sum(ops::tanh(x));
  y.backward();
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("backward through the graph a second time"), GraphError);
}

TEST_CASE("backward on a non-scalar without a gradient raises a GraphError naming the shape") {
  Variable<double> x(random_tensor({2, 3}, 10), true);
  auto y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("[2,3]"), GraphError);
  y.backward(full<double>({2, 3}, 1.0));  // with a gradient it works
  CHECK(x.grad().data()[0] == doctest::Approx(2.0));
}

TEST_CASE("backward when nothing requires grad raises a GraphError") {
  Variable<double> x(random_tensor({2}, 11), false);
  auto y = ops::sum(x * x);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("does not require grad"), GraphError);
  Variable<double> z(random_tensor({2}, 12), true);
  NoGradGuard guard;
  CHECK_THROWS_AS(ops::sum(z).backward(), GraphError);
}

TEST_CASE("a seed gradient of the wrong shape raises a GraphError naming both shapes") {
  Variable<double> x(random_tensor({2, 3}, 13), true);
  auto y = x * 3.0;
  CHECK_THROWS_WITH_AS(y.backward(full<double>({3, 2}, 1.0)), doctest::Contains("[3,2]"), GraphError);
  CHECK_THROWS_WITH_AS(y.backward(full<double>({3, 2}, 1.0)), doctest::Contains("[2,3]"), GraphError);
}

TEST_CASE("set_requires_grad is refused on a non-leaf and an undefined Variable raises") {
  Variable<double> x(random_tensor({2}, 14), true);
  auto y = x * 2.0;
  CHECK_THROWS_AS(y.set_requires_grad(false), GraphError);
  Variable<double> u;
  CHECK_FALSE(u.defined());
  CHECK_THROWS_AS(u.value(), GraphError);
}

TEST_CASE("item on a Variable with more than one element raises a ShapeError naming the shape") {
  Variable<double> x(random_tensor({2, 2}, 16));
  CHECK_THROWS_WITH_AS(x.item(), doctest::Contains("item: expected a Variable with one element, got shape [2,2]"), ShapeError);
  CHECK(ops::sum(x).item() == doctest::Approx(x.value()(0, 0) + x.value()(0, 1) + x.value()(1, 0) + x.value()(1, 1)));
}

TEST_CASE("backward on a leaf seeds its own gradient") {
  Variable<double> x(full<double>({}, 2.0), true);
  x.backward();
  CHECK(x.grad().data()[0] == 1.0);
}

TEST_CASE("a custom op whose backward returns a wrong shape is caught naming the op") {
  struct BadOp final : Op<double> {
    const char* name() const override { return "bad_op"; }
    GradList<double> backward(const Tensor<double>&) override { return {zeros<double>({7})}; }
  };
  Variable<double> x(random_tensor({2}, 15), true);
  OpCall call("bad_op");
  auto y = call.record<BadOp>(x.value(), {x});
  CHECK_THROWS_WITH_AS(ops::sum(y).backward(), doctest::Contains("bad_op"), GraphError);
}

TEST_CASE("an OpCall names the node, prefixes its errors and times every forward for the profiler") {
  struct TwiceOp final : Op<double> {
    GradList<double> backward(const Tensor<double>& g) override { return {detail_twice(g)}; }
    static Tensor<double> detail_twice(const Tensor<double>& t) {
      Tensor<double> r = t;
      for (auto& v : r) v *= 2;
      return r;
    }
  };
  const auto twice = [](const Variable<double>& x) {
    OpCall call("twice");
    if (x.dim() != 1) throw call.error("expected a vector, got " + shape_str(x.shape()));
    return call.record<TwiceOp>(TwiceOp::detail_twice(x.value()), {x});
  };
  profiler::reset();
  profiler::enable();
  Variable<double> x(random_tensor({3}, 16), true);
  auto y = twice(x);
  CHECK(std::string(y.creator()->name()) == "twice");
  ops::sum(y).backward();
  CHECK(x.grad().data()[1] == 2.0);
  {
    NoGradGuard no_grad;  // not recorded, still a forward call
    CHECK(!twice(x).creator());
  }
  Variable<double> m(random_tensor({2, 2}, 17), true);
  CHECK_THROWS_WITH_AS(twice(m), "twice: expected a vector, got [2,2]", ShapeError);  // a throw is not timed
  {
    AnomalyModeGuard anomaly;  // nor one from recording (a NaN output)
    CHECK_THROWS_AS(ops::log(Variable<double>(full<double>({2}, -1.0), true)), NumericError);
  }
  profiler::enable(false);
  std::map<std::string, profiler::Entry> rows;
  for (const auto& e : profiler::entries()) rows[e.name] = e;
  profiler::reset();
  REQUIRE(rows.count("twice"));
  CHECK(rows["twice"].forward_calls == 2);
  CHECK(rows["twice"].backward_calls == 1);
  CHECK(rows.count("log") == 0);
}

TEST_CASE("a value nothing needs is released at once, and backward still runs through its node") {
  Variable<double> x(random_tensor({2, 3}, 18), true);
  // scale and reshape read no values in backward; the intermediate outputs have no handle but the graph's.
  auto y = ops::sum(ops::reshape(ops::scale(x, 3.0), {6}));
  const Variable<double>& reshaped = y.creator()->inputs()[0];
  const Variable<double>& scaled = reshaped.creator()->inputs()[0];
  CHECK(!reshaped.has_value());
  CHECK(!scaled.has_value());
  CHECK(scaled.shape() == Shape{2, 3});  // shape, creator and gradient slot stay
  CHECK_THROWS_WITH_AS(scaled.value(), doctest::Contains("output of 'scale' was released"), GraphError);
  CHECK(x.has_value());  // leaves never
  CHECK_THROWS_WITH_AS(reshaped.backward(true), doctest::Contains("only for one-element outputs, but the output has shape [6]"),
                       GraphError);  // the shape is still known
  y.backward();
  for (std::size_t i = 0; i < 6; ++i) CHECK(x.grad().data()[i] == 3.0);
}

TEST_CASE("a value is kept while a handle or a backward that reads it needs it, and released after that backward") {
  Variable<double> x(random_tensor({4}, 19, 0.5, 2.0), true);
  auto h = ops::scale(x, 2.0);
  auto y = ops::sum(ops::log(h));  // log's backward reads its input h
  h = Variable<double>();          // the user's handle goes; log still keeps it
  const Variable<double>& logged = y.creator()->inputs()[0];
  const Variable<double>& scaled = logged.creator()->inputs()[0];
  CHECK(scaled.has_value());
  CHECK(!logged.has_value());  // sum needs only its input's shape
  auto z = ops::sum(ops::sigmoid(x));  // sigmoid's backward reads its own output
  const Variable<double>& sig = z.creator()->inputs()[0];
  CHECK(sig.has_value());
  y.backward();
  z.backward();
  CHECK(!scaled.has_value());  // released by the backwards that read them
  CHECK(!sig.has_value());
  for (std::size_t i = 0; i < 4; ++i) {
    const double xv = x.value().data()[i], s = 1 / (1 + std::exp(-xv));
    CHECK(x.grad().data()[i] == doctest::Approx(1 / xv + s * (1 - s)));
  }
}

TEST_CASE("an op that reads an input it declared it does not keep fails naming the op") {
  struct ForgetfulOp final : Op<double> {
    bool keeps_input(std::size_t) const override { return false; }
    GradList<double> backward(const Tensor<double>&) override { return {inputs()[0].value()}; }
  };
  Variable<double> x(random_tensor({3}, 20), true);
  auto y = [&] {
    OpCall call("forgetful");
    return call.record<ForgetfulOp>(Tensor<double>(x.value()), {ops::scale(x, 2.0)});
  }();
  CHECK_THROWS_WITH_AS(ops::sum(y).backward(), doctest::Contains("output of 'scale' was released"), GraphError);
}

}  // TEST_SUITE

TEST_SUITE("anomaly mode") {

TEST_CASE("anomaly mode names the op whose output is NaN or Inf, and is off by default") {
  Variable<double> x(Tensor<double>{-1.0, 2.0}, true);
  CHECK_NOTHROW(ops::log(x));  // off by default: NaN passes silently, as in PyTorch
  AnomalyModeGuard guard;
  CHECK_THROWS_WITH_AS(ops::log(x), doctest::Contains("anomaly: 'log' produced NaN in its output at element [0]"), NumericError);
  NoGradGuard no_grad;  // checked even when nothing is recorded
  CHECK_THROWS_AS(ops::log(x), NumericError);
}

TEST_CASE("anomaly mode names the op whose backward returns a non-finite gradient, and leaves the graph clean") {
  Variable<float> x(Tensor<float>{1e-45f, 1.0f}, true);  // log is finite at the smallest denormal, 1/x is not
  AnomalyModeGuard guard;
  auto y = ops::sum(ops::log(x));
  CHECK_THROWS_WITH_AS(y.backward(true), doctest::Contains("anomaly: 'log' produced Inf in its gradient for input 0"), NumericError);
  CHECK_FALSE(x.has_grad());
  set_anomaly_enabled(false);
  y.backward();  // retained graph, no stale partial gradients
  CHECK(std::isinf(x.grad().data()[0]));
  CHECK(x.grad().data()[1] == 1.0f);
}

}  // TEST_SUITE

TEST_CASE("to_dot draws every op with its shape, every leaf, and which inputs need gradients") {
  Variable<float> w(zeros<float>({3, 1, 5, 5}), true), b(zeros<float>({3}), true), x(zeros<float>({2, 1, 28, 28}));
  w.set_name("conv.weight");
  auto loss = ops::cross_entropy(ops::flatten(ops::max_pool2d(ops::sigmoid(ops::conv2d(x, w, b)), 2)), {1, 2});
  const std::string dot = to_dot(loss);
  for (const char* s : {"digraph", "conv2d\\n[2,3,24,24]", "sigmoid", "max_pool2d\\n[2,3,12,12]", "flatten\\n[2,432]",
                        "cross_entropy\\n[]", "conv.weight\\n[3,1,5,5]\\nrequires grad", "leaf\\n[2,1,28,28]\"", "style=dashed"})
    CHECK_MESSAGE(dot.find(s) != std::string::npos, s);
  std::size_t edges = 0;
  for (std::size_t p = dot.find("->"); p != std::string::npos; p = dot.find("->", p + 2)) ++edges;
  CHECK(edges == 7);  // x, w, b -> conv2d -> sigmoid -> max_pool2d -> flatten -> cross_entropy
}

TEST_CASE("the profiler counts each op's forward and backward calls, and records nothing when off") {
  Variable<float> x(zeros<float>({2, 1, 8, 8})), w(zeros<float>({3, 1, 3, 3}), true);
  profiler::reset();
  ops::sum(ops::relu(ops::conv2d(x, w))).backward();
  CHECK(profiler::entries().empty());
  profiler::enable();
  for (int i = 0; i < 3; ++i) ops::sum(ops::relu(ops::conv2d(x, w))).backward();
  profiler::enable(false);
  std::map<std::string, profiler::Entry> by_name;
  for (const auto& e : profiler::entries()) by_name[e.name] = e;
  for (const char* op : {"conv2d", "relu", "sum"}) {
    CAPTURE(op);
    REQUIRE(by_name.count(op) == 1);
    CHECK(by_name[op].forward_calls == 3);
    CHECK(by_name[op].backward_calls == 3);
  }
  CHECK(profiler::table().find("conv2d") != std::string::npos);
  profiler::reset();
}

TEST_CASE("the profiler's table keeps its columns aligned when an op's name is longer than the default column") {
  Variable<float> x(zeros<float>({2, 1, 8, 8})), w(zeros<float>({3, 1, 3, 3}), true);
  profiler::reset();
  profiler::enable();
  ops::sum(ops::conv2d_max_pool2d(x, w, {}, 2, 1, 0, 1, ops::Activation::Sigmoid)).backward();
  profiler::enable(false);
  const std::string t = profiler::table();
  CHECK(t.find("conv2d+sigmoid+max_pool2d ") != std::string::npos);
  // Every line is as long up to its "share" column: the header's "share" ends where each row's "%" does.
  std::vector<std::size_t> ends;
  std::size_t start = 0;
  for (std::size_t nl = t.find('\n'); nl != std::string::npos; start = nl + 1, nl = t.find('\n', start)) {
    const std::string line = t.substr(start, nl - start);
    if (line.rfind("total", 0) != 0) ends.push_back(line.size());
  }
  REQUIRE(ends.size() == 3);  // header, conv2d+sigmoid+max_pool2d, sum
  CHECK(ends[1] == ends[0]);
  CHECK(ends[2] == ends[0]);
  profiler::reset();
}
