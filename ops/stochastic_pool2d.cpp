// stochastic_pool2d: stochastic pooling (Zeiler & Fergus, ICLR 2013), for non-negative activations.
//
// Training: in each window, p_k = a_k / Σ a; one cell k is drawn with probability p_k and y = a_k (an all-zero
//           window gives 0). Backward: dx[k] += g for the drawn cell (like max-pooling's argmax).
// Eval:     y = Σ p_k a_k = Σ a_k² / Σ a_k, the probability-weighted average (0 for an all-zero window), computed
//           as m · Σ b_k² / Σ b_k with b_k = a_k / m and m the window's maximum, so that no sum overflows (values
//           near the type's maximum gave inf/inf = NaN). Backward: dx[k] += g · (2 a_k − y) / Σ a
//           = g · (2 b_k − y/m) / Σ b (0 for an all-zero window).
// Draws:    one 64-bit value u is drawn from `rng` per call; the window (plane, i, j) uses
//           splitmix64(u ⊕ its flat output index) — a function of the window, not of the thread that pools it, so
//           the result is the same at any thread count. The cell is the first whose cumulative Σ a (row-major) exceeds
//           U·Σ a, U uniform in [0, 1).
// Inputs:   every value must be ≥ 0 and finite (after ReLU or sigmoid); a negative or non-finite one is a
//           NumericError naming its position, since the probabilities would mean nothing.
// Shapes:   as max_pool2d: x [N,C,H,W] -> [N,C,(H+2ph-kh)/sh+1,(W+2pw-kw)/sw+1]; pad <= k/2 (padded cells are 0).
// Parallel over (n,c) planes in fixed chunks; each task writes only its own planes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ops/pool2d.h"

namespace xg::ops {
namespace {

template <class T>
class StochasticPool2dOp final : public Op<T> {
 public:
  StochasticPool2dOp(detail::PoolGeom g, std::vector<std::int32_t> chosen, Tensor<T> sums, Tensor<T> maxes)
      : g_(g), chosen_(std::move(chosen)), sums_(std::move(sums)), maxes_(std::move(maxes)) {}
  GradList<T> backward(const Tensor<T>& gy) override {
    const detail::PoolGeom& g = g_;
    Tensor<T> dx = zeros<T>({g.n, g.c, g.h, g.w});
    const T* pg = gy.data();
    T* pd = dx.data();
    const std::size_t plane_in = g.h * g.w;
    if (!chosen_.empty()) {  // training: the gradient goes to the drawn cell
      detail::for_each_window(g, [&](const detail::Window& w) {
        if (chosen_[w.out] >= 0) pd[w.plane * plane_in + static_cast<std::size_t>(chosen_[w.out])] += pg[w.out];
      });
    } else {  // eval: d(Σa²/Σa)/da_k = (2 a_k − y) / Σa = (2 b_k − y/m) / Σb
      const T* px = this->inputs()[0].value().data();
      const T* py = this->output().data();
      const T* ps = sums_.data();
      const T* pm = maxes_.data();
      const auto W = static_cast<std::int64_t>(g.w);
      detail::for_each_window(g, [&](const detail::Window& w) {
        if (ps[w.out] == T(0)) return;
        const T m = pm[w.out], scale = pg[w.out] / ps[w.out], ym = py[w.out] / m;
        const T* xp = px + w.plane * plane_in;
        T* dp = pd + w.plane * plane_in;
        for (std::int64_t r = w.h0; r < w.h1; ++r)
          for (std::int64_t c = w.w0; c < w.w1; ++c) dp[r * W + c] += scale * (T(2) * (xp[r * W + c] / m) - ym);
      });
    }
    return {std::move(dx)};
  }
  void release() override {
    chosen_ = {};
    sums_ = Tensor<T>();
    maxes_ = Tensor<T>();
  }

 private:
  detail::PoolGeom g_;
  std::vector<std::int32_t> chosen_;  ///< training: the drawn cell's offset in its input plane (−1: all-zero window)
  Tensor<T> sums_;                    ///< eval: Σ a/m per window
  Tensor<T> maxes_;                   ///< eval: m, the window's maximum
};

}  // namespace

template <class T>
Variable<T> stochastic_pool2d(const Variable<T>& x, Size2 kernel, std::optional<Size2> stride, Size2 padding,
                              bool training, Rng& rng) {
  OpCall call("stochastic_pool2d");
  const detail::PoolGeom g = detail::pool_geometry(call.name(), x, kernel, stride, padding);
  const T* px = x.value().data();
  for (std::size_t i = 0, n = x.numel(); i < n; ++i)
    if (!(px[i] >= T(0)) || !std::isfinite(px[i])) {
      const std::size_t plane = g.h * g.w, p = i / plane, r = i % plane;
      throw NumericError(std::string(call.name()) + ": the input at [" + std::to_string(p / g.c) + "," + std::to_string(p % g.c) +
                         "," + std::to_string(r / g.w) + "," + std::to_string(r % g.w) + "] is " + std::to_string(px[i]) +
                         "; stochastic pooling needs finite non-negative activations (after ReLU or sigmoid)");
    }
  Tensor<T> y = xg::empty<T>({g.n, g.c, g.oh, g.ow});
  T* py = y.data();
  const auto W = static_cast<std::int64_t>(g.w);
  const std::size_t plane_in = g.h * g.w;
  if (training) {
    const std::uint64_t u = rng.next_u64();
    std::vector<std::int32_t> chosen(y.size(), -1);
    detail::for_each_window(g, [&](const detail::Window& w) {
      const T* xp = px + w.plane * plane_in;
      T sum = T(0);
      for (std::int64_t r = w.h0; r < w.h1; ++r)
        for (std::int64_t c = w.w0; c < w.w1; ++c) sum += xp[r * W + c];
      py[w.out] = T(0);
      if (sum == T(0)) return;
      const double draw = static_cast<double>(splitmix64(u ^ static_cast<std::uint64_t>(w.out)) >> 11) * 0x1.0p-53;
      const T target = static_cast<T>(draw) * sum;
      T run = T(0);
      std::int64_t last = -1;
      for (std::int64_t r = w.h0; r < w.h1 && py[w.out] == T(0); ++r)
        for (std::int64_t c = w.w0; c < w.w1; ++c) {
          const T a = xp[r * W + c];
          if (a == T(0)) continue;
          last = r * W + c;
          run += a;
          if (run > target) {
            py[w.out] = a;
            chosen[w.out] = static_cast<std::int32_t>(last);
            break;
          }
        }
      if (chosen[w.out] < 0) {  // rounding left target ≥ the running sum: the last non-zero cell
        py[w.out] = xp[last];
        chosen[w.out] = static_cast<std::int32_t>(last);
      }
    });
    return call.record<StochasticPool2dOp<T>>(std::move(y), {x}, g, std::move(chosen), Tensor<T>(), Tensor<T>());
  }
  Tensor<T> sums = xg::empty<T>({g.n, g.c, g.oh, g.ow}), maxes = xg::empty<T>({g.n, g.c, g.oh, g.ow});
  T* ps = sums.data();
  T* pm = maxes.data();
  detail::for_each_window(g, [&](const detail::Window& w) {
    const T* xp = px + w.plane * plane_in;
    T m = T(0);
    for (std::int64_t r = w.h0; r < w.h1; ++r)
      for (std::int64_t c = w.w0; c < w.w1; ++c) m = std::max(m, xp[r * W + c]);
    T sum = T(0), sq = T(0);
    if (m > T(0))
      for (std::int64_t r = w.h0; r < w.h1; ++r)
        for (std::int64_t c = w.w0; c < w.w1; ++c) {
          const T b = xp[r * W + c] / m;
          sum += b;
          sq += b * b;
        }
    ps[w.out] = sum;
    pm[w.out] = m;
    py[w.out] = sum == T(0) ? T(0) : m * (sq / sum);
  });
  return call.record<StochasticPool2dOp<T>>(std::move(y), {x}, g, std::vector<std::int32_t>(), std::move(sums), std::move(maxes));
}

#define XG_INSTANTIATE(T)                                                                                  \
  template Variable<T> stochastic_pool2d(const Variable<T>&, Size2, std::optional<Size2>, Size2, bool, Rng&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
