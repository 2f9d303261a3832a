// batch_norm: per-channel normalisation of x [N,C], [N,C,L] or [N,C,H,W] (channel dim 1), PyTorch's F.batch_norm.
//
// Training: μ_c, σ²_c = mean and biased variance over the M = N·L (or N·H·W) values of channel c;
//           x̂ = (x − μ_c)/√(σ²_c + ε);  y = γ_c·x̂ + β_c. The running statistics are updated in place:
//           r_μ ← (1 − m)·r_μ + m·μ_c,  r_σ² ← (1 − m)·r_σ² + m·σ²_c·M/(M − 1) (unbiased), as PyTorch does.
//           Backward: dβ_c = Σ g;  dγ_c = Σ g·x̂;  dx = γ_c/√(σ²_c + ε)·(g − mean_c(g) − x̂·mean_c(g·x̂)).
// Eval:     y = γ_c·(x − r_μ)/√(r_σ² + ε) + β_c;  dx = g·γ_c/√(r_σ² + ε) (the statistics are constants).
// γ and β may be undefined (affine = false): then γ = 1, β = 0 and they get no gradient.
// Channels in parallel over fixed chunks; per channel, sums in a fixed order (bit-identical at any thread count).
#include <cmath>

#include "core/parallel.h"
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

/// x as [outer = N, C, inner = spatial].
struct Layout {
  std::size_t n, c, inner;
  std::size_t m() const { return n * inner; }
  std::size_t at(std::size_t i, std::size_t ch, std::size_t s) const { return (i * c + ch) * inner + s; }
};

template <class T>
class BatchNormOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t i) const override { return i < 2; }  // x and the weight; never the bias
  bool keeps_output() const override { return false; }
  BatchNormOp(Layout l, std::vector<T> mean, std::vector<T> invstd, bool training)
      : l_(l), mean_(std::move(mean)), invstd_(std::move(invstd)), training_(training) {}
  GradList<T> backward(const Tensor<T>& g) override {
    const auto& in = this->inputs();
    const T* px = in[0].value().data();
    const bool affine = in[1].defined();
    const T* pw = affine ? in[1].value().data() : nullptr;
    GradList<T> grads(in.size());
    Tensor<T> dx = xg::empty<T>(in[0].shape());
    std::vector<T> dgamma(l_.c, T(0)), dbeta(l_.c, T(0));
    const T* pg = g.data();
    parallel_for(0, l_.c, 1, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t ch = lo; ch < hi; ++ch) {
        const T gamma = affine ? pw[ch] : T(1), is = invstd_[ch], mean = mean_[ch];
        T sg = 0, sgx = 0;
        for (std::size_t i = 0; i < l_.n; ++i)
          for (std::size_t s = 0; s < l_.inner; ++s) {
            const std::size_t k = l_.at(i, ch, s);
            sg += pg[k];
            sgx += pg[k] * (px[k] - mean) * is;
          }
        dbeta[ch] = sg;
        dgamma[ch] = sgx;
        const T inv_m = T(1) / static_cast<T>(l_.m());
        for (std::size_t i = 0; i < l_.n; ++i)
          for (std::size_t s = 0; s < l_.inner; ++s) {
            const std::size_t k = l_.at(i, ch, s);
            dx.data()[k] = training_ ? gamma * is * (pg[k] - sg * inv_m - (px[k] - mean) * is * sgx * inv_m) : gamma * is * pg[k];
          }
      }
    });
    if (this->needs_grad(0)) grads[0] = std::move(dx);
    if (affine && this->needs_grad(1)) grads[1] = Tensor<T>(xt::adapt(dgamma, std::vector<std::size_t>{l_.c}));
    if (in.size() > 2 && in[2].defined() && this->needs_grad(2)) grads[2] = Tensor<T>(xt::adapt(dbeta, std::vector<std::size_t>{l_.c}));
    return grads;
  }

 private:
  Layout l_;
  std::vector<T> mean_, invstd_;  ///< per channel, as used in forward (the batch's, or the running ones in eval)
  bool training_;
};

}  // namespace

template <class T>
Variable<T> batch_norm(const Variable<T>& x, Tensor<T>* running_mean, Tensor<T>* running_var, const Variable<T>& weight,
                       const Variable<T>& bias, bool training, double momentum, double eps) {
  OpCall call("batch_norm");
  const Shape xs = x.shape();
  if (xs.size() < 2 || xs.size() > 4)
    throw call.error("expected input [N,C], [N,C,L] or [N,C,H,W], got " + shape_str(xs));
  Layout l{xs[0], xs[1], 1};
  for (std::size_t i = 2; i < xs.size(); ++i) l.inner *= xs[i];
  const auto check = [&](const char* what, const Shape& s) {
    if (s != Shape{l.c})
      throw call.error(std::string(what) + " has shape " + shape_str(s) + ", expected [" + std::to_string(l.c) +
                       "] for input " + shape_str(xs));
  };
  if (weight.defined()) check("weight", weight.shape());
  if (bias.defined()) check("bias", bias.shape());
  if (running_mean) check("running_mean", shape_of(*running_mean));
  if (running_var) check("running_var", shape_of(*running_var));
  if (!(eps > 0) || !(momentum >= 0 && momentum <= 1))
    throw call.error("eps must be positive and momentum in [0, 1], got eps " + std::to_string(eps) +
                     " and momentum " + std::to_string(momentum));
  if (training && l.m() < 2)
    throw call.error("expected more than 1 value per channel when training, got input " + shape_str(xs));
  if (!training && (!running_mean || !running_var))
    throw call.error("evaluation needs the running mean and variance");
  const T* px = x.value().data();
  std::vector<T> mean(l.c), invstd(l.c);
  parallel_for(0, l.c, 1, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t ch = lo; ch < hi; ++ch) {
      if (!training) {
        mean[ch] = running_mean->data()[ch];
        invstd[ch] = T(1) / std::sqrt(running_var->data()[ch] + static_cast<T>(eps));
        continue;
      }
      T s = 0;
      for (std::size_t i = 0; i < l.n; ++i)
        for (std::size_t k = 0; k < l.inner; ++k) s += px[l.at(i, ch, k)];
      const T mu = s / static_cast<T>(l.m());
      T v = 0;
      for (std::size_t i = 0; i < l.n; ++i)
        for (std::size_t k = 0; k < l.inner; ++k) v += (px[l.at(i, ch, k)] - mu) * (px[l.at(i, ch, k)] - mu);
      v /= static_cast<T>(l.m());
      mean[ch] = mu;
      invstd[ch] = T(1) / std::sqrt(v + static_cast<T>(eps));
      const T mt = static_cast<T>(momentum);
      if (running_mean) running_mean->data()[ch] = (T(1) - mt) * running_mean->data()[ch] + mt * mu;
      if (running_var)
        running_var->data()[ch] = (T(1) - mt) * running_var->data()[ch] + mt * v * static_cast<T>(l.m()) / static_cast<T>(l.m() - 1);
    }
  });
  Tensor<T> y = xg::empty<T>(xs);
  const T* pw = weight.defined() ? weight.value().data() : nullptr;
  const T* pb = bias.defined() ? bias.value().data() : nullptr;
  for (std::size_t i = 0; i < l.n; ++i)
    for (std::size_t ch = 0; ch < l.c; ++ch)
      for (std::size_t k = 0; k < l.inner; ++k) {
        const std::size_t at = l.at(i, ch, k);
        y.data()[at] = (px[at] - mean[ch]) * invstd[ch] * (pw ? pw[ch] : T(1)) + (pb ? pb[ch] : T(0));
      }
  std::vector<Variable<T>> inputs{x, weight, bias};
  return call.record<BatchNormOp<T>>(std::move(y), inputs, l, std::move(mean), std::move(invstd), training);
}

#define XG_INSTANTIATE(T)                                                                                        \
  template Variable<T> batch_norm(const Variable<T>&, Tensor<T>*, Tensor<T>*, const Variable<T>&, const Variable<T>&, \
                                  bool, double, double);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
