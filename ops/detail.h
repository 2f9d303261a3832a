#pragma once
/// \file detail.h
/// Helpers shared by op files (not part of the public API, but installed so out-of-tree ops may use them).

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <limits>
#include <utility>
#include <memory>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/parallel.h"
#include "core/tensor.h"
#include "core/variable.h"
#include "ops/ops.h"

namespace xg::ops::detail {

/// Applies `M(T)` for every scalar type xgrad instantiates: use at the end of an op file.
#define XG_FOR_EACH_REAL(M) M(float) M(double)
/// Explicitly instantiates the op `name` for float and double from its declaration in ops/ops.h, so that an op's
/// signature is written twice (declaration and definition), not three times. For a name with one template only:
/// overloaded templates (sum, max) list their instantiations with XG_FOR_EACH_REAL.
#define XG_INSTANTIATE_OP(name)                 \
  template decltype(name<float>) name<float>;   \
  template decltype(name<double>) name<double>;

/// Checked shape arithmetic: `a·b` and `a + b`, or a ShapeError naming `op` and `what` (e.g. "dilation × (kernel − 1)")
/// with the operands when the result does not fit. Geometry from user arguments (dilation 2^62, padding 2^31)
/// must never wrap into a small shape or reach the allocator as an absurd size.
template <class I, class Overflows>
I checked(const char* op, const char* what, I a, I b, const char* sign, Overflows overflows) {
  I r;
  if (overflows(a, b, &r))
    throw ShapeError(std::string(op) + ": " + what + " = " + std::to_string(a) + sign + std::to_string(b) + " overflows");
  return r;
}
template <class I>
I checked_mul(const char* op, const char* what, I a, I b) {
  return checked(op, what, a, b, " × ", [](I x, I y, I* r) { return __builtin_mul_overflow(x, y, r); });
}
template <class I>
I checked_add(const char* op, const char* what, I a, I b) {
  return checked(op, what, a, b, " + ", [](I x, I y, I* r) { return __builtin_add_overflow(x, y, r); });
}
/// The elements of an output of shape `s` and scalar type T, checked: ShapeError naming `op` when the element count
/// or its size in bytes does not fit in size_t.
template <class T>
std::size_t checked_numel(const char* op, const Shape& s) {
  std::size_t n = 1;
  for (auto d : s)
    if (__builtin_mul_overflow(n, d, &n) || n > std::numeric_limits<std::size_t>::max() / sizeof(T))
      throw ShapeError(std::string(op) + ": the output shape " + shape_str(s) + " has more elements than fit in memory");
  return n;
}

/// Grain (elements per task) for memory-bound elementwise loops: fixed, never derived from the thread count.
inline constexpr std::size_t kElementwiseGrain = 1 << 15;

/// An uninitialised heap array (std::vector would zero it first: a measurable cost for im2col-sized buffers).
template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t n) : data_(n ? new T[n] : nullptr), size_(n) {}
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  std::unique_ptr<T[]> data_;
  std::size_t size_ = 0;
};

/// A per-thread scratch buffer of at least `n` values, reused across calls (no allocation, no zeroing, no page
/// faults in steady state). `slot` tells apart buffers needed at the same time. The contents are unspecified; a
/// kernel must not call another kernel (or parallel_for) while it uses its scratch.
template <class T>
T* scratch(std::size_t slot, std::size_t n) {
  thread_local std::vector<std::vector<T>> buffers;
  if (buffers.size() <= slot) buffers.resize(slot + 1);
  auto& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

/// A tensor of shape `s` seen along `dim`: `outer` blocks of `s[dim]` rows of `inner` contiguous elements (split, cat,
/// narrow, max along a dim).
struct DimBlocks {
  std::size_t outer = 1, n = 0, inner = 1;
};
/// A tensor with no elements gets outer = 0, so that loops over the blocks do nothing: its other extents may be
/// anything (a [2^62, 0] tensor had looped 2^62 times copying nothing, or wrapped the products).
inline DimBlocks dim_blocks(const Shape& s, std::size_t dim) {
  DimBlocks b;
  for (std::size_t i = 0; i < dim; ++i) b.outer *= s[i];
  b.n = s[dim];
  for (std::size_t i = dim + 1; i < s.size(); ++i) b.inner *= s[i];
  if (std::find(s.begin(), s.end(), std::size_t(0)) != s.end()) b.outer = 0;
  return b;
}

/// The numerically stable softmax of one row of n values at stride `st` (the one place softmax, log_softmax and
/// cross_entropy compute it): returns {m, z} with m = max_k x_k and z = Σ_k e^(x_k − m), summed in k order; when `e` is
/// given, also writes e[k] = e^(x_k − m) (contiguous).
template <class T>
std::pair<T, T> softmax_row(const T* x, std::size_t n, std::size_t st, T* e = nullptr) {
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t k = 0; k < n; ++k) m = std::max(m, x[k * st]);
  T z = T(0);
  for (std::size_t k = 0; k < n; ++k) {
    const T v = std::exp(x[k * st] - m);
    if (e) e[k] = v;
    z += v;
  }
  return {m, z};
}

/// Resolves a possibly negative `dim` against `rank`, or throws naming `op`.
inline std::size_t normalize_dim(const char* op, std::int64_t dim, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  if (dim < -r || dim >= r || rank == 0)
    throw ShapeError(std::string(op) + ": dim " + std::to_string(dim) + " is out of range for a tensor of rank " +
                     std::to_string(rank));
  return static_cast<std::size_t>(dim < 0 ? dim + r : dim);
}

/// A tensor seen as [outer, n, inner] around axis `d`: element (o, k, i) is at (o·n + k)·inner + i.
struct AxisSplit {
  std::size_t outer, n, inner;
};
/// With inner == 0 there is nothing to compute or write (outer = 0: no loop over a huge outer extent); with n == 0
/// and inner > 0 the outer·inner results (a sum over an empty dim: zeros) are still written.
inline AxisSplit split_axis(const Shape& s, std::size_t d) {
  AxisSplit a{1, s[d], 1};
  for (std::size_t i = 0; i < d; ++i) a.outer *= s[i];
  for (std::size_t i = d + 1; i < s.size(); ++i) a.inner *= s[i];
  if (a.inner == 0) a.outer = 0;
  return a;
}

/// Throws unless `x` has rank `rank`.
template <class T>
void check_rank(const char* op, const char* what, const Variable<T>& x, std::size_t rank, const char* layout) {
  if (x.dim() != rank)
    throw ShapeError(std::string(op) + ": expected " + what + " of rank " + std::to_string(rank) + " " + layout +
                     ", got shape " + shape_str(x.value().shape()));
}

/// The broadcast shape of `a` and `b` (NumPy rules), or a ShapeError naming `op` and both shapes.
inline Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  const std::size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (std::size_t i = 0; i < r; ++i) {
    const std::size_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const std::size_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ShapeError(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                       " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

/// Strides (in elements) of a contiguous tensor of shape `s` seen through the broadcast shape `out`:
/// 0 on broadcast axes.
inline std::vector<std::size_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<std::size_t> st(out.size(), 0);
  std::size_t stride = 1;
  for (std::size_t k = 0; k < s.size(); ++k) {
    const std::size_t i = s.size() - 1 - k;
    const std::size_t o = out.size() - 1 - k;
    st[o] = s[i] == 1 ? 0 : stride;
    stride *= s[i];
  }
  return st;
}

/// Calls `f(o, ia, ib)` for every element `o` of `out` (row-major) with the matching offsets into two broadcast inputs.
template <class F>
void for_each_broadcast(const Shape& out, const std::vector<std::size_t>& sa, const std::vector<std::size_t>& sb, F&& f) {
  const std::size_t r = out.size();
  const std::size_t n = numel(out);
  if (r == 0) {
    f(std::size_t(0), std::size_t(0), std::size_t(0));
    return;
  }
  std::vector<std::size_t> idx(r, 0);
  const std::size_t inner = out[r - 1], sa_in = sa[r - 1], sb_in = sb[r - 1];
  std::size_t ia = 0, ib = 0;
  for (std::size_t o = 0; o < n; o += inner) {
    for (std::size_t j = 0; j < inner; ++j) f(o + j, ia + j * sa_in, ib + j * sb_in);
    for (std::size_t d = r - 1; d-- > 0;) {
      ia += sa[d];
      ib += sb[d];
      if (++idx[d] < out[d]) break;
      ia -= sa[d] * out[d];
      ib -= sb[d] * out[d];
      idx[d] = 0;
    }
  }
}

/// Σ p[0..n) with 8 interleaved partial sums combined in a fixed order: deterministic, and the compiler can vectorise
/// it (a single running sum is one long chain of dependent additions).
template <class T>
T sum_contiguous(const T* p, std::size_t n) {
  T acc[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t k = 0; k < 8; ++k) acc[k] += p[i + k];
  T s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += p[i];
  return s;
}

/// Sums `g` (shape `from`) down to `target`, the inverse of broadcasting `target` to `from`. Serial, fixed order.
template <class T>
Tensor<T> sum_to_shape(const Tensor<T>& g, const Shape& target) {
  const Shape from = shape_of(g);
  if (from == target) return g;
  Tensor<T> out = zeros<T>(target);
  const auto sg = broadcast_strides(from, from);
  const auto st = broadcast_strides(target, from);
  const T* pg = g.data();
  T* po = out.data();
  for_each_broadcast(from, sg, st, [&](std::size_t, std::size_t ig, std::size_t it) { po[it] += pg[ig]; });
  return out;
}

/// out[i] = f(x[i]) over a contiguous tensor, in parallel over fixed chunks.
template <class T, class F>
Tensor<T> map(const Tensor<T>& x, F f) {
  Tensor<T> out = xg::empty<T>(x.shape());
  const T* px = x.data();
  T* po = out.data();
  parallel_for(0, x.size(), kElementwiseGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) po[i] = f(px[i]);
  });
  return out;
}

/// out[i] = f(a[i], b[i]) over two same-shaped contiguous tensors, in parallel over fixed chunks.
template <class T, class F>
Tensor<T> zip(const Tensor<T>& a, const Tensor<T>& b, F f) {
  Tensor<T> out = xg::empty<T>(a.shape());
  const T* pa = a.data();
  const T* pb = b.data();
  T* po = out.data();
  parallel_for(0, a.size(), kElementwiseGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) po[i] = f(pa[i], pb[i]);
  });
  return out;
}

/// y[i] = a(x[i]) for i < n, serially (callers split ranges; in place allowed: y == x); the kernels of relu, sigmoid
/// and tanh (activations.cpp).
template <class T>
void activation_forward(Activation a, const T* x, T* y, std::size_t n);
/// dx[i] = g[i] · a'(x[i]), computed from the output y[i] (in place allowed: dx == g).
template <class T>
void activation_backward(Activation a, const T* g, const T* y, T* dx, std::size_t n);

}  // namespace xg::ops::detail
