// conv2d: 2-D cross-correlation (PyTorch's conv2d, groups = 1).
//
// Forward:  y[n,f,oh,ow] = b[f] + Σ_{c,i,j} w[f,c,i,j] · x[n, c, oh·sh - ph + i·dh, ow·sw - pw + j·dw]
//           (cells outside the input read as 0)
// Backward: dx[n,c,h,w] = Σ_{f,oh,ow,i,j : h = oh·sh-ph+i·dh, w = ow·sw-pw+j·dw} w[f,c,i,j] · g[n,f,oh,ow]
//           dw[f,c,i,j] = Σ_{n,oh,ow} g[n,f,oh,ow] · x[n, c, oh·sh-ph+i·dh, ow·sw-pw+j·dw]
//           db[f]       = Σ_{n,oh,ow} g[n,f,oh,ow]
// Shapes:   x [N,C,H,W], w [F,C,KH,KW], b [F] -> y [N,F,OH,OW],
//           OH = (H + 2ph - dh(KH-1) - 1)/sh + 1, OW likewise; stride, dilation >= 1, padding >= 0.
// Fused activation a (optional): y = a(conv), and g above is replaced by g · a'(y), computed from the output y with
// the activations' own kernels (detail::activation_forward/backward), so the bits equal conv2d followed by relu etc.
//
// Kernel: images are processed in blocks of B (col within 512 KiB, B <= N/4 and 16: a function of the shape only). Per
// block, im2col writes col [C·KH·KW, B·OH·OW] and one GEMM gives y_block [F, B·OH·OW] = w [F, C·KH·KW] · col, copied
// into NCHW; col lives in per-thread scratch and nothing but x and w is kept for backward. Backward: g is regrouped
// per block to [F, B·OH·OW] (block-major: each block's rows close together); dw = Σ_blocks g_block · col_blockᵀ with
// col_block rebuilt from x (cheaper than keeping every block's col: ops/conv_kernels.h), accumulated per fixed chunk
// of blocks, the chunks summed in chunk order; dx = col2im(wᵀ · g_block) into each block's own images.
// Blocks and chunks never depend on the thread count, so every result is bit-identical at any thread count; BLAS runs
// on one thread inside each task, TBB over blocks owns the cores.
//
// conv2d_max_pool2d (also here: it is conv2d with a different output pass) is max_pool2d(act(conv2d(x, w, b)), k)
// with non-overlapping windows (stride = kernel k, no padding) as one node:
//   Forward:  p[n,f,i,j] = max over the k.h×k.w window at (i·k.h, j·k.w) of y = act(conv2d(x, w, b)); y exists only
//             block by block in per-thread scratch (pooled while in cache), never as a tensor; the argmax is kept.
//   Backward: D = +0 with D[n,f,argmax] = act'(p)·(0 + g) (the value at the argmax is p itself); db as conv2d's
//             first pass sums D. Patches shorter than kSparsePatchMin (64): conv2d's dense passes from D without an
//             activation — the same values, in the same order, as max_pool2d's backward followed by conv2d's, so the
//             bits equal the two ops' (while y is finite: the two ops also compute 0·act'(y) at the other cells,
//             which is NaN where y is; ops/ops.h). D is never stored: each pass builds the block of it that it reads
//             in per-thread scratch. Longer patches: D is zero except at the argmaxes, so only those with a non-zero
//             t = act'(p)·g are visited (ops/conv_kernels.h): dw[f,:] += t · patch(n, argmax) and dpatch(n, argmax)
//             += t · w[f,:] over contiguous rows of the patch matrix (im2row), then dx = row2im(dpatch) — the same
//             products as the dense passes, added in another order (within rounding of the two ops').
#include <algorithm>
#include <climits>
#include <type_traits>

#include "ops/detail.h"
#include "ops/conv_kernels.h"
#include "ops/max_pool_kernels.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {
using detail::ConvGeom;

/// The op's name in graphs, profiles and errors: "conv2d", or "conv2d+relu" etc. with a fused activation.
const char* op_name(Activation fused) {
  switch (fused) {
    case Activation::None: return "conv2d";
    case Activation::Relu: return "conv2d+relu";
    case Activation::Sigmoid: return "conv2d+sigmoid";
    case Activation::Tanh: return "conv2d+tanh";
  }
  return "conv2d";
}

/// conv2d_max_pool2d's name (a literal: the node keeps the pointer): "conv2d+max_pool2d", "conv2d+relu+max_pool2d", ...
const char* pooled_op_name(Activation fused) {
  switch (fused) {
    case Activation::None: return "conv2d+max_pool2d";
    case Activation::Relu: return "conv2d+relu+max_pool2d";
    case Activation::Sigmoid: return "conv2d+sigmoid+max_pool2d";
    case Activation::Tanh: return "conv2d+tanh+max_pool2d";
  }
  return "conv2d+max_pool2d";
}

/// conv2d's backward: the gradients of x, w and b (those asked for) from the output gradient gy [N,F,OH,OW] and, for
/// a fused activation, the output y (null for none). x is read only for dw, w only for dx.
template <class T>
GradList<T> conv_backward(const ConvGeom& g, Activation fused, const Tensor<T>& gy, const T* y, const T* x, const T* w,
                          bool need_x, bool need_w, bool need_b) {
  GradList<T> grads(3);
  // Pass 1: g·act'(y) and/or block-major regrouping into gb (a one-image block reads g in place), db on the way.
  const bool regroup = g.block > 1 && (need_x || need_w);
  detail::Buffer<T> gb(regroup || y ? gy.size() : 0);
  Tensor<T> db = zeros<T>({g.f});
  detail::conv_output_grad(g, fused, gy.data(), y, regroup, gb.data(), need_b ? db.data() : nullptr);
  const T* gsrc = gb.empty() ? gy.data() : gb.data();
  if (need_w) {  // pass 2
    Tensor<T> dw = xg::empty<T>({g.f, g.c, g.kh, g.kw});
    detail::conv_weight_grad(g, gsrc, x, dw.data());
    grads[1] = std::move(dw);
  }
  if (need_x) {  // pass 3
    Tensor<T> dx = xg::empty<T>({g.n, g.c, g.h, g.w});
    detail::conv_input_grad(g, w, gsrc, dx.data());
    grads[0] = std::move(dx);
  }
  if (need_b) grads[2] = std::move(db);
  return grads;
}

/// The node: the three passes of the backward are the kernels of ops/conv_kernels.h.
template <class T>
class Conv2dOp final : public Op<T> {
 public:
  // x for dW (its im2col is rebuilt block by block), w for dX, never the bias; the output only for a fused
  // activation's derivative.
  bool keeps_input(std::size_t i) const override { return i < 2; }
  bool keeps_output() const override { return fused_ != Activation::None; }
  Conv2dOp(ConvGeom g, Activation fused) : g_(g), fused_(fused) {}
  GradList<T> backward(const Tensor<T>& gy) override {
    const bool need_x = this->needs_grad(0), need_w = this->needs_grad(1), need_b = this->needs_grad(2);
    return conv_backward(g_, fused_, gy, fused_ == Activation::None ? nullptr : this->output().data(),
                         need_w ? this->inputs()[0].value().data() : nullptr,
                         need_x ? this->inputs()[1].value().data() : nullptr, need_x, need_w, need_b);
  }

 private:
  ConvGeom g_;
  Activation fused_;        // applied to the output in the forward; backward reads the output y through output()
};

/// conv2d_max_pool2d's node: conv2d's geometry, the pool's (over the convolution's output) and the argmax.
template <class T>
class Conv2dMaxPoolOp final : public Op<T> {
 public:
  // x for dW, w for dX, never the bias; the pooled output only for a fused activation's derivative.
  bool keeps_input(std::size_t i) const override { return i < 2; }
  bool keeps_output() const override { return fused_ != Activation::None; }
  Conv2dMaxPoolOp(ConvGeom g, detail::PoolGeom pg, Activation fused, detail::Buffer<std::int32_t> argmax)
      : g_(g), pg_(pg), fused_(fused), argmax_(std::move(argmax)) {}
  GradList<T> backward(const Tensor<T>& gp) override {
    const ConvGeom& g = g_;
    const bool need_x = this->needs_grad(0), need_w = this->needs_grad(1), need_b = this->needs_grad(2);
    // t = act'(p)·(0 + g) on the pooled size: what conv2d's first pass computes at the argmax cells of max_pool2d's
    // gradient (0 + g there, with the pooled value p = y at the argmax), so the bits are the same.
    detail::Buffer<T> t(gp.size());
    const T* pgrad = gp.data();
    const T* p = fused_ == Activation::None ? nullptr : this->output().data();
    T* pt = t.data();
    const std::size_t plane_out = pg_.oh * pg_.ow, ohw = g.ohw();
    parallel_for(0, pg_.planes(), pg_.grain(), [&](std::size_t lo, std::size_t hi) {
      const std::size_t a = lo * plane_out, e = hi * plane_out;
      for (std::size_t i = a; i < e; ++i) pt[i] = T(0) + pgrad[i];
      if (p) detail::activation_backward(fused_, pt + a, p + a, pt + a, e - a);
    });
    // The convolution's output gradient D is t at the argmax cells and +0 elsewhere (windows do not overlap: each cell
    // is written once). D is never stored whole: each pass builds the rows it needs in per-thread scratch (slot 3;
    // the passes' own scratch is slots 0–1), laid out as the unfused passes read them.
    const std::int32_t* arg = argmax_.data();
    const auto plane_into = [&](std::size_t n, std::size_t f, T* row) {  // row [OH·OW] = D[n, f]
      std::fill(row, row + ohw, T(0));
      const std::size_t at = (n * g.f + f) * plane_out;
      for (std::size_t o = 0; o < plane_out; ++o) row[arg[at + o]] = pt[at + o];
    };
    const auto block_grad = [&](std::size_t b) -> const T* {  // [F, nb·OH·OW]: row f, image k at column k·OH·OW
      const std::size_t n0 = g.first(b), nb = g.count(b), ld = nb * ohw;
      T* dst = detail::scratch<T>(3, g.f * ld);
      for (std::size_t f = 0; f < g.f; ++f)
        for (std::size_t k = 0; k < nb; ++k) plane_into(n0 + k, f, dst + f * ld + k * ohw);
      return dst;
    };
    GradList<T> grads(3);
    if (need_b) {  // db[f] = Σ_n sum_contiguous(D[n, f]) in image order, as conv2d's first pass sums
      // The plane sums in parallel over all (n, f) planes (a few filters would leave cores idle), then added per
      // filter in image order: the same additions in the same order.
      detail::Buffer<T> sums(g.n * g.f);
      T* ps = sums.data();
      const std::size_t grain = std::max<std::size_t>(1, 16384 / std::max<std::size_t>(1, ohw));
      parallel_for(0, g.n * g.f, grain, [&](std::size_t lo, std::size_t hi) {
        T* row = detail::scratch<T>(3, ohw);
        for (std::size_t i = lo; i < hi; ++i) {
          plane_into(i / g.f, i % g.f, row);
          ps[i] = detail::sum_contiguous(static_cast<const T*>(row), ohw);
        }
      });
      Tensor<T> db = zeros<T>({g.f});
      T* pdb = db.data();
      for (std::size_t n = 0; n < g.n; ++n)
        for (std::size_t f = 0; f < g.f; ++f) pdb[f] += ps[n * g.f + f];
      grads[2] = std::move(db);
    }
    // Long patches: only the non-zero argmax cells of D are visited (ops/conv_kernels.h); short ones: dense GEMMs.
    const bool sparse = g.ckk() >= detail::kSparsePatchMin;
    const detail::PooledGrad<T> pooled{pt, arg, plane_out};
    if (need_w) {
      Tensor<T> dw = xg::empty<T>({g.f, g.c, g.kh, g.kw});
      if (sparse) detail::conv_weight_grad_sparse(g, pooled, this->inputs()[0].value().data(), dw.data());
      else detail::conv_weight_grad_blocks(g, block_grad, this->inputs()[0].value().data(), dw.data());
      grads[1] = std::move(dw);
    }
    if (need_x) {
      Tensor<T> dx = xg::empty<T>({g.n, g.c, g.h, g.w});
      if (sparse) detail::conv_input_grad_sparse(g, pooled, this->inputs()[1].value().data(), dx.data());
      else detail::conv_input_grad_blocks(g, this->inputs()[1].value().data(), block_grad, dx.data());
      grads[0] = std::move(dx);
    }
    return grads;
  }
  void release() override { argmax_ = {}; }

 private:
  ConvGeom g_;
  detail::PoolGeom pg_;
  Activation fused_;
  detail::Buffer<std::int32_t> argmax_;  // index into each convolution output plane; written by the forward
};

template <class T>
ConvGeom conv_geometry(const OpCall& call, const Variable<T>& x, const Variable<T>& w, const Variable<T>& b,
                       Size2 stride, Size2 padding, Size2 dilation) {
  if (x.dim() != 4)
    throw call.error("expected 4-D input [N,C,H,W], but got input of shape " + shape_str(x.shape()));
  if (w.dim() != 4)
    throw call.error("expected 4-D weight [F,C,KH,KW], but got weight of shape " + shape_str(w.shape()));
  const Shape xs = x.shape(), ws = w.shape();
  if (xs[1] != ws[1])
    throw call.error("weight of shape " + shape_str(ws) + " expects input with " + std::to_string(ws[1]) +
                     " channels, but got input of shape " + shape_str(xs) + " with " + std::to_string(xs[1]) +
                     " channels");
  if (b.defined() && (b.dim() != 1 || b.shape()[0] != ws[0]))
    throw call.error("bias of shape " + shape_str(b.shape()) + " does not match weight of shape " +
                     shape_str(ws) + " (expected [" + std::to_string(ws[0]) + "])");
  if (stride.h <= 0 || stride.w <= 0)
    throw call.error("stride must be positive, got " + to_string(stride));
  if (padding.h < 0 || padding.w < 0)
    throw call.error("padding must be non-negative, got " + to_string(padding));
  if (dilation.h <= 0 || dilation.w <= 0)
    throw call.error("dilation must be positive, got " + to_string(dilation));
  if (ws[2] == 0 || ws[3] == 0) throw call.error("kernel of shape " + shape_str(ws) + " is empty");
  ConvGeom g{};
  g.n = xs[0]; g.c = xs[1]; g.h = xs[2]; g.w = xs[3]; g.f = ws[0]; g.kh = ws[2]; g.kw = ws[3];
  g.sh = stride.h; g.sw = stride.w; g.ph = padding.h; g.pw = padding.w; g.dh = dilation.h; g.dw = dilation.w;
  // Checked: dilation 2^62 or padding 2^62 must be a ShapeError, never a wrapped (or absurd) output shape.
  const char* op = call.name();
  const auto i64 = [](std::size_t v) { return static_cast<std::int64_t>(v); };
  const std::int64_t eh = detail::checked_add(op, "dilation × (kernel − 1) + 1", detail::checked_mul(op, "dilation × (kernel − 1)", g.dh, i64(g.kh) - 1), std::int64_t(1));
  const std::int64_t ew = detail::checked_add(op, "dilation × (kernel − 1) + 1", detail::checked_mul(op, "dilation × (kernel − 1)", g.dw, i64(g.kw) - 1), std::int64_t(1));
  const std::int64_t hp = detail::checked_add(op, "height + 2 × padding", i64(g.h), detail::checked_mul(op, "2 × padding", std::int64_t(2), g.ph));
  const std::int64_t wp = detail::checked_add(op, "width + 2 × padding", i64(g.w), detail::checked_mul(op, "2 × padding", std::int64_t(2), g.pw));
  if (eh > hp || ew > wp)
    throw call.error("padded input size per channel " + to_string(Size2(hp, wp)) + " is smaller than the " +
                     (g.dh > 1 || g.dw > 1 ? "dilated " : "") + "kernel size " + to_string(Size2(eh, ew)) +
                     " (input " + shape_str(xs) + ", weight " + shape_str(ws) + ")");
  g.oh = static_cast<std::size_t>((hp - eh) / g.sh + 1);
  g.ow = static_cast<std::size_t>((wp - ew) / g.sw + 1);
  // The output, and one image's patch matrix (C·KH·KW rows of OH·OW), must be addressable.
  detail::checked_numel<T>(op, {g.n, g.f, g.oh, g.ow});
  detail::checked_numel<T>(op, {g.ckk(), g.oh, g.ow});
  g.block = detail::block_size(g.n, g.ckk(), g.oh * g.ow);
  return g;
}

}  // namespace

template <class T>
Variable<T> conv2d(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b, Size2 stride, Size2 padding,
                   Size2 dilation, Activation fused) {
  OpCall call(op_name(fused));
  const ConvGeom g = conv_geometry(call, x, w, b, stride, padding, dilation);
  Tensor<T> y = xg::empty<T>({g.n, g.f, g.oh, g.ow});
  detail::conv_forward(g, x.value().data(), w.value().data(), b.defined() ? b.value().data() : nullptr, fused, y.data());
  return call.record<Conv2dOp<T>>(std::move(y), {x, w, b}, g, fused);
}

template <class T>
Variable<T> conv2d_max_pool2d(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b, Size2 pool,
                              Size2 stride, Size2 padding, Size2 dilation, Activation fused) {
  OpCall call(pooled_op_name(fused));
  const ConvGeom g = conv_geometry(call, x, w, b, stride, padding, dilation);
  if (pool.h <= 0 || pool.w <= 0) throw call.error("pool size must be positive, got " + to_string(pool));
  const auto oh = static_cast<std::int64_t>(g.oh), ow = static_cast<std::int64_t>(g.ow);
  if (pool.h > oh || pool.w > ow)
    throw call.error("pool size " + to_string(pool) + " is larger than the convolution's output " +
                     to_string(Size2(oh, ow)) + " (input " + shape_str(x.shape()) + ", weight " + shape_str(w.shape()) +
                     ")");
  if (g.oh * g.ow > static_cast<std::size_t>(INT32_MAX))
    throw call.error("convolution output planes of " + std::to_string(g.oh * g.ow) + " elements are too large");
  detail::PoolGeom pg{};
  pg.n = g.n; pg.c = g.f; pg.h = g.oh; pg.w = g.ow;
  pg.kh = static_cast<std::size_t>(pool.h); pg.kw = static_cast<std::size_t>(pool.w);
  pg.sh = pool.h; pg.sw = pool.w; pg.ph = 0; pg.pw = 0;
  pg.oh = g.oh / pg.kh; pg.ow = g.ow / pg.kw;
  Tensor<T> y = xg::empty<T>({g.n, g.f, pg.oh, pg.ow});
  const bool rec = should_record<T>({&x, &w, &b});
  detail::Buffer<std::int32_t> argmax(rec ? y.size() : 0);
  const std::size_t plane_out = pg.oh * pg.ow;
  T* py = y.data();
  std::int32_t* pa = rec ? argmax.data() : nullptr;
  detail::conv_forward_blocks(g, x.value().data(), w.value().data(), b.defined() ? b.value().data() : nullptr, fused,
                              static_cast<T*>(nullptr), [&](std::size_t n0, std::size_t nb, const T* out) {
                                const std::size_t at = n0 * g.f * plane_out;
                                detail::max_pool_planes(out, py + at, pa ? pa + at : nullptr, pg, 0, nb * g.f);
                              });
  return call.record<Conv2dMaxPoolOp<T>>(std::move(y), {x, w, b}, g, pg, fused, std::move(argmax));
}

XG_INSTANTIATE_OP(conv2d)
XG_INSTANTIATE_OP(conv2d_max_pool2d)

}  // namespace xg::ops
