// l2_pool2d: L2 pooling, the alternative to max-pooling named in the seed chapter.
//
// Forward:  y[n,c,i,j] = sqrt( Σ_{window} x² )   (padded cells count as 0; no epsilon)
// Backward: dx[n,c,h,w] += g[n,c,i,j] · x[n,c,h,w] / y[n,c,i,j] for every window (i,j) containing (h,w);
//           where y == 0 (an all-zero window) the contribution is exactly 0, never NaN. (PyTorch's
//           lp_pool2d(p=2) computes the same forward; its gradient at a zero window is also 0.)
// Shapes:   as max_pool2d: x [N,C,H,W] -> [N,C,(H+2ph-kh)/sh+1,(W+2pw-kw)/sw+1]; pad <= k/2.
// Parallel over (n,c) planes in fixed chunks; overlapping windows accumulate within their own plane only.
#include <cmath>
#include <type_traits>

#include "ops/pool2d.h"
#include "ops/simd_kernels.h"

namespace xg::ops {
namespace {

template <class T>
class L2Pool2dOp final : public Op<T> {
 public:
  explicit L2Pool2dOp(detail::PoolGeom g) : g_(g) {}
  GradList<T> backward(const Tensor<T>& gy) override {
    const detail::PoolGeom& g = g_;
    const T* px = this->inputs()[0].value().data();
    const T* py = this->output().data();
    const T* pg = gy.data();
    if constexpr (std::is_same_v<T, float>) {
      if (g.is_2x2_stride2()) {  // dispatched vector kernel; the same formula and order as below
        Tensor<T> dx = zeros<T>({g.n, g.c, g.h, g.w});
        T* pd = dx.data();
        const std::size_t plane_in = g.h * g.w, plane_out = g.oh * g.ow;
        parallel_for(0, g.planes(), g.grain(), [&](std::size_t lo, std::size_t hi) {
          for (std::size_t p = lo; p < hi; ++p)
            simd::l2_pool_2x2_backward(px + p * plane_in, py + p * plane_out, pg + p * plane_out, g.h, g.w, pd + p * plane_in);
        });
        return {std::move(dx)};
      }
    }
    return {detail::pool_backward<T>(g, [&](const detail::Window& w, T* d) {
      if (py[w.out] == T(0)) return;  // all-zero window: gradient 0
      const T s = pg[w.out] / py[w.out];
      w.cells([&](std::size_t k) { d[k] += s * px[k]; });
    })};
  }

 private:
  detail::PoolGeom g_;
};

}  // namespace

template <class T>
Variable<T> l2_pool2d(const Variable<T>& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  OpCall call("l2_pool2d");
  const detail::PoolGeom g = detail::pool_geometry(call.name(), x, kernel, stride, padding);
  const T* px = x.value().data();
  if constexpr (std::is_same_v<T, float>) {
    if (g.is_2x2_stride2()) {  // dispatched vector kernel; the same formula and order as below
      Tensor<T> y = xg::empty<T>({g.n, g.c, g.oh, g.ow});
      T* py = y.data();
      parallel_for(0, g.planes(), g.grain(), [&](std::size_t lo, std::size_t hi) {
        for (std::size_t p = lo; p < hi; ++p) simd::l2_pool_2x2(px + p * g.h * g.w, g.h, g.w, py + p * g.oh * g.ow);
      });
      return call.record<L2Pool2dOp<T>>(std::move(y), {x}, g);
    }
  }
  Tensor<T> y = detail::pool_forward<T>(g, [&](const detail::Window& w) {
    T acc = T(0);
    w.cells([&](std::size_t k) { acc += px[k] * px[k]; });
    return std::sqrt(acc);
  });
  return call.record<L2Pool2dOp<T>>(std::move(y), {x}, g);
}

XG_INSTANTIATE_OP(l2_pool2d)

}  // namespace xg::ops
