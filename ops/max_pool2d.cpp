// max_pool2d.
//
// Forward:  y[n,c,i,j] = max over the window {x[n,c,i·sh-ph+p, j·sw-pw+q] : p < kh, q < kw, inside the input}
//           (padded cells never win; the argmax, an index into the input plane, is saved for backward)
// Backward: dx[argmax of window (i,j)] += g[n,c,i,j]; the whole gradient of a window goes to its FIRST maximum in
//           row-major scan order (PyTorch's tie rule). A NaN in a window wins (is propagated), as in PyTorch.
// Shapes:   x [N,C,H,W] -> y [N,C,(H+2ph-kh)/sh+1,(W+2pw-kw)/sw+1]; stride defaults to the kernel; pad <= k/2.
// Parallel over (n,c) planes in fixed chunks; each task writes only its own planes.
#include <cmath>
#include <limits>

#include "ops/pool2d.h"

namespace xg::ops {
namespace {

template <class T>
class MaxPool2dOp final : public Op<T> {
 public:
  MaxPool2dOp(detail::PoolGeom g, std::vector<std::int64_t> argmax) : g_(g), argmax_(std::move(argmax)) {}
  const char* name() const override { return "max_pool2d"; }
  GradList<T> backward(const Tensor<T>& gy) override {
    const detail::PoolGeom& g = g_;
    Tensor<T> dx = zeros<T>({g.n, g.c, g.h, g.w});
    const T* pg = gy.data();
    T* pd = dx.data();
    const std::size_t plane_in = g.h * g.w, plane_out = g.oh * g.ow;
    parallel_for(0, g.planes(), g.grain(), [&](std::size_t lo, std::size_t hi) {
      for (std::size_t p = lo; p < hi; ++p)
        for (std::size_t o = 0; o < plane_out; ++o) {
          const std::int64_t a = argmax_[p * plane_out + o];
          if (a >= 0) pd[p * plane_in + static_cast<std::size_t>(a)] += pg[p * plane_out + o];
        }
    });
    return {std::move(dx)};
  }
  void release() override { argmax_ = {}; }

 private:
  detail::PoolGeom g_;
  std::vector<std::int64_t> argmax_;
};

}  // namespace

template <class T>
Variable<T> max_pool2d(const Variable<T>& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  const detail::PoolGeom g = detail::pool_geometry("max_pool2d", x, kernel, stride, padding);
  Tensor<T> y = Tensor<T>::from_shape({g.n, g.c, g.oh, g.ow});
  std::vector<std::int64_t> argmax(y.size());
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
          T best = -std::numeric_limits<T>::infinity();
          std::int64_t arg = -1;
          for (std::int64_t r = h0; r < h1; ++r)
            for (std::int64_t c = w0; c < w1; ++c) {
              const std::int64_t idx = r * static_cast<std::int64_t>(g.w) + c;
              const T v = xp[idx];
              if (arg < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
                best = v;
                arg = idx;
              }
            }
          py[p * plane_out + i * g.ow + j] = best;
          argmax[p * plane_out + i * g.ow + j] = arg;
        }
    }
  });
  return record<MaxPool2dOp<T>>(std::move(y), {x}, g, std::move(argmax));
}

#define XG_INSTANTIATE(T) \
  template Variable<T> max_pool2d(const Variable<T>&, Size2, std::optional<Size2>, Size2);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
