#pragma once
/// \file stats.h
/// Summary statistics and Welch's t-test, for comparing runs over seeds (`mnist compare`).

#include <vector>

namespace xg::mnist::stats {

/// The arithmetic mean; 0 for no values.
double mean(const std::vector<double>& v);
/// The sample standard deviation (n − 1 in the denominator); 0 for fewer than two values.
double sample_sd(const std::vector<double>& v);
/// I_x(a, b), the regularized incomplete beta function, for a, b > 0 and x in [0, 1] (0 below, 1 above).
double regularized_incomplete_beta(double a, double b, double x);
/// Welch's t-test (unequal variances) of the means of `a` and `b`: the two-sided p-value. NaN when either sample
/// has fewer than 2 values; with no spread at all, 1 for equal means and 0 otherwise.
double welch_p_value(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace xg::mnist::stats
