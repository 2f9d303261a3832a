// max_pool2d.
//
// Forward:  y[n,c,i,j] = max over the window {x[n,c,i·sh-ph+p, j·sw-pw+q] : p < kh, q < kw, inside the input}
//           (padded cells never win; the argmax, an index into the input plane, is saved for backward)
// Backward: dx[argmax of window (i,j)] += g[n,c,i,j]; the whole gradient of a window goes to its FIRST maximum in
//           row-major scan order (PyTorch's tie rule). A NaN in a window wins (is propagated), as in PyTorch.
// Shapes:   x [N,C,H,W] -> y [N,C,(H+2ph-kh)/sh+1,(W+2pw-kw)/sw+1]; stride defaults to the kernel; pad <= k/2.
// Parallel over (n,c) planes in fixed chunks; each task writes only its own planes.
#include <climits>
#include <type_traits>
#include <cstdint>

#include "ops/pool2d.h"
#include "ops/simd_kernels.h"

namespace xg::ops {
namespace {

/// `best` is replaced by `v` when v is larger, or when v is the first NaN (NaN propagates, as in PyTorch).
/// PyTorch's rule: `v` replaces the running max when larger, or when it is NaN (NaN propagates).
template <class T>
bool wins(T v, T best) {
  return v > best || v != v;
}

/// One plane without padding: every window lies inside the input (the common case), so no clipping. The inner loop
/// is branch-free (a comparison and two selects, no NaN test); a window that held a NaN is redone by the exact rule.
template <class T, bool kArg>
void max_pool_plane_unpadded(const T* xp, T* yp, std::int32_t* ap, const detail::PoolGeom& g) {
  const std::size_t W = g.w, kh = g.kh, kw = g.kw, sh = static_cast<std::size_t>(g.sh), sw = static_cast<std::size_t>(g.sw);
  for (std::size_t i = 0; i < g.oh; ++i) {
    for (std::size_t j = 0; j < g.ow; ++j) {
      const std::int32_t origin = static_cast<std::int32_t>(i * sh * W + j * sw);
      const T* win = xp + origin;
      T best = win[0];
      std::int32_t best_off = 0;
      bool nan = false;
      for (std::size_t r = 0; r < kh; ++r)
        for (std::size_t c = 0; c < kw; ++c) {
          const std::int32_t off = static_cast<std::int32_t>(r * W + c);
          const T v = win[off];
          const bool gt = v > best;
          best = gt ? v : best;
          best_off = gt ? off : best_off;
          nan |= v != v;
        }
      if (nan) {  // rare: the exact rule, NaN included
        best = win[0];
        best_off = 0;
        for (std::size_t r = 0; r < kh; ++r)
          for (std::size_t c = 0; c < kw; ++c) {
            const std::int32_t off = static_cast<std::int32_t>(r * W + c);
            if (wins(win[off], best)) {
              best = win[off];
              best_off = off;
            }
          }
      }
      yp[i * g.ow + j] = best;
      if constexpr (kArg) ap[i * g.ow + j] = origin + best_off;
    }
  }
}

/// One plane with padding: windows are clipped to the input, so padded cells are never candidates.
template <class T>
void max_pool_plane_padded(const T* xp, T* yp, std::int32_t* ap, const detail::PoolGeom& g) {
  const auto W = static_cast<std::int64_t>(g.w);
  for (std::size_t i = 0; i < g.oh; ++i)
    for (std::size_t j = 0; j < g.ow; ++j) {
      std::int64_t h0, h1, w0, w1;
      g.window(i, j, h0, h1, w0, w1);
      std::int64_t best_idx = h0 * W + w0;
      T best = xp[best_idx];
      for (std::int64_t r = h0; r < h1; ++r)
        for (std::int64_t c = w0; c < w1; ++c) {
          if (wins(xp[r * W + c], best)) {
            best = xp[r * W + c];
            best_idx = r * W + c;
          }
        }
      yp[i * g.ow + j] = best;
      if (ap) ap[i * g.ow + j] = static_cast<std::int32_t>(best_idx);
    }
}

/// Max over the windows of planes [lo, hi); saves the argmax (an index into the input plane) when `arg` is non-null.
template <class T>
void max_pool_planes(const T* px, T* py, std::int32_t* arg, const detail::PoolGeom& g, std::size_t lo, std::size_t hi) {
  const std::size_t plane_in = g.h * g.w, plane_out = g.oh * g.ow;
  const bool padded = g.ph > 0 || g.pw > 0;
  if constexpr (std::is_same_v<T, float>) {  // the common 2x2 / stride 2 pool: a dispatched vector kernel
    if (g.is_2x2_stride2()) {
      for (std::size_t p = lo; p < hi; ++p)
        simd::max_pool_2x2(px + p * plane_in, g.h, g.w, py + p * plane_out, arg ? arg + p * plane_out : nullptr);
      return;
    }
  }
  for (std::size_t p = lo; p < hi; ++p) {
    const T* xp = px + p * plane_in;
    T* yp = py + p * plane_out;
    std::int32_t* ap = arg ? arg + p * plane_out : nullptr;
    if (padded) max_pool_plane_padded(xp, yp, ap, g);
    else if (ap) max_pool_plane_unpadded<T, true>(xp, yp, ap, g);
    else max_pool_plane_unpadded<T, false>(xp, yp, ap, g);
  }
}

template <class T>
class MaxPool2dOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  MaxPool2dOp(detail::PoolGeom g, detail::Buffer<std::int32_t> argmax) : g_(g), argmax_(std::move(argmax)) {}
  GradList<T> backward(const Tensor<T>& gy) override {
    const detail::PoolGeom& g = g_;
    Tensor<T> dx = Tensor<T>::from_shape({g.n, g.c, g.h, g.w});  // each task zeroes its own planes (in parallel)
    const T* pg = gy.data();
    T* pd = dx.data();
    const std::size_t plane_in = g.h * g.w, plane_out = g.oh * g.ow;
    parallel_for(0, g.planes(), g.grain(), [&](std::size_t lo, std::size_t hi) {
      std::fill(pd + lo * plane_in, pd + hi * plane_in, T(0));
      for (std::size_t p = lo; p < hi; ++p) {
        T* dp = pd + p * plane_in;
        const T* gp = pg + p * plane_out;
        const std::int32_t* ap = argmax_.data() + p * plane_out;
        for (std::size_t o = 0; o < plane_out; ++o) dp[ap[o]] += gp[o];
      }
    });
    return {std::move(dx)};
  }
  void release() override { argmax_ = {}; }

 private:
  detail::PoolGeom g_;
  detail::Buffer<std::int32_t> argmax_;  // uninitialised until the forward writes every entry
};

}  // namespace

template <class T>
Variable<T> max_pool2d(const Variable<T>& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  OpCall call("max_pool2d");
  const detail::PoolGeom g = detail::pool_geometry(call.name(), x, kernel, stride, padding);
  if (g.h * g.w > static_cast<std::size_t>(INT32_MAX))
    throw call.error("input planes of " + std::to_string(g.h * g.w) + " elements are too large");
  Tensor<T> y = Tensor<T>::from_shape({g.n, g.c, g.oh, g.ow});
  const bool rec = should_record<T>({&x});
  detail::Buffer<std::int32_t> argmax(rec ? y.size() : 0);
  const T* px = x.value().data();
  T* py = y.data();
  std::int32_t* pa = rec ? argmax.data() : nullptr;
  parallel_for(0, g.planes(), g.grain(), [&](std::size_t lo, std::size_t hi) { max_pool_planes(px, py, pa, g, lo, hi); });
  return call.record<MaxPool2dOp<T>>(std::move(y), {x}, g, std::move(argmax));
}

#define XG_INSTANTIATE(T) \
  template Variable<T> max_pool2d(const Variable<T>&, Size2, std::optional<Size2>, Size2);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
