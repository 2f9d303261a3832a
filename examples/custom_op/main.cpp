// Gradient-checks the out-of-tree softplus op (custom_op/softplus.h) in double precision, compares its float32 run with
// float64, and uses it in a training step. Exits non-zero on any failure.
#include <cstdio>
#include <string>

#include "core/gradcheck.h"
#include "core/profiler.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "softplus.h"

int main() {
  int failures = 0;
  for (const xg::Shape& shape : {xg::Shape{7}, xg::Shape{3, 4}, xg::Shape{2, 3, 5}}) {
    xg::Rng rng(1);
    xg::Tensor<double> x = xg::Tensor<double>::from_shape(shape);
    for (auto& v : x) v = rng.uniform(-6, 6);
    const auto r = xg::gradcheck([](const auto& v) { return my_ops::softplus(v[0]); }, {x});
    std::printf("gradcheck softplus %s: %s (%zu elements)\n", xg::shape_str(shape).c_str(), r.ok ? "ok" : "FAILED",
                r.elements_checked);
    if (!r.ok) std::printf("%s\n", r.message.c_str());
    failures += !r.ok;
    const auto f = xg::check_float_against_double([](const auto& v) { return my_ops::softplus(v[0]); }, {x});
    if (!f.ok) std::printf("float32 vs float64: %s\n", f.message.c_str());
    failures += !f.ok;
  }
  // Extreme inputs stay finite.
  xg::Variable<float> big(xg::Tensor<float>{-1000.0f, 1000.0f});
  const auto y = my_ops::softplus(big).value();
  if (!(y(0) == 0.0f && y(1) == 1000.0f)) {
    std::printf("softplus(+-1000) is not (0, 1000)\n");
    ++failures;
  }
  // And it trains like any built-in op.
  xg::manual_seed(0);
  xg::nn::Linear<> fc(4, 1);
  xg::nn::Sgd<> opt(fc.parameters(), {.lr = 0.1});
  xg::Variable<> input(xg::Tensor<float>{{1, 2, 3, 4}}), target(xg::full<float>({1, 1}, 0.5f));
  float first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    auto loss = xg::ops::mse_loss(my_ops::softplus(fc(input)), target);
    opt.zero_grad();
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  std::printf("training through softplus: loss %.5f -> %.5f\n", static_cast<double>(first), static_cast<double>(last));
  failures += !(last < first);
  // Its OpCall names the node and makes it a row of the profiler, forward and backward, with nothing else to do.
  xg::profiler::enable();
  auto loss = xg::ops::mse_loss(my_ops::softplus(fc(input)), target);
  if (loss.creator()->inputs()[0].creator()->name() != std::string("my_ops::softplus")) {
    std::printf("the node is not named my_ops::softplus\n");
    ++failures;
  }
  loss.backward();
  xg::profiler::enable(false);
  bool profiled = false;
  for (const auto& e : xg::profiler::entries())
    profiled = profiled || (e.name == "my_ops::softplus" && e.forward_calls == 1 && e.backward_calls == 1);
  std::printf("profiler row for my_ops::softplus: %s\n", profiled ? "forward 1, backward 1" : "MISSING");
  failures += !profiled;
  std::printf("%s\n", failures ? "error: custom op checks failed" : "all custom op checks passed");
  return failures ? 1 : 0;
}
