#pragma once
/// \file max_pool_kernels.h
/// max_pool2d's kernels (internal to ops/), shared by max_pool2d and conv2d_max_pool2d (which pools each block of
/// convolution outputs while it is in cache): the forward over a range of planes, saving the argmax, and the backward
/// scatter of the gradient to the argmax cells.

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "ops/pool2d.h"
#include "ops/simd_kernels.h"

namespace xg::ops::detail {

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

/// dx planes [lo, hi) = 0, then dx[argmax] += g for each output (dx, g, arg: the whole tensors' base pointers). With
/// overlapping windows a cell collects the gradients of every window whose maximum it is.
template <class T>
void max_pool_scatter(const T* g, const std::int32_t* arg, const PoolGeom& pg, std::size_t lo, std::size_t hi, T* dx) {
  const std::size_t plane_in = pg.h * pg.w, plane_out = pg.oh * pg.ow;
  std::fill(dx + lo * plane_in, dx + hi * plane_in, T(0));
  for (std::size_t p = lo; p < hi; ++p) {
    T* dp = dx + p * plane_in;
    const T* gp = g + p * plane_out;
    const std::int32_t* ap = arg + p * plane_out;
    for (std::size_t o = 0; o < plane_out; ++o) dp[ap[o]] += gp[o];
  }
}

}  // namespace xg::ops::detail
