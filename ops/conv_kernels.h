#pragma once
/// \file conv_kernels.h
/// The convolution kernels (internal to ops/), pure functions over raw pointers: the geometry, im2col and its adjoint
/// col2im (shared with conv_transpose2d, whose forward is conv2d's input gradient and whose input gradient is conv2d's
/// forward), and conv2d's forward and the three passes of its backward (output gradient, weight gradient, input
/// gradient) that ops/conv2d.cpp's node calls in turn. Every parallel split is over fixed blocks of images (or fixed
/// rows f), so results are bit-identical at any thread count; BLAS runs on one thread inside each task.

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/linalg.h"
#include "core/parallel.h"
#include "ops/detail.h"
#include "ops/fixed_width.h"
#include "ops/simd_kernels.h"

namespace xg::ops::detail {

struct ConvGeom {
  std::size_t n, c, h, w, f, kh, kw, oh, ow;
  std::int64_t sh, sw, ph, pw, dh, dw;
  std::size_t block;  ///< images per GEMM block
  bool valid() const { return sh == 1 && sw == 1 && ph == 0 && pw == 0 && dh == 1 && dw == 1; }
  std::size_t ckk() const { return c * kh * kw; }
  std::size_t ohw() const { return oh * ow; }
  std::size_t blocks() const { return (n + block - 1) / block; }
  /// First image and image count of block `b`.
  std::size_t first(std::size_t b) const { return b * block; }
  std::size_t count(std::size_t b) const { return std::min(block, n - b * block); }
};

/// Images per block: as many as keep a block's col within 128k values (512 KiB of floats: it stays in L2 between
/// im2col and the GEMM that reads it), at most a quarter of the batch (so the blocks spread over the cores) and 16.
/// Images with 256 or more output positions go one per block. A function of the shape only.
inline std::size_t block_size(std::size_t n, std::size_t ckk, std::size_t ohw) {
  if (ohw >= 256) return 1;  // large maps: one image already gives BLAS enough columns, and writes straight into y
  const std::size_t by_cache = (std::size_t(1) << 17) / std::max<std::size_t>(1, ckk * ohw);
  const std::size_t by_batch = (n + 3) / 4;
  return std::clamp<std::size_t>(std::min(by_cache, by_batch), 1, 16);
}

/// First and one-past-last output column whose input column ow·s - p + j·d lies inside [0, extent).
inline void valid_range(std::int64_t extent, std::int64_t out, std::int64_t s, std::int64_t p, std::int64_t off,
                 std::int64_t& lo, std::int64_t& hi) {
  // need 0 <= o*s - p + off < extent
  const std::int64_t a = p - off;  // o*s >= a
  lo = a <= 0 ? 0 : (a - 1) / s + 1;  // ⌈a / s⌉ without forming a + s − 1 (a stride of 2^63 − 1 overflowed it)
  const std::int64_t b = extent - 1 + p - off;  // o*s <= b
  hi = b < 0 ? 0 : b / s + 1;
  lo = std::min(lo, out);
  hi = std::max(lo, std::min(hi, out));
}

// Rows of im2col are short (OW elements: 8 to 24 here). GCC would turn the copy and zero loops below into memmove and
// memset calls, whose call overhead then dominates (measured: 19% of a 20->40 forward); keep them as loops.
#if defined(__GNUC__) && !defined(__clang__)
#define XG_PLAIN_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define XG_PLAIN_LOOPS
#endif

/// Calls f(col_offset, image_offset) for each run a valid convolution's im2col copies (stride 1, no padding, no
/// dilation): patch row (c, i, j), output row oh, is the OW contiguous image values from image_offset on. kOW > 0 fixes
/// OW at compile time (0: g.ow at run time). im2col and col2im are this one walk with opposite data movement.
template <std::size_t kOW, class F>
void for_each_valid_run(const ConvGeom& g, std::size_t ld, F&& f) {
  const std::size_t ow_n = kOW ? kOW : g.ow;
  for (std::size_t c = 0; c < g.c; ++c)
    for (std::size_t i = 0; i < g.kh; ++i)
      for (std::size_t j = 0; j < g.kw; ++j)
        for (std::size_t oh = 0; oh < g.oh; ++oh)
          f(((c * g.kh + i) * g.kw + j) * ld + oh * ow_n, (c * g.h + i + oh) * g.w + j);
}

/// Writes image x's patches into col (rows C·KH·KW, row stride `ld`, OH·OW columns from the pointer on).
template <class T>
XG_PLAIN_LOOPS void im2col(const T* x, const ConvGeom& g, T* col, std::size_t ld) {
  if constexpr (std::is_same_v<T, float>) {
    if (g.valid()) {  // float32: the kernel compiled for the CPU's vector width (ops/simd_kernels.h)
      simd::im2col_valid(x, g.c, g.h, g.w, g.kh, g.kw, g.oh, g.ow, col, ld);
      return;
    }
  }
  if (g.valid()) {  // the common case: no bounds to check
    with_fixed_width(g.ow, [&](auto width) {
      constexpr std::size_t kOW = decltype(width)::value;
      const std::size_t n = kOW ? kOW : g.ow;
      for_each_valid_run<kOW>(g, ld, [&](std::size_t at, std::size_t from) {
        for (std::size_t k = 0; k < n; ++k) col[at + k] = x[from + k];
      });
    });
    return;
  }
  const auto H = static_cast<std::int64_t>(g.h), W = static_cast<std::int64_t>(g.w);
  const auto OH = static_cast<std::int64_t>(g.oh), OW = static_cast<std::int64_t>(g.ow);
  for (std::size_t c = 0; c < g.c; ++c) {
    const T* xc = x + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i) {
      for (std::size_t j = 0; j < g.kw; ++j) {
        T* row = col + ((c * g.kh + i) * g.kw + j) * ld;
        const std::int64_t ioff = static_cast<std::int64_t>(i) * g.dh, joff = static_cast<std::int64_t>(j) * g.dw;
        std::int64_t lo, hi;
        valid_range(W, OW, g.sw, g.pw, joff, lo, hi);
        for (std::int64_t oh = 0; oh < OH; ++oh) {
          T* dst = row + oh * OW;
          const std::int64_t ih = oh * g.sh - g.ph + ioff;
          if (ih < 0 || ih >= H) {
            for (std::int64_t ow = 0; ow < OW; ++ow) dst[ow] = T(0);
            continue;
          }
          const std::int64_t base = ih * W - g.pw + joff;  // input index of output column 0
          for (std::int64_t ow = 0; ow < lo; ++ow) dst[ow] = T(0);
          if (g.sw == 1) {
            for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] = xc[base + ow];
          } else {
            for (std::int64_t ow = lo; ow < hi; ++ow) dst[ow] = xc[base + ow * g.sw];
          }
          for (std::int64_t ow = hi; ow < OW; ++ow) dst[ow] = T(0);
        }
      }
    }
  }
}

/// dx += col2im(dcol): the adjoint of im2col (same layout and row stride `ld`). dx must be zeroed by the caller.
template <class T>
XG_PLAIN_LOOPS void col2im(const T* dcol, const ConvGeom& g, T* dx, std::size_t ld) {
  if constexpr (std::is_same_v<T, float>) {
    if (g.valid()) {
      simd::col2im_valid(dcol, g.c, g.h, g.w, g.kh, g.kw, g.oh, g.ow, dx, ld);
      return;
    }
  }
  if (g.valid()) {
    with_fixed_width(g.ow, [&](auto width) {
      constexpr std::size_t kOW = decltype(width)::value;
      const std::size_t n = kOW ? kOW : g.ow;
      for_each_valid_run<kOW>(g, ld, [&](std::size_t at, std::size_t to) {
        for (std::size_t k = 0; k < n; ++k) dx[to + k] += dcol[at + k];
      });
    });
    return;
  }
  const auto H = static_cast<std::int64_t>(g.h), W = static_cast<std::int64_t>(g.w);
  const auto OH = static_cast<std::int64_t>(g.oh), OW = static_cast<std::int64_t>(g.ow);
  for (std::size_t c = 0; c < g.c; ++c) {
    T* xc = dx + c * g.h * g.w;
    for (std::size_t i = 0; i < g.kh; ++i) {
      for (std::size_t j = 0; j < g.kw; ++j) {
        const T* row = dcol + ((c * g.kh + i) * g.kw + j) * ld;
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

/// Writes the patches of block `b`'s images into col (rows C·KH·KW, row stride `ld`, image k at column k·OH·OW).
template <class T>
void block_cols(const T* x, const ConvGeom& g, std::size_t b, T* col, std::size_t ld) {
  for (std::size_t k = 0; k < g.count(b); ++k) im2col(x + (g.first(b) + k) * g.c * g.h * g.w, g, col + k * g.ohw(), ld);
}

/// conv2d's forward: y [N,F,OH,OW] = act(w [F,C·KH·KW] · im2col(x) + b) per block of images, each block's im2col in
/// per-thread scratch (it stays in L2 between im2col and the GEMM; nothing is kept for backward). With `y` null the
/// output is not stored: each block's activated output [nb, F, OH, OW] goes to per-thread scratch instead, and
/// `sink(n0, nb, out)` takes it while it is in cache (conv2d_max_pool2d pools it there; the sink must not call
/// parallel_for nor use scratch slots 0–2). The values are the same either way. Like the im2col scratch, slot 2 stays
/// allocated per thread at its largest size (one block's output).
template <class T, class Sink>
void conv_forward_blocks(const ConvGeom& g, const T* x, const T* w, const T* bias, Activation fused, T* y, Sink&& sink) {
  const std::size_t ckk = g.ckk(), ohw = g.ohw(), out_img = g.f * ohw;
  parallel_for(0, g.blocks(), 1, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t blk = lo; blk < hi; ++blk) {
      const std::size_t n0 = g.first(blk), nb = g.count(blk), ld = nb * ohw;
      T* col = scratch<T>(0, ckk * ld);
      block_cols(x, g, blk, col, ld);
      T* dst = y ? y + n0 * out_img : scratch<T>(2, nb * out_img);
      if (nb == 1) {  // straight into image n0's [F, OH·OW] slice
        for (std::size_t f = 0; f < g.f; ++f) std::fill(dst + f * ohw, dst + (f + 1) * ohw, bias ? bias[f] : T(0));
        gemm<T>(false, false, g.f, ohw, ckk, T(1), w, ckk, col, ld, T(1), dst, ohw);
      } else {
        T* out = scratch<T>(1, g.f * ld);
        gemm<T>(false, false, g.f, ld, ckk, T(1), w, ckk, col, ld, T(0), out, ld);
        for (std::size_t k = 0; k < nb; ++k)
          for (std::size_t f = 0; f < g.f; ++f) {
            const T* src = out + f * ld + k * ohw;
            T* d = dst + k * out_img + f * ohw;
            const T b = bias ? bias[f] : T(0);
            for (std::size_t p = 0; p < ohw; ++p) d[p] = src[p] + b;
          }
      }
      activation_forward(fused, dst, dst, nb * out_img);
      if (!y) sink(n0, nb, static_cast<const T*>(dst));
    }
  });
}

/// conv2d's forward into y (conv_forward_blocks with the output stored).
template <class T>
void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, Activation fused, T* y) {
  conv_forward_blocks(g, x, w, bias, fused, y, [](std::size_t, std::size_t, const T*) {});
}

/// Backward pass 1, over g [N,F,OH,OW] once: turns g into g·act'(y) for a fused activation (y: the forward's output,
/// null for none) and, when `regroup`, into block-major order ([F, nb·OH·OW] per block, block b at offset
/// first(b)·F·OH·OW) — both into `gb` (N·F·OH·OW values; untouched when neither applies) — and sums db[f] on the way
/// (db null: no bias gradient). Parallel over filters: each task owns its rows f of gb and its db[f].
template <class T>
void conv_output_grad(const ConvGeom& g, Activation fused, const T* gy, const T* y, bool regroup, T* gb, T* db) {
  const std::size_t ohw = g.ohw(), out_img = g.f * ohw;
  const bool copy = regroup || y;
  if (!copy && !db) return;
  parallel_for(0, g.f, 1, [&](std::size_t f0, std::size_t f1) {
    for (std::size_t f = f0; f < f1; ++f)
      for (std::size_t n = 0; n < g.n; ++n) {
        const std::size_t at = n * out_img + f * ohw;
        const T* src = gy + at;
        if (copy) {
          const std::size_t b = n / g.block, n0 = g.first(b), ld = g.count(b) * ohw;
          T* dst = gb + (regroup ? n0 * out_img + f * ld + (n - n0) * ohw : at);
          if (y) activation_backward(fused, src, y + at, dst, ohw);
          else std::copy_n(src, ohw, dst);
          src = dst;
        }
        if (db) db[f] += sum_contiguous(src, ohw);
      }
  });
}

/// Blocks per weight-gradient chunk: about 8 chunks over the batch (a function of the shape only).
inline std::size_t weight_grad_chunk(std::size_t blocks) { return std::max<std::size_t>(1, (blocks + 7) / 8); }

/// Backward pass 2: dw [F, C·KH·KW] = Σ_blocks g_block · col_blockᵀ, with g_block = block_grad(b) ([F, nb·OH·OW],
/// pass 1's layout: a pointer into the regrouped gradient, or a block the caller builds in scratch slot 3) and
/// col_block = im2col of the block's images of x, rebuilt here into per-thread scratch. (Rebuilding is cheaper than
/// keeping: measured on the 20→40 layer at batch 64, one thread, writing every block's cols to a kept 8 MB buffer in
/// the forward and reading them back here cost 0.8 ms each way, against 0.2 ms for a second im2col into L2.) Each
/// fixed chunk of blocks accumulates its own partial sum; the partials are added in chunk order.
template <class T, class BlockGrad>
void conv_weight_grad_blocks(const ConvGeom& g, BlockGrad&& block_grad, const T* x, T* dw) {
  const std::size_t ckk = g.ckk(), ohw = g.ohw();
  const std::size_t chunk = weight_grad_chunk(g.blocks()), chunks = (g.blocks() + chunk - 1) / chunk;
  Buffer<T> partial(chunks * g.f * ckk);
  parallel_for(0, g.blocks(), chunk, [&](std::size_t lo, std::size_t hi) {
    T* part = partial.data() + (lo / chunk) * g.f * ckk;
    for (std::size_t b = lo; b < hi; ++b) {
      const std::size_t ld = g.count(b) * ohw;
      const T* gb = block_grad(b);
      T* col = scratch<T>(0, ckk * ld);
      block_cols(x, g, b, col, ld);
      gemm<T>(false, true, g.f, ckk, ld, T(1), gb, ld, col, ld, b == lo ? T(0) : T(1), part, ckk);
    }
  });
  std::fill(dw, dw + g.f * ckk, T(0));
  for (std::size_t k = 0; k < chunks; ++k)
    for (std::size_t i = 0; i < g.f * ckk; ++i) dw[i] += partial.data()[k * g.f * ckk + i];
}

/// conv_weight_grad_blocks over a stored gradient: block b at `gsrc` + first(b)·F·OH·OW.
template <class T>
void conv_weight_grad(const ConvGeom& g, const T* gsrc, const T* x, T* dw) {
  conv_weight_grad_blocks(g, [&](std::size_t b) { return gsrc + g.first(b) * g.f * g.ohw(); }, x, dw);
}

/// Backward pass 3: dx [N,C,H,W] = col2im(wᵀ · g_block) per block (g_block = block_grad(b), as in pass 2), each task
/// zeroing and writing only its own block's images.
template <class T, class BlockGrad>
void conv_input_grad_blocks(const ConvGeom& g, const T* w, BlockGrad&& block_grad, T* dx) {
  const std::size_t ckk = g.ckk(), ohw = g.ohw(), in_img = g.c * g.h * g.w;
  parallel_for(0, g.blocks(), 1, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t b = lo; b < hi; ++b) {
      const std::size_t n0 = g.first(b), nb = g.count(b), ld = nb * ohw;
      std::fill(dx + n0 * in_img, dx + (n0 + nb) * in_img, T(0));
      const T* gb = block_grad(b);
      T* dcol = scratch<T>(0, ckk * ld);
      gemm<T>(true, false, ckk, ld, g.f, T(1), w, ckk, gb, ld, T(0), dcol, ld);
      for (std::size_t k = 0; k < nb; ++k) col2im(dcol + k * ohw, g, dx + (n0 + k) * in_img, ld);
    }
  });
}

/// conv_input_grad_blocks over a stored gradient (as conv_weight_grad).
template <class T>
void conv_input_grad(const ConvGeom& g, const T* w, const T* gsrc, T* dx) {
  conv_input_grad_blocks(g, w, [&](std::size_t b) { return gsrc + g.first(b) * g.f * g.ohw(); }, dx);
}

// ---- conv2d_max_pool2d's backward from the pooled gradient, for long patches (sparse in the output gradient) ----
//
// Behind a max-pool with non-overlapping windows the convolution's output gradient D is zero except at one cell per
// window (and a ReLU zeroes about half of those), so a dense GEMM spends most of its multiply-adds on zeros: for the
// deep network's 20→40 layer 1/4 of D's cells are argmaxes. These passes touch only the argmax cells with a non-zero
// gradient t: dW[f,:] += t · patch(p) and dpatch(p) += t · W[f,:], each over a whole contiguous patch (C·KH·KW values,
// the rows of im2row below). They add the same products as the dense passes, in another order (rounding may differ
// in the last place); a cell the pool did not select adds nothing (the dense product adds 0·x, NaN for x = ±inf/NaN).

/// Patches of one image as rows: rows [OH·OW, C·KH·KW], row p = the input values under output position p (0 outside
/// the input) — im2col transposed, so that a position's patch is contiguous.
template <class T>
XG_PLAIN_LOOPS void im2row(const T* x, const ConvGeom& g, T* rows) {
  const auto H = static_cast<std::int64_t>(g.h), W = static_cast<std::int64_t>(g.w);
  const std::size_t ckk = g.ckk();
  if constexpr (std::is_same_v<T, float>) {
    if (g.valid()) {  // float32: the kernel compiled for the CPU's vector width (ops/simd_kernels.h)
      simd::im2row_valid(x, g.c, g.h, g.w, g.kh, g.kw, g.oh, g.ow, rows);
      return;
    }
  }
  if (g.valid()) {  // every patch row is KW contiguous input values
    for (std::size_t oh = 0; oh < g.oh; ++oh)
      for (std::size_t ow = 0; ow < g.ow; ++ow) {
        T* row = rows + (oh * g.ow + ow) * ckk;
        for (std::size_t c = 0; c < g.c; ++c)
          for (std::size_t i = 0; i < g.kh; ++i) {
            const T* src = x + (c * g.h + oh + i) * g.w + ow;
            T* dst = row + (c * g.kh + i) * g.kw;
            for (std::size_t j = 0; j < g.kw; ++j) dst[j] = src[j];
          }
      }
    return;
  }
  for (std::size_t oh = 0; oh < g.oh; ++oh)
    for (std::size_t ow = 0; ow < g.ow; ++ow) {
      T* row = rows + (oh * g.ow + ow) * ckk;
      const std::int64_t h0 = static_cast<std::int64_t>(oh) * g.sh - g.ph, w0 = static_cast<std::int64_t>(ow) * g.sw - g.pw;
      for (std::size_t c = 0; c < g.c; ++c) {
        const T* xc = x + c * g.h * g.w;
        for (std::size_t i = 0; i < g.kh; ++i) {
          T* dst = row + (c * g.kh + i) * g.kw;
          const std::int64_t ih = h0 + static_cast<std::int64_t>(i) * g.dh;
          if (ih < 0 || ih >= H) {
            for (std::size_t j = 0; j < g.kw; ++j) dst[j] = T(0);
            continue;
          }
          const T* src = xc + ih * W;
          for (std::size_t j = 0; j < g.kw; ++j) {
            const std::int64_t iw = w0 + static_cast<std::int64_t>(j) * g.dw;
            dst[j] = iw >= 0 && iw < W ? src[iw] : T(0);
          }
        }
      }
    }
}

/// The adjoint of im2row for the positions with used[p] != 0 (the others' rows are not read): dx += row2im(rows).
template <class T>
XG_PLAIN_LOOPS void row2im(const T* rows, const ConvGeom& g, const std::uint8_t* used, T* dx) {
  const auto H = static_cast<std::int64_t>(g.h), W = static_cast<std::int64_t>(g.w);
  const std::size_t ckk = g.ckk();
  if constexpr (std::is_same_v<T, float>) {
    if (g.valid()) {
      simd::row2im_valid(rows, g.c, g.h, g.w, g.kh, g.kw, g.oh, g.ow, used, dx);
      return;
    }
  }
  if (g.valid()) {
    for (std::size_t oh = 0; oh < g.oh; ++oh)
      for (std::size_t ow = 0; ow < g.ow; ++ow) {
        if (!used[oh * g.ow + ow]) continue;
        const T* row = rows + (oh * g.ow + ow) * ckk;
        for (std::size_t c = 0; c < g.c; ++c)
          for (std::size_t i = 0; i < g.kh; ++i) {
            const T* src = row + (c * g.kh + i) * g.kw;
            T* dst = dx + (c * g.h + oh + i) * g.w + ow;
            for (std::size_t j = 0; j < g.kw; ++j) dst[j] += src[j];
          }
      }
    return;
  }
  for (std::size_t oh = 0; oh < g.oh; ++oh)
    for (std::size_t ow = 0; ow < g.ow; ++ow) {
      if (!used[oh * g.ow + ow]) continue;
      const T* row = rows + (oh * g.ow + ow) * ckk;
      const std::int64_t h0 = static_cast<std::int64_t>(oh) * g.sh - g.ph, w0 = static_cast<std::int64_t>(ow) * g.sw - g.pw;
      for (std::size_t c = 0; c < g.c; ++c) {
        T* xc = dx + c * g.h * g.w;
        for (std::size_t i = 0; i < g.kh; ++i) {
          const std::int64_t ih = h0 + static_cast<std::int64_t>(i) * g.dh;
          if (ih < 0 || ih >= H) continue;
          const T* src = row + (c * g.kh + i) * g.kw;
          T* dst = xc + ih * W;
          for (std::size_t j = 0; j < g.kw; ++j) {
            const std::int64_t iw = w0 + static_cast<std::int64_t>(j) * g.dw;
            if (iw >= 0 && iw < W) dst[iw] += src[j];
          }
        }
      }
    }
}

/// out[0, len) = (accumulate ? out : 0) + Σ_j d[j] · src[idx[j]·len, +len), j in order (float: the dispatched kernel
/// of ops/simd_kernels.h).
template <class T>
void sparse_rows_axpy(const T* d, const std::int32_t* idx, std::size_t count, const T* src, std::size_t len, T* out,
                      bool accumulate) {
  if constexpr (std::is_same_v<T, float>) {
    simd::sparse_rows_axpy(d, idx, count, src, len, out, accumulate);
  } else {
    if (!accumulate) std::fill(out, out + len, T(0));
    for (std::size_t j = 0; j < count; ++j) {
      const T* row = src + static_cast<std::size_t>(idx[j]) * len;
      for (std::size_t k = 0; k < len; ++k) out[k] += d[j] * row[k];
    }
  }
}

/// The pooled gradient of conv2d_max_pool2d: t [N, F, cells] (act'(p)·g at each window's argmax) and the argmax
/// arg [N, F, cells] (the cell's position in its [OH, OW] output plane).
template <class T>
struct PooledGrad {
  const T* t;
  const std::int32_t* arg;
  std::size_t cells;  ///< pooled cells per (n, f) plane
};

/// dw [F, C·KH·KW] = Σ_{n, f, cells with t ≠ 0} t · patch(n, argmax): per fixed chunk of images (weight_grad_chunk over
/// images) into its own partial sum, image by image, each f's cells in order; the partials added in chunk order.
template <class T>
void conv_weight_grad_sparse(const ConvGeom& g, const PooledGrad<T>& pgrad, const T* x, T* dw) {
  const std::size_t ckk = g.ckk(), ohw = g.ohw(), in_img = g.c * g.h * g.w, fk = g.f * ckk;
  const std::size_t chunk = weight_grad_chunk(g.n), chunks = (g.n + chunk - 1) / chunk;
  Buffer<T> partial(chunks * fk);
  parallel_for(0, g.n, chunk, [&](std::size_t lo, std::size_t hi) {
    T* part = partial.data() + (lo / chunk) * fk;
    std::fill(part, part + fk, T(0));
    T* rows = scratch<T>(0, ohw * ckk);
    T* d = scratch<T>(1, pgrad.cells);
    std::int32_t* idx = scratch<std::int32_t>(0, pgrad.cells);
    for (std::size_t n = lo; n < hi; ++n) {
      im2row(x + n * in_img, g, rows);
      for (std::size_t f = 0; f < g.f; ++f) {
        const std::size_t at = (n * g.f + f) * pgrad.cells;
        std::size_t count = 0;
        for (std::size_t q = 0; q < pgrad.cells; ++q)
          if (pgrad.t[at + q] != T(0)) {  // NaN is kept
            d[count] = pgrad.t[at + q];
            idx[count++] = pgrad.arg[at + q];
          }
        sparse_rows_axpy(d, idx, count, rows, ckk, part + f * ckk, true);
      }
    }
  });
  std::fill(dw, dw + fk, T(0));
  for (std::size_t k = 0; k < chunks; ++k)
    for (std::size_t i = 0; i < fk; ++i) dw[i] += partial.data()[k * fk + i];
}

/// dx [N, C, H, W] = row2im(dpatch), dpatch(p) = Σ_{f: t ≠ 0 at p} t · w[f, :] (the filters in order), per image
/// (each task writes only its own images); positions no window selected are skipped.
template <class T>
void conv_input_grad_sparse(const ConvGeom& g, const PooledGrad<T>& pgrad, const T* w, T* dx) {
  const std::size_t ckk = g.ckk(), ohw = g.ohw(), in_img = g.c * g.h * g.w, nnz_max = g.f * pgrad.cells;
  parallel_for(0, g.n, 1, [&](std::size_t lo, std::size_t hi) {
    T* rows = scratch<T>(0, ohw * ckk);
    T* d = scratch<T>(1, nnz_max);
    std::int32_t* filt = scratch<std::int32_t>(0, nnz_max);
    std::int32_t* start = scratch<std::int32_t>(1, ohw + 1);
    std::uint8_t* used = scratch<std::uint8_t>(0, ohw);
    for (std::size_t n = lo; n < hi; ++n) {
      // Group the non-zero cells by output position (counting sort; within a position, filters in order).
      std::fill(start, start + ohw + 1, 0);
      const std::size_t base = n * g.f * pgrad.cells;
      for (std::size_t i = 0; i < nnz_max; ++i)
        if (pgrad.t[base + i] != T(0)) ++start[pgrad.arg[base + i] + 1];
      for (std::size_t p = 0; p < ohw; ++p) start[p + 1] += start[p];
      for (std::size_t f = 0; f < g.f; ++f)
        for (std::size_t q = 0; q < pgrad.cells; ++q) {
          const std::size_t i = base + f * pgrad.cells + q;
          if (pgrad.t[i] == T(0)) continue;
          const std::int32_t slot = start[pgrad.arg[i]]++;
          d[slot] = pgrad.t[i];
          filt[slot] = static_cast<std::int32_t>(f);
        }
      // start[p] is now the end of position p's group and start[p - 1] its beginning.
      for (std::size_t p = 0; p < ohw; ++p) {
        const std::int32_t b = p ? start[p - 1] : 0, e = start[p];
        used[p] = e > b;
        if (e == b) continue;
        sparse_rows_axpy(d + b, filt + b, static_cast<std::size_t>(e - b), w, ckk, rows + p * ckk, false);
      }
      T* dxn = dx + n * in_img;
      std::fill(dxn, dxn + in_img, T(0));
      row2im(rows, g, used, dxn);
    }
  });
}

/// Patches at least this long take the sparse passes in conv2d_max_pool2d's backward (a shorter row vectorises too
/// poorly to beat the dense GEMM: the MNIST first layers, 25 values, stay dense).
inline constexpr std::size_t kSparsePatchMin = 64;

}  // namespace xg::ops::detail
