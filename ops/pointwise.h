#pragma once
/// \file pointwise.h
/// The node behind the pointwise activations (internal to ops/): y = f(x) elementwise with dy/dx = df(x) (or
/// df(x, y)). An activation is then one file — its formula comment, f and df — with nothing to add to an enum:
///
///     template <class T> Variable<T> silu(const Variable<T>& x) {
///       OpCall call("silu");
///       return detail::pointwise(call, x, [](T v) { return v / (T(1) + std::exp(-v)); },
///                                [](T v) { const T s = T(1) / (T(1) + std::exp(-v)); return s * (T(1) + v * (T(1) - s)); });
///     }
///
/// Forward and backward run in parallel over fixed chunks of kElementwiseGrain elements (bit-identical at any
/// thread count); the node keeps its input, and its output only when df takes it (elu: y + α below 0).

#include <type_traits>

#include "core/parallel.h"
#include "ops/detail.h"

namespace xg::ops::detail {

template <class T, class D>
class PointwiseOp final : public Op<T> {
  /// df(x) needs only the input; df(x, y) reads the output too, which is then kept for backward.
  static constexpr bool kReadsOutput = !std::is_invocable_v<const D&, T>;

 public:
  explicit PointwiseOp(D df) : df_(std::move(df)) {}
  bool keeps_output() const override { return kReadsOutput; }
  GradList<T> backward(const Tensor<T>& g) override {
    const T* px = this->inputs()[0].value().data();
    const T* pg = g.data();
    Tensor<T> dx = xg::empty<T>(g.shape());
    T* pd = dx.data();
    if constexpr (kReadsOutput) {
      const T* py = this->output().data();
      parallel_for(0, dx.size(), kElementwiseGrain, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) pd[i] = pg[i] * df_(px[i], py[i]);
      });
    } else {
      parallel_for(0, dx.size(), kElementwiseGrain, [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) pd[i] = pg[i] * df_(px[i]);
      });
    }
    return {std::move(dx)};
  }

 private:
  D df_;
};

/// y = f(x) elementwise, recorded through `call` (the activation's OpCall, opened before its argument checks) with
/// dy/dx = df(x), or df(x, y) when the derivative is cheaper from the output (then the node keeps y for backward).
template <class T, class F, class D>
Variable<T> pointwise(OpCall& call, const Variable<T>& x, F f, D df) {
  const T* px = x.value().data();
  Tensor<T> y = xg::empty<T>(x.value().shape());
  T* py = y.data();
  parallel_for(0, y.size(), kElementwiseGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) py[i] = f(px[i]);
  });
  return call.record<PointwiseOp<T, D>>(std::move(y), {x}, std::move(df));
}

}  // namespace xg::ops::detail
