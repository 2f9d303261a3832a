#pragma once
/// \file conv_kernels.h
/// The convolution kernels shared by conv2d and conv_transpose2d (internal to ops/): the geometry, im2col and its
/// adjoint col2im, over raw pointers. conv_transpose2d's forward is conv2d's input gradient (col2im of wᵀ·x) and its
/// input gradient is conv2d's forward (w·im2col(g)), so both ops use these two walks.

#include <algorithm>
#include <cstdint>

#include "ops/detail.h"
#include "ops/fixed_width.h"

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
  lo = a <= 0 ? 0 : (a + s - 1) / s;
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


}  // namespace xg::ops::detail
