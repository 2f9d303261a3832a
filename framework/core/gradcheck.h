#pragma once
/// \file gradcheck.h
/// Public gradient checkers, in the spirit of `torch.autograd.gradcheck`.
///
/// `gradcheck` compares the analytic gradients of a double-precision function against central finite differences.
/// `check_float_against_double` runs a generic function in float32 and in float64 and compares outputs and gradients,
/// which is how float32 training paths are checked against double references.

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/variable.h"

namespace xg {

/// Options of gradcheck; the defaults are PyTorch's, designed for float64.
struct GradcheckOptions {
  double eps = 1e-6;   ///< finite-difference step
  double atol = 1e-5;  ///< an element passes when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  /// Elements checked per input: 0 = all of them up to 1024, else a seeded sample of that many.
  std::size_t max_checks_per_input = 0;
  /// Compare the full Jacobian (one backward per output element) when outputs × checked elements is at most this;
  /// otherwise compare the projection Jᵀv for a random v only.
  std::size_t full_jacobian_limit = 20000;
  std::uint64_t seed = 0;          ///< seeds the upstream gradient v and the element sample
  std::vector<bool> which_inputs;  ///< inputs to differentiate (empty = all)
};

/// The outcome: `ok`, and on failure a report naming the input, element, analytic and numeric values.
struct GradcheckResult {
  bool ok = true;
  std::string message;
  std::size_t elements_checked = 0;
  explicit operator bool() const { return ok; }
};

/// A function of Variables producing one Variable (any shape).
using GradcheckFn = std::function<Variable<double>(const std::vector<Variable<double>>&)>;

/// Checks the gradients of `f` at `inputs` in double precision.
///
/// With a seeded random upstream gradient v (never all ones): the analytic Jᵀv from backward against central
/// differences of ⟨f(x), v⟩ for every checked element; the full Jacobian entry by entry when it is small (one one-hot
/// backward per output element); that f is deterministic (two calls agree bit for bit); that backward run twice gives
/// bit-identical gradients; that a zero upstream gradient gives all-zero gradients; and that backward reads no value
/// its op said it would not keep (Op::keeps_input / keeps_output): f also runs on non-leaf copies of the inputs whose
/// values nothing else holds, and its output is dropped before a backward through an identity node, so such a read
/// throws and is reported.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor<double>>& inputs,
                          const GradcheckOptions& options = {});

/// Runs `f` (a generic callable accepting `std::vector<Variable<T>>` for T = float and double) on `inputs` in both
/// precisions with the same random upstream gradient, and compares outputs and input gradients:
/// |f32 - f64| <= atol + rtol * max|f64| over each tensor.
template <class F>
GradcheckResult check_float_against_double(F&& f, const std::vector<Tensor<double>>& inputs, double rtol = 1e-4,
                                           double atol = 1e-5, std::uint64_t seed = 0) {
  std::vector<Variable<double>> xd;
  std::vector<Variable<float>> xf;
  for (const auto& t : inputs) {
    xd.emplace_back(t, true);
    Tensor<float> tf = xg::empty<float>(t.shape());
    for (std::size_t i = 0; i < t.size(); ++i) tf.data()[i] = static_cast<float>(t.data()[i]);
    xf.emplace_back(std::move(tf), true);
  }
  Variable<double> yd = f(xd);
  Variable<float> yf = f(xf);
  GradcheckResult r;
  auto compare = [&](const std::string& what, const float* a, const double* b, std::size_t n) {
    double scale = 0.0;
    for (std::size_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(b[i]));
    for (std::size_t i = 0; i < n; ++i) {
      const double d = std::abs(static_cast<double>(a[i]) - b[i]);
      if (!(d <= atol + rtol * scale)) {
        r.ok = false;
        r.message = what + " element " + std::to_string(i) + ": float32 " + std::to_string(a[i]) + " vs float64 " +
                    std::to_string(b[i]) + " (max |float64| " + std::to_string(scale) + ")";
        return;
      }
    }
  };
  if (yd.shape() != yf.shape()) return {false, "output shapes differ between float32 and float64", 0};
  compare("output", yf.value().data(), yd.value().data(), yd.numel());
  if (!r.ok) return r;
  Rng rng(seed);
  Tensor<double> vd = xg::empty<double>(yd.value().shape());
  Tensor<float> vf = xg::empty<float>(yd.value().shape());
  for (std::size_t i = 0; i < vd.size(); ++i) {
    vd.data()[i] = rng.normal();
    vf.data()[i] = static_cast<float>(vd.data()[i]);
  }
  yd.backward(vd);
  yf.backward(vf);
  for (std::size_t i = 0; i < inputs.size() && r.ok; ++i) {
    if (!xd[i].has_grad() || !xf[i].has_grad()) continue;
    compare("gradient of input " + std::to_string(i), xf[i].grad().data(), xd[i].grad().data(), xd[i].numel());
  }
  return r;
}

}  // namespace xg
