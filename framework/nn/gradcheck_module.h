#pragma once
/// \file gradcheck_module.h
/// `gradcheck_parameters`: gradcheck for a whole model's parameters (double precision).

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>

#include "core/gradcheck.h"
#include "nn/module.h"

namespace xg::nn {

/// Checks d loss / d parameter for every parameter of `m` against central differences, where `loss` builds the
/// (one-element) loss from the current parameter values. Each parameter's elements are all checked up to
/// `options.max_checks_per_input` (0 = 1024), else a seeded sample. `loss` must be deterministic (use eval() or a
/// fixed-seed generator for dropout). Failures name the parameter and the element.
inline GradcheckResult gradcheck_parameters(Module<double>& m, const std::function<Variable<double>()>& loss,
                                            const GradcheckOptions& options = {}) {
  GradcheckResult r;
  auto params = m.named_parameters();
  m.zero_grad();
  Variable<double> l = loss();
  if (l.numel() != 1) return {false, "gradcheck_parameters: the loss must have one element, got shape " + shape_str(l.shape()), 0};
  l.backward();
  Rng rng(options.seed);
  int reported = 0;
  for (auto& [name, p] : params) {
    const std::size_t n = p.numel();
    std::vector<std::size_t> elems(n);
    for (std::size_t k = 0; k < n; ++k) elems[k] = k;
    const std::size_t limit = options.max_checks_per_input ? options.max_checks_per_input : 1024;
    if (n > limit) {
      for (std::size_t k = 0; k < limit; ++k) std::swap(elems[k], elems[k + rng.below(n - k)]);
      elems.resize(limit);
      std::sort(elems.begin(), elems.end());
    }
    for (std::size_t k : elems) {
      const double analytic = p.has_grad() ? p.grad().data()[k] : 0.0;
      double& x = p.value().data()[k];
      const double x0 = x;
      double plus, minus;
      {
        NoGradGuard guard;
        x = x0 + options.eps;
        plus = loss().item();
        x = x0 - options.eps;
        minus = loss().item();
        x = x0;
      }
      const double numeric = (plus - minus) / (2 * options.eps);
      ++r.elements_checked;
      if (!(std::abs(analytic - numeric) <= options.atol + options.rtol * std::abs(numeric))) {
        r.ok = false;
        if (reported++ < 5) {
          std::ostringstream s;
          s.precision(10);
          s << (r.message.empty() ? "gradcheck_parameters failed:" : "") << "\n  parameter " << name << " element " << k
            << ": analytic " << analytic << " vs numeric " << numeric;
          r.message += s.str();
        }
      }
    }
  }
  return r;
}

}  // namespace xg::nn
