// adaptive_avg_pool2d: x [N,C,H,W] → [N,C,oh,ow], output (i, j) the mean of rows [⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉) and columns
// [⌊j·W/ow⌋, ⌈(j+1)·W/ow⌉) (PyTorch's windows; they may overlap). Backward: each window's gradient spread evenly over
// its cells. Parallel over (n, c) planes in fixed chunks.
#include "core/parallel.h"
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

struct Windows {
  std::size_t n, c, h, w, oh, ow;
  std::size_t r0(std::size_t i) const { return i * h / oh; }
  std::size_t r1(std::size_t i) const { return ((i + 1) * h + oh - 1) / oh; }
  std::size_t c0(std::size_t j) const { return j * w / ow; }
  std::size_t c1(std::size_t j) const { return ((j + 1) * w + ow - 1) / ow; }
};

template <class T>
class AdaptiveAvgPool2dOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  explicit AdaptiveAvgPool2dOp(Windows g) : g_(g) {}
  GradList<T> backward(const Tensor<T>& gy) override {
    const Windows& g = g_;
    Tensor<T> dx = zeros<T>({g.n, g.c, g.h, g.w});
    parallel_for(0, g.n * g.c, 1, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t p = lo; p < hi; ++p)
        for (std::size_t i = 0; i < g.oh; ++i)
          for (std::size_t j = 0; j < g.ow; ++j) {
            const T share = gy.data()[(p * g.oh + i) * g.ow + j] /
                            static_cast<T>((g.r1(i) - g.r0(i)) * (g.c1(j) - g.c0(j)));
            for (std::size_t r = g.r0(i); r < g.r1(i); ++r)
              for (std::size_t c = g.c0(j); c < g.c1(j); ++c) dx.data()[(p * g.h + r) * g.w + c] += share;
          }
    });
    return {std::move(dx)};
  }

 private:
  Windows g_;
};

}  // namespace

template <class T>
Variable<T> adaptive_avg_pool2d(const Variable<T>& x, Size2 output_size) {
  OpCall call("adaptive_avg_pool2d");
  const Shape s = x.shape();
  if (s.size() != 4 || s[2] == 0 || s[3] == 0)
    throw call.error("expected non-empty input [N,C,H,W], got " + shape_str(s));
  if (output_size.h <= 0 || output_size.w <= 0)
    throw call.error("output size must be positive, got " + to_string(output_size));
  const Windows g{s[0], s[1], s[2], s[3], static_cast<std::size_t>(output_size.h), static_cast<std::size_t>(output_size.w)};
  // The output's size, and the window bounds' products (i + 1)·H + oh − 1 < oh·(H + 1), must fit: an output size of
  // 2^32 had wrapped the element count to 0 and the kernel wrote out of bounds.
  detail::checked_numel<T>(call.name(), {g.n, g.c, g.oh, g.ow});
  detail::checked_mul(call.name(), "output height × (input height + 1)", g.oh, g.h + 1);
  detail::checked_mul(call.name(), "output width × (input width + 1)", g.ow, g.w + 1);
  Tensor<T> y = xg::empty<T>({g.n, g.c, g.oh, g.ow});
  const T* px = x.value().data();
  parallel_for(0, g.n * g.c, 1, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t p = lo; p < hi; ++p)
      for (std::size_t i = 0; i < g.oh; ++i)
        for (std::size_t j = 0; j < g.ow; ++j) {
          T acc = 0;
          for (std::size_t r = g.r0(i); r < g.r1(i); ++r)
            for (std::size_t c = g.c0(j); c < g.c1(j); ++c) acc += px[(p * g.h + r) * g.w + c];
          y.data()[(p * g.oh + i) * g.ow + j] = acc / static_cast<T>((g.r1(i) - g.r0(i)) * (g.c1(j) - g.c0(j)));
        }
  });
  return call.record<AdaptiveAvgPool2dOp<T>>(std::move(y), {x}, g);
}

#define XG_INSTANTIATE(T) template Variable<T> adaptive_avg_pool2d(const Variable<T>&, Size2);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
