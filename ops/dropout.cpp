// Inverted dropout.
//
// Forward (training, 0 < p < 1): m_i ~ Bernoulli(1 - p) drawn serially from `rng`;  y = x ⊙ m / (1 - p)
// Backward:                      dx = g ⊙ m / (1 - p)   (the scaled mask is saved)
// p == 1 gives zeros; eval mode or p == 0 is the identity (no op recorded, no draws).
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

template <class T>
class DropoutOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  explicit DropoutOp(Tensor<T> mask) : mask_(std::move(mask)) {}
  GradList<T> backward(const Tensor<T>& g) override {
    return {detail::zip(g, mask_, [](T gv, T m) { return gv * m; })};
  }
  void release() override { mask_ = Tensor<T>(); }

 private:
  Tensor<T> mask_;  // 0 or 1/(1-p)
};

}  // namespace

template <class T>
Variable<T> dropout(const Variable<T>& x, double p, bool training, Rng& rng) {
  OpCall call("dropout");
  if (!(p >= 0.0 && p <= 1.0)) throw call.error("probability has to be between 0 and 1, but got " + std::to_string(p));
  if (!training || p == 0.0) return x;
  Tensor<T> mask = xg::empty<T>(x.value().shape());
  const T keep = p == 1.0 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
  for (auto& m : mask) m = rng.uniform() >= p ? keep : T(0);
  Tensor<T> y = detail::zip(x.value(), mask, [](T v, T m) { return v * m; });
  return call.record<DropoutOp<T>>(std::move(y), {x}, std::move(mask));
}

#define XG_INSTANTIATE(T) template Variable<T> dropout(const Variable<T>&, double, bool, Rng&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
