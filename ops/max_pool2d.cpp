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

#include "ops/max_pool_kernels.h"
#include "ops/pool2d.h"

namespace xg::ops {
namespace {

template <class T>
class MaxPool2dOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  MaxPool2dOp(detail::PoolGeom g, detail::Buffer<std::int32_t> argmax) : g_(g), argmax_(std::move(argmax)) {}
  GradList<T> backward(const Tensor<T>& gy) override {
    const detail::PoolGeom& g = g_;
    Tensor<T> dx = xg::empty<T>({g.n, g.c, g.h, g.w});  // each task zeroes its own planes (in parallel)
    const T* pg = gy.data();
    T* pd = dx.data();
    parallel_for(0, g.planes(), g.grain(), [&](std::size_t lo, std::size_t hi) {
      detail::max_pool_scatter(pg, argmax_.data(), g, lo, hi, pd);
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
  Tensor<T> y = xg::empty<T>({g.n, g.c, g.oh, g.ow});
  const bool rec = should_record<T>({&x});
  detail::Buffer<std::int32_t> argmax(rec ? y.size() : 0);
  const T* px = x.value().data();
  T* py = y.data();
  std::int32_t* pa = rec ? argmax.data() : nullptr;
  parallel_for(0, g.planes(), g.grain(), [&](std::size_t lo, std::size_t hi) { detail::max_pool_planes(px, py, pa, g, lo, hi); });
  return call.record<MaxPool2dOp<T>>(std::move(y), {x}, g, std::move(argmax));
}

#define XG_INSTANTIATE(T) \
  template Variable<T> max_pool2d(const Variable<T>&, Size2, std::optional<Size2>, Size2);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
