// conv2d: 2-D cross-correlation (PyTorch's conv2d, groups = 1).
//
// Forward:  y[n,f,oh,ow] = b[f] + Σ_{c,i,j} w[f,c,i,j] · x[n, c, oh·sh - ph + i·dh, ow·sw - pw + j·dw]
//           (cells outside the input read as 0)
// Backward: dx[n,c,h,w] = Σ_{f,oh,ow,i,j : h = oh·sh-ph+i·dh, w = ow·sw-pw+j·dw} w[f,c,i,j] · g[n,f,oh,ow]
//           dw[f,c,i,j] = Σ_{n,oh,ow} g[n,f,oh,ow] · x[n, c, oh·sh-ph+i·dh, ow·sw-pw+j·dw]
//           db[f]       = Σ_{n,oh,ow} g[n,f,oh,ow]
// Shapes:   x [N,C,H,W], w [F,C,KH,KW], b [F] -> y [N,F,OH,OW],
//           OH = (H + 2ph - dh(KH-1) - 1)/sh + 1, OW likewise; stride, dilation >= 1, padding >= 0.
//
// Kernel: per image, im2col (col [C·KH·KW, OH·OW]) then one GEMM: y_n [F, OH·OW] = w [F, C·KH·KW] · col.
// dx_n = col2im(wᵀ · g_n), written into image n's own slice. dw = Σ_n g_n · col_nᵀ accumulated per fixed chunk of
// images, then the chunk partials are summed in chunk order. Chunks depend on N only, never on the thread count, so
// every result is bit-identical at any thread count. BLAS runs on one thread inside each task.
#include <algorithm>

#include "core/linalg.h"
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

struct ConvGeom {
  std::size_t n, c, h, w, f, kh, kw, oh, ow;
  std::int64_t sh, sw, ph, pw, dh, dw;
  std::size_t ckk() const { return c * kh * kw; }
  std::size_t ohw() const { return oh * ow; }
  bool is_pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

/// First and one-past-last output column whose input column ow·s - p + j·d lies inside [0, extent).
void valid_range(std::int64_t extent, std::int64_t out, std::int64_t s, std::int64_t p, std::int64_t off,
                 std::int64_t& lo, std::int64_t& hi) {
  // need 0 <= o*s - p + off < extent
  const std::int64_t a = p - off;  // o*s >= a
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  const std::int64_t b = extent - 1 + p - off;  // o*s <= b
  hi = b < 0 ? 0 : b / s + 1;
  lo = std::min(lo, out);
  hi = std::max(lo, std::min(hi, out));
}

template <class T>
void im2col(const T* x, const ConvGeom& g, T* col) {
  const auto H = static_cast<std::int64_t>(g.h), W = static_cast<std::int64_t>(g.w);
  const auto OH = static_cast<std::int64_t>(g.oh), OW = static_cast<std::int64_t>(g.ow);
  for (std::size_t c = 0; c < g.c; ++c) {
    const T* xc = x + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i) {
      for (std::size_t j = 0; j < g.kw; ++j) {
        T* row = col + ((c * g.kh + i) * g.kw + j) * g.ohw();
        const std::int64_t ioff = static_cast<std::int64_t>(i) * g.dh, joff = static_cast<std::int64_t>(j) * g.dw;
        std::int64_t lo, hi;
        valid_range(W, OW, g.sw, g.pw, joff, lo, hi);
        for (std::int64_t oh = 0; oh < OH; ++oh) {
          T* dst = row + oh * OW;
          const std::int64_t ih = oh * g.sh - g.ph + ioff;
          if (ih < 0 || ih >= H) {
            std::fill(dst, dst + OW, T(0));
            continue;
          }
          const std::int64_t base = ih * W - g.pw + joff;  // input index of output column 0
          std::fill(dst, dst + lo, T(0));
          if (g.sw == 1)
            std::copy(xc + (base + lo), xc + (base + hi), dst + lo);
          else
            for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] = xc[base + ow * g.sw];
          std::fill(dst + hi, dst + OW, T(0));
        }
      }
    }
  }
}

/// dx += col2im(dcol): the adjoint of im2col. dx must be zeroed by the caller.
template <class T>
void col2im(const T* dcol, const ConvGeom& g, T* dx) {
  const auto H = static_cast<std::int64_t>(g.h), W = static_cast<std::int64_t>(g.w);
  const auto OH = static_cast<std::int64_t>(g.oh), OW = static_cast<std::int64_t>(g.ow);
  for (std::size_t c = 0; c < g.c; ++c) {
    T* xc = dx + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i) {
      for (std::size_t j = 0; j < g.kw; ++j) {
        const T* row = dcol + ((c * g.kh + i) * g.kw + j) * g.ohw();
        const std::int64_t ioff = static_cast<std::int64_t>(i) * g.dh, joff = static_cast<std::int64_t>(j) * g.dw;
        std::int64_t lo, hi;
        valid_range(W, OW, g.sw, g.pw, joff, lo, hi);
        for (std::int64_t oh = 0; oh < OH; ++oh) {
          const std::int64_t ih = oh * g.sh - g.ph + ioff;
          if (ih < 0 || ih >= H) continue;
          const T* src = row + oh * OW;
          const std::int64_t base = ih * W - g.pw + joff;
          for (std::int64_t ow = lo; ow < hi; ++ow) xc[base + ow * g.sw] += src[ow];
        }
      }
    }
  }
}

/// Images per task in backward: at most 16 chunks, a function of N alone (never of the thread count).
std::size_t backward_grain(std::size_t n) { return std::max<std::size_t>(1, (n + 15) / 16); }

template <class T>
class Conv2dOp final : public Op<T> {
 public:
  explicit Conv2dOp(ConvGeom g) : g_(g) {}
  const char* name() const override { return "conv2d"; }
  GradList<T> backward(const Tensor<T>& gy) override {
    const ConvGeom& g = g_;
    const T* x = this->inputs()[0].value().data();
    const T* w = this->inputs()[1].value().data();
    const T* py = gy.data();
    const bool need_x = this->needs_grad(0), need_w = this->needs_grad(1), need_b = this->needs_grad(2);
    const std::size_t ckk = g.ckk(), ohw = g.ohw(), in_img = g.c * g.h * g.w, out_img = g.f * ohw;
    GradList<T> grads(3);

    Tensor<T> dx;
    if (need_x) dx = zeros<T>({g.n, g.c, g.h, g.w});
    const std::size_t grain = backward_grain(g.n);
    const std::size_t chunks = (g.n + grain - 1) / grain;
    std::vector<T> dw_partial(need_w ? chunks * g.f * ckk : 0, T(0));

    if (need_x || need_w) {
      T* pdx = need_x ? dx.data() : nullptr;
      parallel_for(0, g.n, grain, [&](std::size_t lo, std::size_t hi) {
        std::vector<T> col(g.is_pointwise() ? 0 : ckk * ohw);
        std::vector<T> dcol(need_x && !g.is_pointwise() ? ckk * ohw : 0);
        T* part = need_w ? dw_partial.data() + (lo / grain) * g.f * ckk : nullptr;
        for (std::size_t n = lo; n < hi; ++n) {
          const T* gn = py + n * out_img;
          if (need_w) {
            const T* cn = x + n * in_img;
            if (!g.is_pointwise()) {
              im2col(cn, g, col.data());
              cn = col.data();
            }
            gemm<T>(false, true, g.f, ckk, ohw, T(1), gn, ohw, cn, ohw, T(1), part, ckk);
          }
          if (need_x) {
            if (g.is_pointwise()) {
              gemm<T>(true, false, ckk, ohw, g.f, T(1), w, ckk, gn, ohw, T(0), pdx + n * in_img, ohw);
            } else {
              gemm<T>(true, false, ckk, ohw, g.f, T(1), w, ckk, gn, ohw, T(0), dcol.data(), ohw);
              col2im(dcol.data(), g, pdx + n * in_img);
            }
          }
        }
      });
    }
    if (need_x) grads[0] = std::move(dx);
    if (need_w) {
      Tensor<T> dw = zeros<T>({g.f, g.c, g.kh, g.kw});
      T* pdw = dw.data();
      for (std::size_t k = 0; k < chunks; ++k) {  // fixed chunk order
        const T* part = dw_partial.data() + k * g.f * ckk;
        for (std::size_t i = 0; i < g.f * ckk; ++i) pdw[i] += part[i];
      }
      grads[1] = std::move(dw);
    }
    if (need_b) {
      Tensor<T> db = zeros<T>({g.f});
      T* pdb = db.data();
      for (std::size_t n = 0; n < g.n; ++n)
        for (std::size_t f = 0; f < g.f; ++f) {
          const T* row = py + n * out_img + f * ohw;
          T acc = T(0);
          for (std::size_t p = 0; p < ohw; ++p) acc += row[p];
          pdb[f] += acc;
        }
      grads[2] = std::move(db);
    }
    return grads;
  }

 private:
  ConvGeom g_;
};

std::string pair_str(std::int64_t a, std::int64_t b) { return "(" + std::to_string(a) + ", " + std::to_string(b) + ")"; }

template <class T>
ConvGeom conv_geometry(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b, Size2 stride, Size2 padding,
                       Size2 dilation) {
  if (x.dim() != 4)
    throw ShapeError("conv2d: expected 4-D input [N,C,H,W], but got input of shape " + shape_str(x.shape()));
  if (w.dim() != 4)
    throw ShapeError("conv2d: expected 4-D weight [F,C,KH,KW], but got weight of shape " + shape_str(w.shape()));
  const Shape xs = x.shape(), ws = w.shape();
  if (xs[1] != ws[1])
    throw ShapeError("conv2d: weight of shape " + shape_str(ws) + " expects input with " + std::to_string(ws[1]) +
                     " channels, but got input of shape " + shape_str(xs) + " with " + std::to_string(xs[1]) +
                     " channels");
  if (b.defined() && (b.dim() != 1 || b.shape()[0] != ws[0]))
    throw ShapeError("conv2d: bias of shape " + shape_str(b.shape()) + " does not match weight of shape " +
                     shape_str(ws) + " (expected [" + std::to_string(ws[0]) + "])");
  if (stride.h <= 0 || stride.w <= 0)
    throw ShapeError("conv2d: stride must be positive, got " + pair_str(stride.h, stride.w));
  if (padding.h < 0 || padding.w < 0)
    throw ShapeError("conv2d: padding must be non-negative, got " + pair_str(padding.h, padding.w));
  if (dilation.h <= 0 || dilation.w <= 0)
    throw ShapeError("conv2d: dilation must be positive, got " + pair_str(dilation.h, dilation.w));
  if (ws[2] == 0 || ws[3] == 0) throw ShapeError("conv2d: kernel of shape " + shape_str(ws) + " is empty");
  ConvGeom g{};
  g.n = xs[0]; g.c = xs[1]; g.h = xs[2]; g.w = xs[3]; g.f = ws[0]; g.kh = ws[2]; g.kw = ws[3];
  g.sh = stride.h; g.sw = stride.w; g.ph = padding.h; g.pw = padding.w; g.dh = dilation.h; g.dw = dilation.w;
  const std::int64_t eh = g.dh * (static_cast<std::int64_t>(g.kh) - 1) + 1;
  const std::int64_t ew = g.dw * (static_cast<std::int64_t>(g.kw) - 1) + 1;
  const std::int64_t hp = static_cast<std::int64_t>(g.h) + 2 * g.ph, wp = static_cast<std::int64_t>(g.w) + 2 * g.pw;
  if (eh > hp || ew > wp)
    throw ShapeError("conv2d: padded input size per channel " + pair_str(hp, wp) + " is smaller than the " +
                     (g.dh > 1 || g.dw > 1 ? "dilated " : "") + "kernel size " + pair_str(eh, ew) +
                     " (input " + shape_str(xs) + ", weight " + shape_str(ws) + ")");
  g.oh = static_cast<std::size_t>((hp - eh) / g.sh + 1);
  g.ow = static_cast<std::size_t>((wp - ew) / g.sw + 1);
  return g;
}

}  // namespace

template <class T>
Variable<T> conv2d(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b, Size2 stride, Size2 padding,
                   Size2 dilation) {
  const ConvGeom g = conv_geometry(x, w, b, stride, padding, dilation);
  Tensor<T> y = Tensor<T>::from_shape({g.n, g.f, g.oh, g.ow});
  const T* px = x.value().data();
  const T* pw = w.value().data();
  const T* pb = b.defined() ? b.value().data() : nullptr;
  T* py = y.data();
  const std::size_t ckk = g.ckk(), ohw = g.ohw(), in_img = g.c * g.h * g.w, out_img = g.f * ohw;
  parallel_for(0, g.n, 1, [&](std::size_t lo, std::size_t hi) {
    std::vector<T> col(g.is_pointwise() ? 0 : ckk * ohw);
    for (std::size_t n = lo; n < hi; ++n) {
      T* yn = py + n * out_img;
      for (std::size_t f = 0; f < g.f; ++f) std::fill(yn + f * ohw, yn + (f + 1) * ohw, pb ? pb[f] : T(0));
      const T* cn = px + n * in_img;
      if (!g.is_pointwise()) {
        im2col(cn, g, col.data());
        cn = col.data();
      }
      gemm<T>(false, false, g.f, ohw, ckk, T(1), pw, ckk, cn, ohw, T(1), yn, ohw);
    }
  });
  return record<Conv2dOp<T>>(std::move(y), {x, w, b}, g);
}

#define XG_INSTANTIATE(T)                                                                                 \
  template Variable<T> conv2d(const Variable<T>&, const Variable<T>&, const Variable<T>&, Size2, Size2, \
                              Size2);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
