// l2_pool2d: L2 pooling, the alternative to max-pooling named in the seed chapter.
//
// Forward:  y[n,c,i,j] = sqrt( Σ_{window} x² )   (padded cells count as 0; no epsilon)
// Backward: dx[n,c,h,w] += g[n,c,i,j] · x[n,c,h,w] / y[n,c,i,j] for every window (i,j) containing (h,w);
//           where y == 0 (an all-zero window) the contribution is exactly 0, never NaN. (PyTorch's
//           lp_pool2d(p=2) computes the same forward; its gradient at a zero window is also 0.)
// Shapes:   as max_pool2d: x [N,C,H,W] -> [N,C,(H+2ph-kh)/sh+1,(W+2pw-kw)/sw+1]; pad <= k/2.
// Parallel over (n,c) planes in fixed chunks; overlapping windows accumulate within their own plane only.
#include <cmath>

#include "ops/pool2d.h"

namespace xg::ops {
namespace {

template <class T>
class L2Pool2dOp final : public Op<T> {
 public:
  explicit L2Pool2dOp(detail::PoolGeom g) : g_(g) {}
  const char* name() const override { return "l2_pool2d"; }
  GradList<T> backward(const Tensor<T>& gy) override {
    const detail::PoolGeom& g = g_;
    Tensor<T> dx = zeros<T>({g.n, g.c, g.h, g.w});
    const T* px = this->inputs()[0].value().data();
    const T* py = this->output().data();
    const T* pg = gy.data();
    T* pd = dx.data();
    const std::size_t plane_in = g.h * g.w, plane_out = g.oh * g.ow;
    parallel_for(0, g.planes(), g.grain(), [&](std::size_t lo, std::size_t hi) {
      for (std::size_t p = lo; p < hi; ++p) {
        const T* xp = px + p * plane_in;
        T* dp = pd + p * plane_in;
        for (std::size_t i = 0; i < g.oh; ++i)
          for (std::size_t j = 0; j < g.ow; ++j) {
            const std::size_t o = p * plane_out + i * g.ow + j;
            if (py[o] == T(0)) continue;  // all-zero window: gradient 0
            const T s = pg[o] / py[o];
            std::int64_t h0, h1, w0, w1;
            g.window(i, j, h0, h1, w0, w1);
            for (std::int64_t r = h0; r < h1; ++r)
              for (std::int64_t c = w0; c < w1; ++c) {
                const std::int64_t idx = r * static_cast<std::int64_t>(g.w) + c;
                dp[idx] += s * xp[idx];
              }
          }
      }
    });
    return {std::move(dx)};
  }

 private:
  detail::PoolGeom g_;
};

}  // namespace

template <class T>
Variable<T> l2_pool2d(const Variable<T>& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  const detail::PoolGeom g = detail::pool_geometry("l2_pool2d", x, kernel, stride, padding);
  Tensor<T> y = Tensor<T>::from_shape({g.n, g.c, g.oh, g.ow});
  const T* px = x.value().data();
  T* py = y.data();
  const std::size_t plane_in = g.h * g.w, plane_out = g.oh * g.ow;
  parallel_for(0, g.planes(), g.grain(), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t p = lo; p < hi; ++p) {
      const T* xp = px + p * plane_in;
      for (std::size_t i = 0; i < g.oh; ++i)
        for (std::size_t j = 0; j < g.ow; ++j) {
          std::int64_t h0, h1, w0, w1;
          g.window(i, j, h0, h1, w0, w1);
          T acc = T(0);
          for (std::int64_t r = h0; r < h1; ++r)
            for (std::int64_t c = w0; c < w1; ++c) {
              const T v = xp[r * static_cast<std::int64_t>(g.w) + c];
              acc += v * v;
            }
          py[p * plane_out + i * g.ow + j] = std::sqrt(acc);
        }
    }
  });
  return record<L2Pool2dOp<T>>(std::move(y), {x}, g);
}

#define XG_INSTANTIATE(T) \
  template Variable<T> l2_pool2d(const Variable<T>&, Size2, std::optional<Size2>, Size2);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
