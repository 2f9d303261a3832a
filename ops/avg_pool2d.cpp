// avg_pool2d.
//
// Forward:  y[n,c,i,j] = (Σ_{window inside the input} x) / d, d = kh·kw with count_include_pad (PyTorch's default:
//           padded cells count as zeros), else the number of cells of the window inside the input.
// Backward: dx[cell] += g[n,c,i,j] / d for every window (i,j) containing the cell.
// Shapes:   as max_pool2d: x [N,C,H,W] -> [N,C,(H+2ph-kh)/sh+1,(W+2pw-kw)/sw+1]; pad <= k/2.
#include "ops/pool2d.h"

namespace xg::ops {
namespace {

template <class T>
T divisor(const detail::PoolGeom& g, bool include_pad, std::int64_t h0, std::int64_t h1, std::int64_t w0,
          std::int64_t w1) {
  return include_pad ? static_cast<T>(g.kh * g.kw) : static_cast<T>((h1 - h0) * (w1 - w0));
}

template <class T>
class AvgPool2dOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  AvgPool2dOp(detail::PoolGeom g, bool include_pad) : g_(g), include_pad_(include_pad) {}
  GradList<T> backward(const Tensor<T>& gy) override {
    const detail::PoolGeom& g = g_;
    const T* pg = gy.data();
    return {detail::pool_backward<T>(g, [&](const detail::Window& w, T* d) {
      const T v = pg[w.out] / divisor<T>(g, include_pad_, w.h0, w.h1, w.w0, w.w1);
      w.cells([&](std::size_t k) { d[k] += v; });
    })};
  }

 private:
  detail::PoolGeom g_;
  bool include_pad_;
};

}  // namespace

template <class T>
Variable<T> avg_pool2d(const Variable<T>& x, Size2 kernel, std::optional<Size2> stride, Size2 padding,
                       bool count_include_pad) {
  OpCall call("avg_pool2d");
  const detail::PoolGeom g = detail::pool_geometry(call.name(), x, kernel, stride, padding);
  const T* px = x.value().data();
  Tensor<T> y = detail::pool_forward<T>(g, [&](const detail::Window& w) {
    T acc = T(0);
    w.cells([&](std::size_t k) { acc += px[k]; });
    return acc / divisor<T>(g, count_include_pad, w.h0, w.h1, w.w0, w.w1);
  });
  return call.record<AvgPool2dOp<T>>(std::move(y), {x}, g, count_include_pad);
}

#define XG_INSTANTIATE(T) \
  template Variable<T> avg_pool2d(const Variable<T>&, Size2, std::optional<Size2>, Size2, bool);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
