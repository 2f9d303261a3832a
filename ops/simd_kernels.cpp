// Run-time dispatched float32 kernels (see simd_kernels.h).
#include "ops/simd_kernels.h"

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/dispatch.h"
#include "ops/fixed_width.h"
#include "ops/simd_vectors.h"

namespace xg::ops::simd {

namespace {
/// e^t for t in [-87, 88.72], as Cephes expf: t = n·ln2 + r, e^r by a degree-6 polynomial, 2^n by building the exponent
/// bits. Branch-free (so it vectorises); n reaches 128 only at the top of the range, where the bits are +inf.
inline float exp_poly(float t) {
  const float k = t * 1.44269504088896341f;
  const std::int32_t n = static_cast<std::int32_t>(k + 128.5f) - 128;  // round to nearest: k + 128.5 > 0
  const float fn = static_cast<float>(n);
  float r = t - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::int32_t bits = (n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
}  // namespace

XG_KERNEL void sigmoid_kernel(const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const float v = x[i];
    float t = std::min(std::max(-v, -87.0f), 88.72f);  // e^-v overflows to inf past 88.72: y = 0
    t = t != t ? 0.0f : t;  // NaN: keep the exponent arithmetic defined; the result is replaced below
    const float s = 1.0f / (1.0f + exp_poly(t));
    y[i] = v != v ? v : s;  // NaN stays NaN
  }
}
XG_DISPATCH(sigmoid, (const float* x, float* y, std::size_t n), (x, y, n))

XG_KERNEL void relu_kernel(const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : (x[i] != x[i] ? x[i] : 0.0f);
}
XG_DISPATCH(relu, (const float* x, float* y, std::size_t n), (x, y, n))

XG_KERNEL void relu_backward_kernel(const float* g, const float* y, float* dx, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? g[i] : 0.0f;
}
XG_DISPATCH(relu_backward, (const float* g, const float* y, float* dx, std::size_t n), (g, y, dx, n))

namespace {
// The 2×2 / stride-2 pools work on one [h, w] plane, a row pair at a time. Their row loops are short (12 or 4
// outputs on the MNIST maps), so each kernel runs under detail::with_fixed_width (ops/fixed_width.h) with the width
// as a compile-time constant for those maps. Cells outside every window (an odd last row or column) get a zero
// gradient.
/// Zeroes the cells of a [h, w] plane that no 2×2 window covers.
inline void zero_uncovered(float* dx, std::size_t h, std::size_t w) {
  if (w % 2)
    for (std::size_t r = 0; r < h; ++r) dx[r * w + w - 1] = 0.0f;
  if (h % 2)
    for (std::size_t c = 0; c < w; ++c) dx[(h - 1) * w + c] = 0.0f;
}
}  // namespace

XG_KERNEL void l2_pool_2x2_kernel(const float* x, std::size_t h, std::size_t w_any, float* y) {
  detail::with_fixed_width(w_any, [&](auto kw) {
    const std::size_t w = kw ? kw : w_any;
    const std::size_t oh = h / 2, ow = w / 2;
    for (std::size_t i = 0; i < oh; ++i) {
      const float* r0 = x + 2 * i * w;
      const float* r1 = r0 + w;
      for (std::size_t j = 0; j < ow; ++j) {
        const float a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
        y[i * ow + j] = std::sqrt(((a * a + b * b) + c * c) + d * d);  // the generic kernel's order: row by row
      }
    }
  });
}
XG_DISPATCH(l2_pool_2x2, (const float* x, std::size_t h, std::size_t w_any, float* y), (x, h, w_any, y))

XG_KERNEL void l2_pool_2x2_backward_kernel(const float* x, const float* y, const float* g, std::size_t h, std::size_t w_any,
                                    float* dx) {
  detail::with_fixed_width(w_any, [&](auto kw) {
    const std::size_t w = kw ? kw : w_any;
    const std::size_t oh = h / 2, ow = w / 2;
    for (std::size_t i = 0; i < oh; ++i) {
      const float* r0 = x + 2 * i * w;
      const float* r1 = r0 + w;
      float* d0 = dx + 2 * i * w;
      float* d1 = d0 + w;
      for (std::size_t j = 0; j < ow; ++j) {
        const float yv = y[i * ow + j];
        // An all-zero window has gradient exactly 0. The division comes first and the select after it: written as
        // `yv == 0 ? 0 : g / yv`, GCC 12.2 with -fno-trapping-math vectorises the width-8 loop wrongly for AVX2 and
        // AVX-512 (rows past the first pair come out wrong; caught by the l2_pool2d float32 test of each width).
        const float q = g[i * ow + j] / yv;
        const float s = yv == 0.0f ? 0.0f : q;
        d0[2 * j] = s * r0[2 * j];
        d0[2 * j + 1] = s * r0[2 * j + 1];
        d1[2 * j] = s * r1[2 * j];
        d1[2 * j + 1] = s * r1[2 * j + 1];
      }
    }
  });
  zero_uncovered(dx, h, w_any);
}
XG_DISPATCH(l2_pool_2x2_backward, (const float* x, const float* y, const float* g, std::size_t h, std::size_t w_any, float* dx), (x, y, g, h, w_any, dx))

namespace {
/// Scan order a, b, c, d: a later value wins when larger or NaN (branch-free selects); `arg` only when kArg.
template <bool kArg>
__attribute__((always_inline)) inline void max_pool_2x2_impl(const float* __restrict x, std::size_t h, std::size_t w_any,
                                                             float* __restrict y, std::int32_t* __restrict arg) {
  detail::with_fixed_width(w_any, [&](auto kw) {
    const std::size_t w = kw ? kw : w_any;
    const std::size_t oh = h / 2, ow = w / 2;
    const auto W = static_cast<std::int32_t>(w);
    for (std::size_t i = 0; i < oh; ++i) {
      const float* r0 = x + 2 * i * w;
      const float* r1 = r0 + w;
      const auto base = static_cast<std::int32_t>(2 * i * w);
      for (std::size_t j = 0; j < ow; ++j) {
        const float a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
        const auto col = static_cast<std::int32_t>(2 * j);
        float best = a;
        std::int32_t at = base + col;
        bool win = (b > best) | (b != b);
        best = win ? b : best;
        at = win ? base + col + 1 : at;
        win = (c > best) | (c != c);
        best = win ? c : best;
        at = win ? base + W + col : at;
        win = (d > best) | (d != d);
        best = win ? d : best;
        at = win ? base + W + col + 1 : at;
        y[i * ow + j] = best;
        if constexpr (kArg) arg[i * ow + j] = at;
      }
    }
  });
}
}  // namespace

// Rows 8·m wide (the MNIST maps: 24 and 8) in explicit 8-lane vectors (GCC/Clang vector extensions, compiled per
// instruction set like the rest): 16 input columns of a row pair give 8 outputs, a last 8 give 4. The compiler's own
// vectorisation of the loop above leaves the 4 outputs of an 8-wide row, and the last 4 of a 24-wide one, to scalar
// code with a branch per NaN test (`perf`: the 2×2 forward was 5% of the deep training step). Each lane runs the scan
// above — the same comparisons and selects in the same order — so outputs and argmaxes are the same bits.
XG_KERNEL void load8(const float* p, v8sf& v) { v = load_unaligned<v8sf>(p); }
XG_KERNEL v8si select8(const v8si& m, const v8si& t, const v8si& f) { return (m & t) | (~m & f); }
XG_KERNEL v8sf select8(const v8si& m, const v8sf& t, const v8sf& f) { return (v8sf)select8(m, (v8si)t, (v8si)f); }
#if defined(__clang__)
#define XG_EVENS(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define XG_ODDS(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#else
#define XG_EVENS(a, b) __builtin_shuffle(a, b, v8si{0, 2, 4, 6, 8, 10, 12, 14})
#define XG_ODDS(a, b) __builtin_shuffle(a, b, v8si{1, 3, 5, 7, 9, 11, 13, 15})
#endif

/// The scan a, b, c, d of 8 windows at once; `at` holds a's index, the others are at +1, +W, +W+1.
XG_KERNEL void max_of_windows8(const v8sf& a, const v8sf& b, const v8sf& c, const v8sf& d, const v8si& at,
                               std::int32_t W, v8sf& best, v8si& arg) {
  best = a;
  arg = at;
  v8si win = (b > best) | (b != b);
  best = select8(win, b, best);
  arg = select8(win, at + 1, arg);
  win = (c > best) | (c != c);
  best = select8(win, c, best);
  arg = select8(win, at + W, arg);
  win = (d > best) | (d != d);
  best = select8(win, d, best);
  arg = select8(win, at + W + 1, arg);
}

template <bool kArg>
XG_KERNEL void max_pool_2x2_rows8(const float* __restrict x, std::size_t h, std::size_t w_any, float* __restrict y,
                                  std::int32_t* __restrict arg) {
  detail::with_fixed_width(w_any, [&](auto kw) {
    const std::size_t w = kw ? kw : w_any;
    const std::size_t oh = h / 2, ow = w / 2;
    const auto W = static_cast<std::int32_t>(w);
    const v8si lanes{0, 2, 4, 6, 8, 10, 12, 14}, half{0, 2, 4, 6, 0, 2, 4, 6};
    for (std::size_t i = 0; i < oh; ++i) {
      const float* r0 = x + 2 * i * w;
      const float* r1 = r0 + w;
      const auto base = static_cast<std::int32_t>(2 * i * w);
      float* yr = y + i * ow;
      std::int32_t* ar = kArg ? arg + i * ow : nullptr;
      std::size_t c0 = 0;
      for (; c0 + 16 <= w; c0 += 16) {  // 8 outputs
        v8sf l0, h0, l1, h1;
        load8(r0 + c0, l0);
        load8(r0 + c0 + 8, h0);
        load8(r1 + c0, l1);
        load8(r1 + c0 + 8, h1);
        v8sf best;
        v8si at;
        max_of_windows8(XG_EVENS(l0, h0), XG_ODDS(l0, h0), XG_EVENS(l1, h1), XG_ODDS(l1, h1),
                        lanes + (base + static_cast<std::int32_t>(c0)), W, best, at);
        std::memcpy(yr + c0 / 2, &best, sizeof best);
        if constexpr (kArg) std::memcpy(ar + c0 / 2, &at, sizeof at);
      }
      if (c0 < w) {  // the last 8 columns: 4 outputs (lanes 4-7 repeat lanes 0-3 and are not stored)
        v8sf l0, l1;
        load8(r0 + c0, l0);
        load8(r1 + c0, l1);
        v8sf best;
        v8si at;
        max_of_windows8(XG_EVENS(l0, l0), XG_ODDS(l0, l0), XG_EVENS(l1, l1), XG_ODDS(l1, l1),
                        half + (base + static_cast<std::int32_t>(c0)), W, best, at);
        std::memcpy(yr + c0 / 2, &best, 4 * sizeof(float));
        if constexpr (kArg) std::memcpy(ar + c0 / 2, &at, 4 * sizeof(std::int32_t));
      }
    }
  });
}
#undef XG_EVENS
#undef XG_ODDS

XG_KERNEL void max_pool_2x2_kernel(const float* x, std::size_t h, std::size_t w, float* y, std::int32_t* arg) {
  if (w >= 8 && w % 8 == 0) {
    if (arg) max_pool_2x2_rows8<true>(x, h, w, y, arg);
    else max_pool_2x2_rows8<false>(x, h, w, y, arg);
    return;
  }
  if (arg) max_pool_2x2_impl<true>(x, h, w, y, arg);
  else max_pool_2x2_impl<false>(x, h, w, y, arg);
}
XG_DISPATCH(max_pool_2x2, (const float* x, std::size_t h, std::size_t w, float* y, std::int32_t* arg), (x, h, w, y, arg))

// im2col/col2im of a valid convolution: copies (adds) of runs of OW contiguous values, OW a compile-time constant for
// the widths of the table (ops/width_table.h). With AVX-512 a 24-wide run is one and a half vector moves instead of
// six SSE2 ones. The loops stay loops: GCC would otherwise call memmove for each short run (ops/conv_kernels.h).
#if defined(__GNUC__) && !defined(__clang__)
#define XG_NO_MEMCPY_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#define XG_ALWAYS_INLINE __attribute__((always_inline))
#else
#define XG_ALWAYS_INLINE
#define XG_NO_MEMCPY_CALLS
#endif

/// The walk both share: f(col_run, x_run, ow) for every run — patch row (ci, i, j), output row r — with ow a
/// compile-time constant for the widths of the table. im2col copies x_run into col_run; col2im adds col_run into it.
template <class F>
XG_KERNEL void for_each_valid_run(std::size_t c, std::size_t h, std::size_t w, std::size_t kh, std::size_t kw,
                                  std::size_t oh, std::size_t ow_any, std::size_t ld, F&& f) {
  detail::with_fixed_width(ow_any, [&](auto kow) {
    const std::size_t ow = kow ? kow : ow_any;
    for (std::size_t ci = 0; ci < c; ++ci)
      for (std::size_t i = 0; i < kh; ++i)
        for (std::size_t j = 0; j < kw; ++j)
          for (std::size_t r = 0; r < oh; ++r) f(((ci * kh + i) * kw + j) * ld + r * ow, (ci * h + i + r) * w + j, ow);
  });
}

XG_KERNEL XG_NO_MEMCPY_CALLS void im2col_valid_kernel(const float* x, std::size_t c, std::size_t h, std::size_t w,
                                                      std::size_t kh, std::size_t kw, std::size_t oh, std::size_t ow,
                                                      float* col, std::size_t ld) {
  for_each_valid_run(c, h, w, kh, kw, oh, ow, ld, [&](std::size_t at, std::size_t from, std::size_t n) XG_ALWAYS_INLINE {
    for (std::size_t k = 0; k < n; ++k) col[at + k] = x[from + k];
  });
}
XG_DISPATCH(im2col_valid,
            (const float* x, std::size_t c, std::size_t h, std::size_t w, std::size_t kh, std::size_t kw, std::size_t oh,
             std::size_t ow, float* col, std::size_t ld),
            (x, c, h, w, kh, kw, oh, ow, col, ld))

XG_KERNEL XG_NO_MEMCPY_CALLS void col2im_valid_kernel(const float* dcol, std::size_t c, std::size_t h, std::size_t w,
                                                      std::size_t kh, std::size_t kw, std::size_t oh, std::size_t ow,
                                                      float* dx, std::size_t ld) {
  for_each_valid_run(c, h, w, kh, kw, oh, ow, ld, [&](std::size_t at, std::size_t to, std::size_t n) XG_ALWAYS_INLINE {
    for (std::size_t k = 0; k < n; ++k) dx[to + k] += dcol[at + k];
  });
}
XG_DISPATCH(col2im_valid,
            (const float* dcol, std::size_t c, std::size_t h, std::size_t w, std::size_t kh, std::size_t kw, std::size_t oh,
             std::size_t ow, float* dx, std::size_t ld),
            (dcol, c, h, w, kh, kw, oh, ow, dx, ld))

// im2row / row2im: one patch row per output position, KW contiguous values per (ci, i). The kernel widths 3 and 5 (the
// common ones, and the MNIST networks') are compile-time constants, so each run is a fixed-size vector move.
// Short runs as 4-lane vector moves plus single values (GCC left the 5-value runs to 5 scalar moves: the rows and the
// input might overlap, as far as it knows).
XG_KERNEL void copy_run(const float* src, float* dst, std::size_t n) {
  std::size_t k = 0;
  for (; k + 4 <= n; k += 4) store_unaligned(dst + k, load_unaligned<v4sf>(src + k));
  for (; k < n; ++k) dst[k] = src[k];
}
XG_KERNEL void add_run(const float* src, float* dst, std::size_t n) {
  std::size_t k = 0;
  for (; k + 4 <= n; k += 4) store_unaligned(dst + k, load_unaligned<v4sf>(dst + k) + load_unaligned<v4sf>(src + k));
  for (; k < n; ++k) dst[k] += src[k];
}
template <class F>
XG_KERNEL void with_kernel_width(std::size_t kw, F&& body) {
  if (kw == 5) body(std::integral_constant<std::size_t, 5>{});
  else if (kw == 3) body(std::integral_constant<std::size_t, 3>{});
  else body(std::integral_constant<std::size_t, 0>{});
}
XG_KERNEL XG_NO_MEMCPY_CALLS void im2row_valid_kernel(const float* x, std::size_t c, std::size_t h, std::size_t w,
                                                      std::size_t kh, std::size_t kw, std::size_t oh, std::size_t ow,
                                                      float* rows) {
  with_kernel_width(kw, [&](auto width) XG_ALWAYS_INLINE {
    constexpr std::size_t kKW = decltype(width)::value;
    const std::size_t n = kKW ? kKW : kw;
    float* row = rows;
    for (std::size_t r = 0; r < oh; ++r)
      for (std::size_t q = 0; q < ow; ++q)
        for (std::size_t ci = 0; ci < c; ++ci)
          for (std::size_t i = 0; i < kh; ++i, row += n) {
            copy_run(x + (ci * h + r + i) * w + q, row, n);
          }
  });
}
XG_DISPATCH(im2row_valid,
            (const float* x, std::size_t c, std::size_t h, std::size_t w, std::size_t kh, std::size_t kw, std::size_t oh,
             std::size_t ow, float* rows),
            (x, c, h, w, kh, kw, oh, ow, rows))

XG_KERNEL XG_NO_MEMCPY_CALLS void row2im_valid_kernel(const float* rows, std::size_t c, std::size_t h, std::size_t w,
                                                      std::size_t kh, std::size_t kw, std::size_t oh, std::size_t ow,
                                                      const std::uint8_t* used, float* dx) {
  with_kernel_width(kw, [&](auto width) XG_ALWAYS_INLINE {
    constexpr std::size_t kKW = decltype(width)::value;
    const std::size_t n = kKW ? kKW : kw, ckk = c * kh * n;
    for (std::size_t r = 0; r < oh; ++r)
      for (std::size_t q = 0; q < ow; ++q) {
        if (!used[r * ow + q]) continue;
        const float* row = rows + (r * ow + q) * ckk;
        for (std::size_t ci = 0; ci < c; ++ci)
          for (std::size_t i = 0; i < kh; ++i, row += n) {
            add_run(row, dx + (ci * h + r + i) * w + q, n);
          }
      }
  });
}
XG_DISPATCH(row2im_valid,
            (const float* rows, std::size_t c, std::size_t h, std::size_t w, std::size_t kh, std::size_t kw,
             std::size_t oh, std::size_t ow, const std::uint8_t* used, float* dx),
            (rows, c, h, w, kh, kw, oh, ow, used, dx))

}  // namespace xg::ops::simd
