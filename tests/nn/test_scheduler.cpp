// Learning-rate schedules: their formulas (PyTorch's StepLR and CosineAnnealingLR at epoch boundaries), warm-up,
// state round trips and bad arguments.
#include <cmath>

#include "helpers.h"
#include "nn/layers.h"
#include "nn/scheduler.h"

using namespace xg;
using namespace xg::nn;

TEST_SUITE("scheduler") {

TEST_CASE("StepLR multiplies the rate by gamma every step_size epochs, as PyTorch's StepLR stepped per epoch") {
  Linear<float> fc(2, 2);
  Sgd<float> opt(fc.parameters(), SgdOptions{0.1});
  StepLR<float> s(opt, 2, 0.5, 3);  // 3 steps per epoch: decays at step 6, 12, …
  const double expected[] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.025};
  for (std::size_t k = 0; k < 13; ++k) {
    s.set_step(k);
    CHECK(opt.lr() == doctest::Approx(expected[k]));
  }
  CHECK(s.describe() == "StepLR(step_size=2, gamma=0.5)");
}

TEST_CASE("CosineLR follows PyTorch's CosineAnnealingLR at epoch boundaries and stays at eta_min after T epochs") {
  Linear<float> fc(2, 2);
  Sgd<float> opt(fc.parameters(), SgdOptions{0.2});
  CosineLR<float> s(opt, 4, 10, 0.01);
  for (std::size_t epoch = 0; epoch <= 6; ++epoch) {
    s.set_step(epoch * 10);
    const double t = std::min<double>(epoch, 4);
    CHECK(opt.lr() == doctest::Approx(0.01 + (0.2 - 0.01) * (1 + std::cos(M_PI * t / 4)) / 2));
  }
  s.set_step(5);  // within the first epoch: between the epoch values
  CHECK(opt.lr() < 0.2);
  CHECK(opt.lr() > 0.01 + (0.2 - 0.01) * (1 + std::cos(M_PI / 4)) / 2);
}

TEST_CASE("WarmupCosineLR rises linearly to the base rate, then follows a cosine to eta_min") {
  Linear<float> fc(2, 2);
  Sgd<float> opt(fc.parameters(), SgdOptions{1.0});
  WarmupCosineLR<float> s(opt, 1, 3, 4);  // 4 warm-up steps, then cosine over epochs 1–3
  const double warm[] = {0.25, 0.5, 0.75, 1.0};
  for (std::size_t k = 0; k < 4; ++k) {
    s.set_step(k);
    CHECK(opt.lr() == doctest::Approx(warm[k]));
  }
  s.set_step(4);
  CHECK(opt.lr() == doctest::Approx(1.0));
  s.set_step(8);
  CHECK(opt.lr() == doctest::Approx(0.5));
  s.set_step(12);
  CHECK(opt.lr() == doctest::Approx(0.0));
  s.set_step(100);
  CHECK(opt.lr() == doctest::Approx(0.0));
}

TEST_CASE("WarmupCosineLR never exceeds the base rate when the warm-up is not a whole number of steps") {
  // Round 3: warm-up 1.5 epochs × 3 steps gave lr(4) = 1.111 × base, and a warm-up of 0.001 epochs × 100 steps gave
  // 10 × base at step 0 (1e-9 epochs: 10^9 × base, a model trained to loss 101297).
  Linear<float> fc(2, 2);
  Sgd<float> opt(fc.parameters(), SgdOptions{1.0});
  WarmupCosineLR<float> a(opt, 1.5, 10, 3);  // 4.5 warm-up steps: 5 steps up to the base rate
  const double warm[] = {0.2, 0.4, 0.6, 0.8, 1.0};
  for (std::size_t k = 0; k < 5; ++k) {
    a.set_step(k);
    CHECK(opt.lr() == doctest::Approx(warm[k]));
  }
  for (std::size_t k = 0; k < 40; ++k) {
    a.set_step(k);
    CHECK(opt.lr() <= 1.0);
  }
  // Not even by one ulp (base·(k + 1)/W rounded above the base for about 6% of pairs, e.g. 0.1 over 3 steps).
  for (const double base : {0.1, 0.3, 0.7, 1e-3, 0.05}) {
    Sgd<float> o(fc.parameters(), SgdOptions{base});
    for (const double warm : {0.5, 1.5, 2.5, 3.3}) {
      WarmupCosineLR<float> w(o, warm, 20, 2);
      for (std::size_t k = 0; k < 12; ++k) CHECK(w.lr_at(k) <= base);
    }
  }
  Sgd<float> opt2(fc.parameters(), SgdOptions{0.1});
  for (const double warmup : {0.001, 1e-9, 1e-12}) {
    WarmupCosineLR<float> b(opt2, warmup, 10, 100);
    b.set_step(0);
    CHECK(opt2.lr() == doctest::Approx(0.1));  // one warm-up step, at the base rate
    b.set_step(1);
    CHECK(opt2.lr() <= 0.1);
  }
}

TEST_CASE("a scheduler's state restores its step and base rate; crafted states and bad arguments are refused") {
  Linear<float> fc(2, 2);
  Sgd<float> opt(fc.parameters(), SgdOptions{0.1});
  StepLR<float> s(opt, 1, 0.1, 2);
  s.set_step(5);
  const auto st = s.state();
  Sgd<float> opt2(fc.parameters(), SgdOptions{0.1});
  StepLR<float> s2(opt2, 1, 0.1, 2);
  s2.load_state(st);
  CHECK(s2.current_step() == 5);
  CHECK(opt2.lr() == doctest::Approx(opt.lr()));
  s2.set_base_lr(0.2);  // a resumed run given another --lr
  CHECK(opt2.lr() == doctest::Approx(0.2 * 0.01));
  CHECK_THROWS_AS(s2.load_state({{"step", 1.5}, {"base_lr", 0.1}}), CheckpointError);
  CHECK_THROWS_AS(s2.load_state({{"step", 1}, {"base_lr", -1}}), CheckpointError);
  CHECK_THROWS_AS(s2.load_state({{"step", 1}}), CheckpointError);
  CHECK(s2.current_step() == 5);
  CHECK_THROWS_AS(StepLR<float>(opt, 0, 0.1, 2), std::invalid_argument);
  CHECK_THROWS_AS(StepLR<float>(opt, 1, 1.5, 2), std::invalid_argument);
  CHECK_THROWS_AS(CosineLR<float>(opt, 0, 2), std::invalid_argument);
  CHECK_THROWS_AS(WarmupCosineLR<float>(opt, 3, 3, 2), std::invalid_argument);
  CHECK_THROWS_AS(StepLR<float>(opt, 1, 0.5, 0), std::invalid_argument);
}

}  // TEST_SUITE
