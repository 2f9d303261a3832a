// dropout2d: channel dropout for x [N,C,H,W] (or [N,C,L]): in training each whole channel (n, c) is zeroed with
// probability p, drawn serially from `rng` (one draw per channel), the kept ones scaled by 1/(1 − p); identity in eval
// or for p = 0.  Backward: dx = g ⊙ (the same scaled mask).
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

template <class T>
class Dropout2dOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  Dropout2dOp(std::vector<T> keep, std::size_t inner) : keep_(std::move(keep)), inner_(inner) {}
  GradList<T> backward(const Tensor<T>& g) override {
    Tensor<T> dx = xg::empty<T>(g.shape());
    for (std::size_t i = 0; i < dx.size(); ++i) dx.data()[i] = g.data()[i] * keep_[i / inner_];
    return {std::move(dx)};
  }
  void release() override { keep_ = {}; }

 private:
  std::vector<T> keep_;  ///< per (n, c): 0 or 1/(1 − p)
  std::size_t inner_;
};

}  // namespace

template <class T>
Variable<T> dropout2d(const Variable<T>& x, double p, bool training, Rng& rng) {
  OpCall call("dropout2d");
  if (!(p >= 0.0 && p <= 1.0)) throw call.error("probability has to be between 0 and 1, but got " + std::to_string(p));
  if (x.dim() < 3) throw call.error("expected input [N,C,H,W] or [N,C,L], got " + shape_str(x.shape()));
  if (!training || p == 0.0) return x;
  const Shape s = x.shape();
  const std::size_t channels = s[0] * s[1], inner = channels ? x.numel() / channels : 0;
  const T scale = p == 1.0 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
  std::vector<T> keep(channels);
  for (auto& k : keep) k = rng.uniform() >= p ? scale : T(0);
  Tensor<T> y = xg::empty<T>(s);
  for (std::size_t i = 0; i < y.size(); ++i) y.data()[i] = x.value().data()[i] * keep[i / inner];
  return call.record<Dropout2dOp<T>>(std::move(y), {x}, std::move(keep), inner);
}

#define XG_INSTANTIATE(T) template Variable<T> dropout2d(const Variable<T>&, double, bool, Rng&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
