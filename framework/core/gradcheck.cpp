#include "core/gradcheck.h"

#include <algorithm>
#include <cstring>
#include <sstream>

namespace xg {

namespace {

std::string multi_index(const Shape& s, std::size_t flat) {
  std::vector<std::size_t> idx(s.size());
  for (std::size_t d = s.size(); d-- > 0;) {
    idx[d] = s[d] ? flat % s[d] : 0;
    flat = s[d] ? flat / s[d] : 0;
  }
  return shape_str(idx);
}

/// y = x as a graph node that keeps nothing: its output and its input's value are freed when no handle holds them.
class DetachedIdentityOp final : public Op<double> {
 public:
  bool keeps_input(std::size_t) const override { return false; }
  bool keeps_output() const override { return false; }
  GradList<double> backward(const Tensor<double>& g) override { return {g}; }
};

Variable<double> detached_identity(const Variable<double>& x) {
  OpCall call("gradcheck_identity");
  return call.record<DetachedIdentityOp>(Tensor<double>(x.value()), {x});
}

/// Runs f on identity copies of the leaves and backpropagates through an identity of its output after dropping every
/// other handle: a backward that reads a value its op does not keep throws GraphError ("… was released …"); returns
/// that message, or "" when none.
std::string check_kept_values(const GradcheckFn& f, const std::vector<Tensor<double>>& inputs,
                              const std::vector<bool>& which) {
  std::vector<Variable<double>> leaves;
  for (std::size_t i = 0; i < inputs.size(); ++i) leaves.emplace_back(inputs[i], which[i]);
  Variable<double> top;
  {
    std::vector<Variable<double>> staged;
    for (const auto& l : leaves) staged.push_back(detached_identity(l));
    top = detached_identity(f(staged));
  }  // the staged inputs and f's output are now held by the graph alone
  if (!top.requires_grad()) return "";
  try {
    top.backward(full<double>(top.shape(), 1.0));
  } catch (const GraphError& e) {  // other graph errors are the other checks' to report
    const std::string m = e.what();
    if (m.find("was released") != std::string::npos) return m;
  }
  return "";
}

std::vector<Variable<double>> make_leaves(const std::vector<Tensor<double>>& inputs, const std::vector<bool>& which) {
  std::vector<Variable<double>> v;
  for (std::size_t i = 0; i < inputs.size(); ++i) v.emplace_back(inputs[i], which[i]);
  return v;
}

/// Gradients of each differentiated input after backward(seed); zeros where backward did not reach an input.
std::vector<Tensor<double>> grads_after(const Variable<double>& y, std::vector<Variable<double>>& xs,
                                        const std::vector<bool>& which, const Tensor<double>& seed) {
  for (auto& x : xs) x.zero_grad();
  y.backward(seed, /*retain_graph=*/true);
  std::vector<Tensor<double>> g;
  for (std::size_t i = 0; i < xs.size(); ++i)
    g.push_back(which[i] && xs[i].has_grad() ? xs[i].grad() : zeros<double>(xs[i].shape()));
  return g;
}

bool bit_equal(const Tensor<double>& a, const Tensor<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor<double>>& inputs,
                          const GradcheckOptions& o) {
  GradcheckResult r;
  std::vector<bool> which = o.which_inputs;
  if (which.empty()) which.assign(inputs.size(), true);
  if (which.size() != inputs.size())
    throw std::invalid_argument("gradcheck: which_inputs has " + std::to_string(which.size()) + " entries for " +
                                std::to_string(inputs.size()) + " inputs");
  auto fail = [&](const std::string& m) {
    if (r.ok) r.message = "gradcheck failed: " + m;
    else r.message += "\n  " + m;
    r.ok = false;
  };

  std::vector<Variable<double>> xs = make_leaves(inputs, which);
  Variable<double> y = f(xs);
  {
    std::vector<Variable<double>> xs2 = make_leaves(inputs, which);
    if (!bit_equal(f(xs2).value(), y.value())) fail("f is not deterministic: two calls on the same inputs differ");
  }
  if (const std::string kept = check_kept_values(f, inputs, which); !kept.empty())
    fail("backward read a value that was released (an op's keeps_input/keeps_output says it does not read it): " + kept);
  const Shape ys = y.shape();
  const std::size_t ny = y.numel();
  if (!y.requires_grad()) {
    fail("the output does not require grad (no input reaches it through a recorded op)");
    return r;
  }

  Rng rng(o.seed);
  Tensor<double> v = xg::empty<double>(ys);
  for (auto& e : v) e = rng.normal();

  const std::vector<Tensor<double>> analytic = grads_after(y, xs, which, v);
  const std::vector<Tensor<double>> again = grads_after(y, xs, which, v);
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (which[i] && !bit_equal(analytic[i], again[i]))
      fail("backward is not reentrant: two backward passes gave different gradients for input " + std::to_string(i));
  const std::vector<Tensor<double>> zero_g = grads_after(y, xs, which, zeros<double>(ys));
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (which[i] && std::any_of(zero_g[i].begin(), zero_g[i].end(), [](double e) { return e != 0.0; }))
      fail("backward is not multiplied by the upstream gradient: a zero upstream gradient gave a non-zero gradient "
           "for input " + std::to_string(i));

  int reported = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!which[i]) continue;
    const std::size_t n = inputs[i].size();
    std::vector<std::size_t> elems(n);
    for (std::size_t k = 0; k < n; ++k) elems[k] = k;
    const std::size_t limit = o.max_checks_per_input ? o.max_checks_per_input : 1024;
    if (n > limit) {  // seeded sample without replacement (partial Fisher-Yates), then sorted
      for (std::size_t k = 0; k < limit; ++k) std::swap(elems[k], elems[k + rng.below(n - k)]);
      elems.resize(limit);
      std::sort(elems.begin(), elems.end());
    }
    const bool full = ny * elems.size() <= o.full_jacobian_limit;
    std::vector<Tensor<double>> columns;  // numeric Jacobian columns, for the full comparison
    std::vector<Tensor<double>> xp(inputs.begin(), inputs.end());
    for (std::size_t k : elems) {
      const double x0 = xp[i].data()[k];
      Tensor<double> plus, minus;
      {
        NoGradGuard guard;
        xp[i].data()[k] = x0 + o.eps;
        plus = f(make_leaves(xp, std::vector<bool>(xp.size(), false))).value();
        xp[i].data()[k] = x0 - o.eps;
        minus = f(make_leaves(xp, std::vector<bool>(xp.size(), false))).value();
        xp[i].data()[k] = x0;
      }
      Tensor<double> col = xg::empty<double>(ys);
      double numeric = 0.0;
      for (std::size_t j = 0; j < ny; ++j) {
        col.data()[j] = (plus.data()[j] - minus.data()[j]) / (2.0 * o.eps);
        numeric += col.data()[j] * v.data()[j];
      }
      const double a = analytic[i].data()[k];
      ++r.elements_checked;
      if (!(std::abs(a - numeric) <= o.atol + o.rtol * std::abs(numeric)) && reported++ < 5)
        fail("input " + std::to_string(i) + " element " + multi_index(shape_of(inputs[i]), k) +
             ": analytic " + fmt(a) + " vs numeric " + fmt(numeric) + " (projection on a random upstream gradient)");
      if (full) columns.push_back(std::move(col));
    }
    if (!full) continue;
    for (std::size_t j = 0; j < ny; ++j) {  // one one-hot backward per output element gives row j of J
      Tensor<double> onehot = zeros<double>(ys);
      onehot.data()[j] = 1.0;
      const Tensor<double> row = grads_after(y, xs, which, onehot)[i];
      for (std::size_t c = 0; c < elems.size(); ++c) {
        const double a = row.data()[elems[c]], nmr = columns[c].data()[j];
        if (!(std::abs(a - nmr) <= o.atol + o.rtol * std::abs(nmr)) && reported++ < 5)
          fail("input " + std::to_string(i) + " element " + multi_index(shape_of(inputs[i]), elems[c]) +
               ", output element " + multi_index(ys, j) + ": Jacobian entry analytic " + fmt(a) + " vs numeric " +
               fmt(nmr));
      }
    }
  }
  return r;
}

}  // namespace xg
