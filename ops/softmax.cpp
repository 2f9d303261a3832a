// Softmax and log-softmax along one axis (the rows below are the slices along `dim`).
//
// softmax:     y_k = e^(x_k - m) / Σ_j e^(x_j - m), m = max_j x_j      dx = y ⊙ (g - Σ_k g_k y_k)
// log_softmax: y_k = x_k - m - log Σ_j e^(x_j - m)                      dx = g - e^y ⊙ Σ_k g_k
// Subtracting the row maximum keeps both finite for logits of any magnitude.
#include <cmath>

#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

using Rows = detail::AxisSplit;

/// Calls f(base, stride) for every row: elements base + k*stride, k < n. Parallel over `outer`.
template <class F>
void for_each_row(const Rows& r, F f) {
  if (r.n == 0) return;  // empty rows: nothing to compute, however many (a [2^62, 0] input had looped 2^62 times)
  parallel_for(0, r.outer, std::max<std::size_t>(1, 4096 / std::max<std::size_t>(1, r.n * r.inner)),
               [&](std::size_t lo, std::size_t hi) {
                 for (std::size_t o = lo; o < hi; ++o)
                   for (std::size_t i = 0; i < r.inner; ++i) f(o * r.n * r.inner + i, r.inner);
               });
}

template <class T>
class SoftmaxOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads only the output
  SoftmaxOp(bool log, Rows r) : log_(log), r_(r) {}
  GradList<T> backward(const Tensor<T>& g) override {
    Tensor<T> dx = xg::empty<T>(g.shape());
    const T* pg = g.data();
    const T* py = this->output().data();
    T* pd = dx.data();
    const std::size_t n = r_.n;
    for_each_row(r_, [&](std::size_t b, std::size_t s) {
      T acc = T(0);
      if (log_) {
        for (std::size_t k = 0; k < n; ++k) acc += pg[b + k * s];
        for (std::size_t k = 0; k < n; ++k) pd[b + k * s] = pg[b + k * s] - std::exp(py[b + k * s]) * acc;
      } else {
        for (std::size_t k = 0; k < n; ++k) acc += pg[b + k * s] * py[b + k * s];
        for (std::size_t k = 0; k < n; ++k) pd[b + k * s] = py[b + k * s] * (pg[b + k * s] - acc);
      }
    });
    return {std::move(dx)};
  }

 private:
  bool log_;
  Rows r_;
};

template <class T>
Variable<T> softmax_impl(const Variable<T>& x, std::int64_t dim, bool log) {
  OpCall call(log ? "log_softmax" : "softmax");
  const char* op = log ? "log_softmax" : "softmax";
  const Shape s = x.shape();
  const Rows r = detail::split_axis(s, detail::normalize_dim(op, dim, s.size()));
  Tensor<T> y = xg::empty<T>(s);
  const T* px = x.value().data();
  T* py = y.data();
  const std::size_t n = r.n;
  for_each_row(r, [&](std::size_t b, std::size_t st) {
    const auto [m, z] = detail::softmax_row(px + b, n, st);
    if (log) {
      const T lz = m + std::log(z);
      for (std::size_t k = 0; k < n; ++k) py[b + k * st] = px[b + k * st] - lz;
    } else {
      for (std::size_t k = 0; k < n; ++k) py[b + k * st] = std::exp(px[b + k * st] - m) / z;
    }
  });
  return call.record<SoftmaxOp<T>>(std::move(y), {x}, log, r);
}

}  // namespace

template <class T> Variable<T> softmax(const Variable<T>& x, std::int64_t dim) { return softmax_impl(x, dim, false); }
template <class T> Variable<T> log_softmax(const Variable<T>& x, std::int64_t dim) { return softmax_impl(x, dim, true); }

#define XG_INSTANTIATE(T)                                            \
  template Variable<T> softmax(const Variable<T>&, std::int64_t);    \
  template Variable<T> log_softmax(const Variable<T>&, std::int64_t);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
