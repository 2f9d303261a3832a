// Optimizers against hand-computed steps (PyTorch's update rules).
#include "helpers.h"
#include "nn/optim.h"

using namespace xg;
using namespace xg::nn;

namespace {
void set_grad(Variable<double>& v, double g) {
  // d(sum(g*p))/dp = g: set the gradient through a tiny graph
  v.zero_grad();
  ops::sum(v * g).backward();
}
}  // namespace

TEST_SUITE("optim") {

TEST_CASE("Sgd: plain, weight decay, momentum and Nesterov steps match hand computation") {
  Variable<double> p(full<double>({1}, 1.0), true);
  {
    Sgd<double> opt({p}, {.lr = 0.1});
    set_grad(p, 2.0);
    opt.step();
    CHECK(p.value().data()[0] == doctest::Approx(1.0 - 0.1 * 2.0));
  }
  p.value().data()[0] = 1.0;
  {
    Sgd<double> opt({p}, {.lr = 0.1, .weight_decay = 0.5});
    set_grad(p, 2.0);
    opt.step();  // g = 2 + 0.5*1 = 2.5
    CHECK(p.value().data()[0] == doctest::Approx(1.0 - 0.25));
  }
  p.value().data()[0] = 1.0;
  {
    Sgd<double> opt({p}, {.lr = 0.1, .momentum = 0.9});
    set_grad(p, 2.0);
    opt.step();  // buf = 2, p = 0.8
    set_grad(p, 1.0);
    opt.step();  // buf = 0.9*2 + 1 = 2.8, p = 0.8 - 0.28 = 0.52
    CHECK(p.value().data()[0] == doctest::Approx(0.52));
  }
  p.value().data()[0] = 1.0;
  {
    Sgd<double> opt({p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    set_grad(p, 2.0);
    opt.step();  // buf = 2, d = 2 + 0.9*2 = 3.8, p = 0.62
    set_grad(p, 1.0);
    opt.step();  // buf = 2.8, d = 1 + 2.52 = 3.52, p = 0.62 - 0.352 = 0.268
    CHECK(p.value().data()[0] == doctest::Approx(0.268));
  }
}

TEST_CASE("Adam and AdamW steps match hand computation") {
  Variable<double> p(full<double>({1}, 1.0), true);
  Adam<double> opt({p}, {.lr = 0.01});
  set_grad(p, 0.5);
  opt.step();  // m = 0.05, v = 0.00025; mhat = 0.5, vhat = 0.25 -> p -= 0.01 * 0.5 / (0.5 + 1e-8)
  CHECK(p.value().data()[0] == doctest::Approx(1.0 - 0.01 * 0.5 / (0.5 + 1e-8)));
  set_grad(p, -1.0);
  opt.step();
  const double m = 0.9 * 0.05 + 0.1 * -1.0, v = 0.999 * 0.00025 + 0.001 * 1.0;
  const double expected = (1.0 - 0.01 * 0.5 / (0.5 + 1e-8)) -
                          (0.01 / (1 - 0.81)) * m / (std::sqrt(v) / std::sqrt(1 - 0.999 * 0.999) + 1e-8);
  CHECK(p.value().data()[0] == doctest::Approx(expected));

  Variable<double> q(full<double>({1}, 2.0), true);
  Adam<double> adamw({q}, {.lr = 0.1, .weight_decay = 0.5, .decoupled_weight_decay = true});
  set_grad(q, 1.0);
  adamw.step();  // q = 2*(1 - 0.05) = 1.9, then - 0.1 * 1 / (1 + 1e-8)
  CHECK(q.value().data()[0] == doctest::Approx(1.9 - 0.1 / (1 + 1e-8)));
}

TEST_CASE("optimizers skip parameters without a gradient and restore their state exactly") {
  Variable<double> a(full<double>({2}, 1.0), true), b(full<double>({2}, 1.0), true);
  Sgd<double> opt({a, b}, {.lr = 0.1, .momentum = 0.5});
  set_grad(a, 1.0);
  opt.step();
  CHECK(b.value().data()[0] == 1.0);
  auto state = opt.state();
  Sgd<double> other({a, b}, {.lr = 0.1, .momentum = 0.5});
  other.load_state(state);
  set_grad(a, 1.0);
  Variable<double> a2(a.value(), true);
  opt.step();
  const double after_first = a.value().data()[0];
  a.value().data()[0] = a2.value().data()[0];
  other.step();
  CHECK(a.value().data()[0] == after_first);
}

TEST_CASE("optimizers reject invalid hyper-parameters") {
  Variable<double> p(full<double>({1}, 1.0), true);
  CHECK_THROWS_WITH_AS(Sgd<double>({p}, {.lr = -1.0}), doctest::Contains("Sgd: invalid learning rate"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(Sgd<double>({p}, {.lr = 0.1, .nesterov = true}), doctest::Contains("Nesterov"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(Adam<double>({p}, {.beta1 = 1.0}), doctest::Contains("Adam: invalid beta1"), std::invalid_argument);
  Variable<double> not_leaf = p * 2.0;
  CHECK_THROWS_AS(Sgd<double>({not_leaf}, {}), std::invalid_argument);
}

}  // TEST_SUITE
