// lp_pool2d: Lp pooling, the family the seed chapter's L2 pooling belongs to (p = 1: the sum of magnitudes;
// p = 2: L2 pooling; p → ∞: max-pooling of magnitudes).
//
// Forward:  y[n,c,i,j] = ( Σ_{window} |x|^p )^(1/p), any real p ≥ 1 (padded cells count as 0). Computed as
//           m · ( Σ (|x|/m)^p )^(1/p) with m the window's largest |x|, so that large p neither overflows nor
//           underflows; m = 0 gives y = 0. p = 2 is l2_pool2d itself (the same node, the same bits). A whole p ≤ 16 is
//           raised by repeated multiplication (and p = 3 rooted by cbrt), faster than std::pow and as accurate.
// Backward: dx[n,c,h,w] += g[n,c,i,j] · sign(x) · (|x| / y)^(p−1) for every window (i,j) containing (h,w)
//           (p = 1: g · sign(x), with sign(0) = +1 — |x| has no derivative at 0, and +1 is that of the plain sum
//           PyTorch computes for non-negative inputs, such as ReLU's zeros); an all-zero window (y = 0) contributes
//           exactly 0, as in PyTorch.
// Shapes:   as max_pool2d: x [N,C,H,W] -> [N,C,(H+2ph-kh)/sh+1,(W+2pw-kw)/sw+1]; pad <= k/2.
// Differs from PyTorch's lp_pool2d on purpose: PyTorch raises x (not |x|) to p, so for negative inputs an odd or
// fractional p gives a negative sum or NaN (p = 1 is the plain sum); xgrad computes the Lp norm of the window, which
// is what L2 pooling generalises. For non-negative inputs (after ReLU or sigmoid) the two agree (tested against
// PyTorch's values, all-zero windows included).
// Parallel over (n,c) planes in fixed chunks; overlapping windows accumulate within their own plane only.
#include <cmath>
#include <limits>

#include "ops/pool2d.h"

namespace xg::ops {
namespace {

/// a^e for a ≥ 0: repeated multiplication when e is a whole number up to 16 (lp3: 3× faster than std::pow), else
/// std::pow.
template <class T>
T power(T a, double e) {
  if (e == std::floor(e) && e >= 0 && e <= 16) {
    T r = T(1);
    for (int i = 0; i < static_cast<int>(e); ++i) r *= a;
    return r;
  }
  return std::pow(a, static_cast<T>(e));
}

template <class T>
class LpPool2dOp final : public Op<T> {
 public:
  LpPool2dOp(detail::PoolGeom g, double p) : g_(g), p_(p) {}
  GradList<T> backward(const Tensor<T>& gy) override {
    const T* px = this->inputs()[0].value().data();
    const T* py = this->output().data();
    const T* pg = gy.data();
    return {detail::pool_backward<T>(g_, [&](const detail::Window& w, T* d) {
      const T y = py[w.out];
      if (y == T(0)) return;  // all-zero window: gradient 0
      w.cells([&](std::size_t k) {
        const T v = px[k];
        if (v == T(0)) {  // p > 1: the derivative is 0 there; p = 1: +g, the sum's (PyTorch's) choice at 0
          if (p_ == 1.0) d[k] += pg[w.out];
          return;
        }
        const T mag = p_ == 1.0 ? T(1) : power(std::abs(v) / y, p_ - 1.0);
        d[k] += pg[w.out] * (v > T(0) ? mag : -mag);
      });
    })};
  }

 private:
  detail::PoolGeom g_;
  double p_;
};

}  // namespace

template <class T>
Variable<T> lp_pool2d(const Variable<T>& x, double p, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  constexpr const char* kName = "lp_pool2d";  // checked before the call: p = 2 is l2_pool2d's node, not this one's
  if (!(std::isfinite(p) && p >= 1.0))
    throw ShapeError(std::string(kName) + ": p must be a finite number >= 1, got " + std::to_string(p));
  if (p == 2.0) return l2_pool2d(x, kernel, stride, padding);
  OpCall call(kName);
  const detail::PoolGeom g = detail::pool_geometry(call.name(), x, kernel, stride, padding);
  const T* px = x.value().data();
  const T inv = static_cast<T>(1.0 / p);
  Tensor<T> y = detail::pool_forward<T>(g, [&](const detail::Window& w) {
    T m = T(0);
    bool nan = false;
    w.cells([&](std::size_t k) {
      const T a = std::abs(px[k]);
      nan = nan || a != a;
      m = std::max(m, a);
    });
    if (nan) m = std::numeric_limits<T>::quiet_NaN();
    if (m == T(0) || !std::isfinite(m)) return m;  // 0 for an all-zero window; Inf or NaN propagate
    T acc = T(0);
    w.cells([&](std::size_t k) { acc += power(std::abs(px[k]) / m, p); });
    return m * (p == 1.0 ? acc : p == 3.0 ? std::cbrt(acc) : std::pow(acc, inv));
  });
  return call.record<LpPool2dOp<T>>(std::move(y), {x}, g, p);
}

#define XG_INSTANTIATE(T) \
  template Variable<T> lp_pool2d(const Variable<T>&, double, Size2, std::optional<Size2>, Size2);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
