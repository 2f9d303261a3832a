#pragma once
/// \file pool2d.h
/// Window geometry and argument checks shared by max_pool2d, l2_pool2d and avg_pool2d (internal to ops/).

#include <algorithm>
#include <optional>
#include <string>

#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops::detail {

struct PoolGeom {
  std::size_t n, c, h, w, kh, kw, oh, ow;
  std::int64_t sh, sw, ph, pw;
  std::size_t planes() const { return n * c; }
  /// The 2×2, stride 2, unpadded pool of the MNIST networks, which has dispatched float32 kernels.
  bool is_2x2_stride2() const { return kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0; }
  /// Planes per task: about 16k input elements, a function of the shape only.
  std::size_t grain() const { return std::max<std::size_t>(1, 16384 / std::max<std::size_t>(1, h * w)); }
  /// The window of output (oh, ow) clipped to the input: rows [h0, h1), cols [w0, w1).
  void window(std::size_t i, std::size_t j, std::int64_t& h0, std::int64_t& h1, std::int64_t& w0, std::int64_t& w1) const {
    h0 = static_cast<std::int64_t>(i) * sh - ph;
    w0 = static_cast<std::int64_t>(j) * sw - pw;
    h1 = std::min<std::int64_t>(h0 + static_cast<std::int64_t>(kh), static_cast<std::int64_t>(h));
    w1 = std::min<std::int64_t>(w0 + static_cast<std::int64_t>(kw), static_cast<std::int64_t>(w));
    h0 = std::max<std::int64_t>(h0, 0);
    w0 = std::max<std::int64_t>(w0, 0);
  }
};

/// One output of a pool: its plane (n·C + c), its flat output index, and its window clipped to the input.
struct Window {
  std::size_t plane, out;
  std::int64_t h0, h1, w0, w1;
  std::size_t base;    ///< the flat index of the plane's first input cell
  std::int64_t width;  ///< the input's width
  /// Calls f(k) with the flat input index k of every cell of the window, row by row.
  template <class F>
  void cells(F&& f) const {
    for (std::int64_t r = h0; r < h1; ++r)
      for (std::int64_t c = w0; c < w1; ++c) f(base + static_cast<std::size_t>(r * width + c));
  }
};

/// Calls f(window) for every output of every plane, in parallel over fixed chunks of planes: each task owns whole
/// planes (of the output, and of the input gradient in backward), so writes never cross tasks.
template <class F>
void for_each_window(const PoolGeom& g, F&& f) {
  parallel_for(0, g.planes(), g.grain(), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t p = lo; p < hi; ++p)
      for (std::size_t i = 0; i < g.oh; ++i)
        for (std::size_t j = 0; j < g.ow; ++j) {
          Window w{p, (p * g.oh + i) * g.ow + j, 0, 0, 0, 0, p * g.h * g.w, static_cast<std::int64_t>(g.w)};
          g.window(i, j, w.h0, w.h1, w.w0, w.w1);
          f(w);
        }
  });
}

/// A pool's forward: y [N,C,OH,OW] with y[w.out] = f(w) for every window (f reads the input through w.cells).
template <class T, class F>
Tensor<T> pool_forward(const PoolGeom& g, F&& f) {
  Tensor<T> y = xg::empty<T>({g.n, g.c, g.oh, g.ow});
  T* py = y.data();
  for_each_window(g, [&](const Window& w) { py[w.out] = f(w); });
  return y;
}

/// A pool's backward: dx [N,C,H,W], zero, then f(w, dx_data) for every window, which adds to the window's cells.
template <class T, class F>
Tensor<T> pool_backward(const PoolGeom& g, F&& f) {
  Tensor<T> dx = zeros<T>({g.n, g.c, g.h, g.w});
  T* pd = dx.data();
  for_each_window(g, [&](const Window& w) { f(w, pd); });
  return dx;
}

/// Checks a pooling call and computes its geometry; errors name `op` and the offending values (as PyTorch's do).
template <class T>
PoolGeom pool_geometry(const char* op, const Variable<T>& x, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  const std::string name(op);
  if (x.dim() != 4)
    throw ShapeError(name + ": expected 4-D input [N,C,H,W], but got input of shape " + shape_str(x.shape()));
  const Size2 s = stride.value_or(kernel);
  if (kernel.h <= 0 || kernel.w <= 0) throw ShapeError(name + ": kernel size must be positive, got " + to_string(kernel));
  if (s.h <= 0 || s.w <= 0) throw ShapeError(name + ": stride must be positive, got " + to_string(s));
  if (padding.h < 0 || padding.w < 0) throw ShapeError(name + ": padding must be non-negative, got " + to_string(padding));
  if (padding.h > kernel.h / 2 || padding.w > kernel.w / 2)
    throw ShapeError(name + ": pad should be at most half of kernel size, but got pad=" + to_string(padding) +
                     " and kernel_size=" + to_string(kernel));
  const Shape xs = x.shape();
  PoolGeom g{};
  g.n = xs[0]; g.c = xs[1]; g.h = xs[2]; g.w = xs[3];
  g.kh = static_cast<std::size_t>(kernel.h); g.kw = static_cast<std::size_t>(kernel.w);
  g.sh = s.h; g.sw = s.w; g.ph = padding.h; g.pw = padding.w;
  // Checked: padding is at most kernel/2, but both come from the user and may be near 2^63.
  const std::int64_t hp = checked_add(op, "height + 2 × padding", static_cast<std::int64_t>(g.h), checked_mul(op, "2 × padding", std::int64_t(2), g.ph)) - kernel.h;
  const std::int64_t wp = checked_add(op, "width + 2 × padding", static_cast<std::int64_t>(g.w), checked_mul(op, "2 × padding", std::int64_t(2), g.pw)) - kernel.w;
  if (hp < 0 || wp < 0)
    throw ShapeError(name + ": given input of shape " + shape_str(xs) + ", kernel " + to_string(kernel) + " and padding " +
                     to_string(padding) + ", the calculated output size is empty: output size is too small");
  g.oh = static_cast<std::size_t>(hp / g.sh + 1);
  g.ow = static_cast<std::size_t>(wp / g.sw + 1);
  checked_numel<T>(op, {g.n, g.c, g.oh, g.ow});
  return g;
}

}  // namespace xg::ops::detail
