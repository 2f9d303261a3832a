// conv_transpose2d: the transposed ("fractionally strided") convolution, PyTorch's conv_transpose2d with groups = 1 —
// the adjoint of conv2d with respect to its input.
//
// Forward:  y[n,o,h,w] = b[o] + Σ_{c,i,j : h = ih·sh − ph + i·dh, w = iw·sw − pw + j·dw} x[n,c,ih,iw] · W[c,o,i,j]
// Backward: dx = conv2d(g, W) without bias (W read as [C_in, C_out, KH, KW] = conv2d's [F, C, KH, KW]);
//           dW[c,o,i,j] = Σ_{n,ih,iw} x[n,c,ih,iw] · g[n, o, ih·sh − ph + i·dh, iw·sw − pw + j·dw];  db[o] = Σ g[n,o,·,·].
// Shapes:   x [N,C_in,H,W], W [C_in,C_out,KH,KW], b [C_out] → y [N,C_out,OH,OW] with
//           OH = (H − 1)·sh − 2ph + dh·(KH − 1) + oph + 1 (OW likewise); output_padding < stride or < dilation.
// Kernel:   per image, col = Wᵀ [C_out·KH·KW, C_in] · x_n [C_in, H·W], then col2im into y_n (conv2d's input-gradient
//           walk); backward dx_n = W · im2col(g_n) and dW += x_n · im2col(g_n)ᵀ. Images in parallel (disjoint writes);
//           dW summed over images in order (bit-identical at any thread count).
#include "core/linalg.h"
#include "core/parallel.h"
#include "ops/conv_kernels.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

/// The conv2d geometry whose input is y (C_out, OH, OW) and whose output is x (C_in, H, W).
template <class T>
class ConvTranspose2dOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t i) const override { return i < 2; }  // x and the weight; never the bias
  bool keeps_output() const override { return false; }
  explicit ConvTranspose2dOp(detail::ConvGeom g) : g_(g) {}
  GradList<T> backward(const Tensor<T>& gy) override {
    const detail::ConvGeom& g = g_;  // conv2d view: c = C_out, h×w = OH×OW, f = C_in, oh×ow = H×W
    const auto& in = this->inputs();
    const T* px = in[0].value().data();
    const T* pw = in[1].value().data();
    const std::size_t ckk = g.ckk(), hw = g.ohw(), out_img = g.c * g.h * g.w, in_img = g.f * hw;
    std::vector<T> cols(g.n * ckk * hw);  // im2col of every image of g
    parallel_for(0, g.n, 1, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t n = lo; n < hi; ++n) detail::im2col(gy.data() + n * out_img, g, cols.data() + n * ckk * hw, hw);
    });
    GradList<T> grads(in.size());
    if (this->needs_grad(0)) {
      Tensor<T> dx = xg::empty<T>({g.n, g.f, g.oh, g.ow});
      parallel_for(0, g.n, 1, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t n = lo; n < hi; ++n)
          gemm<T>(false, false, g.f, hw, ckk, T(1), pw, ckk, cols.data() + n * ckk * hw, hw, T(0), dx.data() + n * in_img, hw);
      });
      grads[0] = std::move(dx);
    }
    if (this->needs_grad(1)) {
      Tensor<T> dw = zeros<T>({g.f, g.c, g.kh, g.kw});
      for (std::size_t n = 0; n < g.n; ++n)  // in image order: the same sum at any thread count
        gemm<T>(false, true, g.f, ckk, hw, T(1), px + n * in_img, hw, cols.data() + n * ckk * hw, hw, T(1), dw.data(), ckk);
      grads[1] = std::move(dw);
    }
    if (in.size() > 2 && in[2].defined() && this->needs_grad(2)) {
      Tensor<T> db = zeros<T>({g.c});
      const std::size_t plane = g.h * g.w;
      for (std::size_t n = 0; n < g.n; ++n)
        for (std::size_t o = 0; o < g.c; ++o) {
          T s = 0;
          for (std::size_t k = 0; k < plane; ++k) s += gy.data()[(n * g.c + o) * plane + k];
          db.data()[o] += s;
        }
      grads[2] = std::move(db);
    }
    return grads;
  }

 private:
  detail::ConvGeom g_;
};

}  // namespace

template <class T>
Variable<T> conv_transpose2d(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b, Size2 stride, Size2 padding,
                             Size2 output_padding, Size2 dilation) {
  OpCall call("conv_transpose2d");
  const Shape xs = x.shape(), ws = w.shape();
  if (xs.size() != 4 || ws.size() != 4)
    throw call.error("expected input [N,C_in,H,W] and weight [C_in,C_out,KH,KW], got " + shape_str(xs) +
                     " and " + shape_str(ws));
  if (ws[0] != xs[1])
    throw call.error("weight of shape " + shape_str(ws) + " expects input with " + std::to_string(ws[0]) +
                     " channels, got input of shape " + shape_str(xs));
  if (b.defined() && b.shape() != Shape{ws[1]})
    throw call.error("bias of shape " + shape_str(b.shape()) + ", expected [" + std::to_string(ws[1]) + "]");
  const auto bad = [](Size2 v, std::int64_t lo) { return v.h < lo || v.w < lo; };
  if (bad(stride, 1) || bad(dilation, 1) || bad(padding, 0) || bad(output_padding, 0))
    throw call.error("stride and dilation must be positive, padding and output_padding non-negative");
  if (!((output_padding.h < stride.h || output_padding.h < dilation.h) && (output_padding.w < stride.w || output_padding.w < dilation.w)))
    throw call.error("output_padding " + to_string(output_padding) + " must be smaller than either stride or dilation");
  // (in − 1)·s − 2p + d·(k − 1) + output_padding + 1, every product and sum checked (padding or stride INT64_MAX had
  // wrapped into a small output, and the kernels' index arithmetic overflowed). The positive part bounds every index
  // the kernels compute.
  const auto extent = [&](std::size_t in, std::int64_t s, std::int64_t p, std::int64_t d, std::size_t k, std::int64_t op) {
    using detail::checked_add, detail::checked_mul;
    const char* name = call.name();
    const std::int64_t spread = checked_mul(name, "(input − 1) × stride", static_cast<std::int64_t>(in) - 1, s);
    const std::int64_t reach = checked_mul(name, "dilation × (kernel − 1)", d, static_cast<std::int64_t>(k) - 1);
    const std::int64_t full = checked_add(name, "output_padding + 1", checked_add(name, "(input − 1) × stride + dilation × (kernel − 1)", spread, reach),
                                          checked_add(name, "output_padding + 1", op, std::int64_t(1)));
    return full - checked_mul(name, "2 × padding", std::int64_t(2), p);
  };
  const std::int64_t oh = extent(xs[2], stride.h, padding.h, dilation.h, ws[2], output_padding.h);
  const std::int64_t ow = extent(xs[3], stride.w, padding.w, dilation.w, ws[3], output_padding.w);
  if (oh <= 0 || ow <= 0)
    throw call.error("the output of input " + shape_str(xs) + " and weight " + shape_str(ws) + " would be empty");
  detail::checked_numel<T>(call.name(), {xs[0], ws[1], static_cast<std::size_t>(oh), static_cast<std::size_t>(ow)});
  detail::ConvGeom g{};
  g.n = xs[0];
  g.c = ws[1];
  g.h = static_cast<std::size_t>(oh);
  g.w = static_cast<std::size_t>(ow);
  g.f = ws[0];
  g.kh = ws[2];
  g.kw = ws[3];
  g.oh = xs[2];
  g.ow = xs[3];
  g.sh = stride.h;
  g.sw = stride.w;
  g.ph = padding.h;
  g.pw = padding.w;
  g.dh = dilation.h;
  g.dw = dilation.w;
  g.block = 1;
  const std::size_t ckk = g.ckk(), hw = g.ohw(), out_img = g.c * g.h * g.w, in_img = g.f * hw;
  Tensor<T> y = zeros<T>({g.n, g.c, g.h, g.w});
  const T* px = x.value().data();
  const T* pw = w.value().data();
  parallel_for(0, g.n, 1, [&](std::size_t lo, std::size_t hi) {
    std::vector<T> col(ckk * hw);
    for (std::size_t n = lo; n < hi; ++n) {
      gemm<T>(true, false, ckk, hw, g.f, T(1), pw, ckk, px + n * in_img, hw, T(0), col.data(), hw);
      detail::col2im(col.data(), g, y.data() + n * out_img, hw);
      if (b.defined())
        for (std::size_t o = 0; o < g.c; ++o)
          for (std::size_t k = 0; k < g.h * g.w; ++k) y.data()[n * out_img + o * g.h * g.w + k] += b.value().data()[o];
    }
  });
  return call.record<ConvTranspose2dOp<T>>(std::move(y), {x, w, b}, g);
}

#define XG_INSTANTIATE(T)                                                                                         \
  template Variable<T> conv_transpose2d(const Variable<T>&, const Variable<T>&, const Variable<T>&, Size2, Size2, Size2, \
                                        Size2);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
