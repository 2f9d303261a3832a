// A custom op with two outputs, written outside xgrad's tree with public headers only: `sort2` returns the
// elementwise minimum and maximum of two tensors as one node (record_outputs), whose backward receives one optional
// gradient per output (std::nullopt: no gradient reached that output, i.e. zero, never materialised).
//
// Forward:  lo = min(a, b), hi = max(a, b) elementwise (same shapes; a tie counts as a ≤ b).
// Backward: da = g_lo where a ≤ b, g_hi where a > b; db the other way round (a missing g_k contributes 0).
// Run: ./multi_output_op — gradchecks both outputs, each output alone, and exits non-zero on any failure.
#include <cstdio>

#include "core/gradcheck.h"
#include "ops/ops.h"

namespace my_ops {

template <class T>
class Sort2Op final : public xg::Op<T> {
 public:
  bool keeps_output() const override { return false; }  // backward reads a and b only
  xg::GradList<T> backward_outputs(const std::vector<std::optional<xg::Tensor<T>>>& g) override {
    const xg::Tensor<T>& a = this->inputs()[0].value();
    const xg::Tensor<T>& b = this->inputs()[1].value();
    xg::Tensor<T> da = xg::zeros<T>(xg::shape_of(a)), db = xg::zeros<T>(xg::shape_of(b));
    for (std::size_t i = 0; i < a.size(); ++i) {
      const bool a_low = a.data()[i] <= b.data()[i];
      const T lo = g[0] ? g[0]->data()[i] : T(0), hi = g[1] ? g[1]->data()[i] : T(0);
      da.data()[i] = a_low ? lo : hi;
      db.data()[i] = a_low ? hi : lo;
    }
    return {std::move(da), std::move(db)};
  }
};

/// {min(a, b), max(a, b)}: two outputs of one node.
template <class T>
std::vector<xg::Variable<T>> sort2(const xg::Variable<T>& a, const xg::Variable<T>& b) {
  xg::OpCall call("sort2");
  if (a.shape() != b.shape()) throw call.error("shapes " + xg::shape_str(a.shape()) + " and " + xg::shape_str(b.shape()) + " differ");
  std::vector<xg::Tensor<T>> outs{xg::zeros<T>(a.shape()), xg::zeros<T>(a.shape())};
  for (std::size_t i = 0; i < a.numel(); ++i) {
    const T x = a.value().data()[i], y = b.value().data()[i];
    outs[0].data()[i] = x <= y ? x : y;
    outs[1].data()[i] = x <= y ? y : x;
  }
  return call.record_outputs<Sort2Op<T>>(std::move(outs), {a, b});
}

}  // namespace my_ops

int main() {
  xg::Rng rng(3);
  xg::Tensor<double> a = xg::zeros<double>({3, 4}), b = xg::zeros<double>({3, 4});
  for (auto& v : a) v = rng.uniform(-1, 1);
  for (auto& v : b) v = rng.uniform(-1, 1);
  int failures = 0;
  const auto check = [&](const char* what, const xg::GradcheckFn& f) {
    const auto r = xg::gradcheck(f, {a, b});
    std::printf("gradcheck sort2 %s: %s\n", what, r ? "ok" : r.message.c_str());
    failures += !r;
  };
  check("both outputs", [](const auto& v) {
    auto s = my_ops::sort2(v[0], v[1]);
    return xg::ops::add(xg::ops::mul(s[0], s[0]), xg::ops::scale(s[1], 3.0));
  });
  check("low output only", [](const auto& v) { return my_ops::sort2(v[0], v[1])[0]; });
  check("high output only", [](const auto& v) { return my_ops::sort2(v[0], v[1])[1]; });
  std::printf(failures ? "multi-output op checks FAILED\n" : "all multi-output op checks passed\n");
  return failures ? 1 : 0;
}
