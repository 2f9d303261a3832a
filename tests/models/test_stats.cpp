// The statistics mnist compare reports: mean, sample standard deviation, the incomplete beta function and Welch's
// t-test, against textbook values.
#include <cmath>

#include "helpers.h"
#include "models/stats.h"

using namespace xg::mnist::stats;

TEST_SUITE("stats") {

TEST_CASE("the mean and the sample standard deviation use n and n - 1, and are 0 without enough values") {
  CHECK(mean({}) == 0.0);
  CHECK(mean({1, 2, 3, 4}) == 2.5);
  CHECK(sample_sd({5}) == 0.0);
  CHECK(sample_sd({2, 4, 4, 4, 5, 5, 7, 9}) == doctest::Approx(std::sqrt(32.0 / 7.0)));
}

TEST_CASE("the regularized incomplete beta function matches closed forms") {
  // I_x(1, 1) = x; I_x(a, 1) = x^a; I_0.5(2, 3) = 11/16; I_x(a, b) = 1 - I_(1-x)(b, a).
  for (double x : {0.1, 0.5, 0.9}) {
    CHECK(regularized_incomplete_beta(1, 1, x) == doctest::Approx(x).epsilon(1e-12));
    CHECK(regularized_incomplete_beta(3, 1, x) == doctest::Approx(x * x * x).epsilon(1e-12));
    CHECK(regularized_incomplete_beta(2.5, 4, x) == doctest::Approx(1 - regularized_incomplete_beta(4, 2.5, 1 - x)).epsilon(1e-12));
  }
  CHECK(regularized_incomplete_beta(2, 3, 0.5) == doctest::Approx(11.0 / 16.0).epsilon(1e-12));
  CHECK(regularized_incomplete_beta(2, 3, -1) == 0.0);
  CHECK(regularized_incomplete_beta(2, 3, 2) == 1.0);
}

TEST_CASE("Welch's t-test gives the textbook p-values") {
  // Welch (1947) as worked in Wikipedia's "Welch's t-test", example 1: t = -2.46, p = 0.021.
  const std::vector<double> a{27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4};
  const std::vector<double> b{27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4};
  CHECK(welch_p_value(a, b) == doctest::Approx(0.021).epsilon(0.05));
  CHECK(welch_p_value(a, a) == doctest::Approx(1.0));
  CHECK(welch_p_value({1, 2, 3}, {11, 12, 13}) < 0.001);
  CHECK(std::isnan(welch_p_value({1}, {2, 3})));
  CHECK(welch_p_value({0.5, 0.5}, {0.4, 0.4}) == 0.0);  // no spread, different means
}

}  // TEST_SUITE
