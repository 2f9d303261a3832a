#pragma once
/// \file pointwise.h
/// The two nodes behind every elementwise op (internal to ops/), so that an elementwise op is one function — its
/// formula comment, its forward and its gradient — with no enum or switch to extend:
///
/// - `pointwise(call, x, f, grad)`: y = f(x) elementwise. `grad` says how dx is computed and so what the node keeps:
///   `grad_from_g([](T g) {…})` (neither x nor y: scale, neg), `grad_from_input([](T g, T x) {…})` (log, abs),
///   `grad_from_output([](T g, T y) {…})` (exp, sqrt), `grad_from_input_output([](T g, T x, T y) {…})`. A plain
///   derivative `df(x)` or `df(x, y)` is also accepted and multiplied by g (the activations' form):
///
///       template <class T> Variable<T> silu(const Variable<T>& x) {
///         OpCall call("silu");
///         return detail::pointwise(call, x, [](T v) { return v / (T(1) + std::exp(-v)); },
///                                  [](T v) { const T s = T(1) / (T(1) + std::exp(-v)); return s * (T(1) + v * (T(1) - s)); });
///       }
///
/// - `broadcast(call, a, b, f, grad_a, grad_b)`: z = f(a, b) with NumPy/PyTorch broadcasting. Each input's gradient is
///   `[](T g, T a, T b) {…}` evaluated in the broadcast shape, or `Passes{}` (g itself: add) or `Negated{}` (−g: sub's
///   second input), which read neither input, and is then summed over the broadcast axes to the input's shape.
///
/// Forward and backward run in parallel over fixed chunks of kElementwiseGrain elements where the shapes agree
/// (bit-identical at any thread count); broadcast shapes and the sums over broadcast axes run serially in a fixed order.

#include <type_traits>

#include "core/parallel.h"
#include "ops/detail.h"

namespace xg::ops::detail {

// ---------------------------------------------------------------------------------------------------------------
// pointwise: one input

/// A pointwise gradient and what it reads besides g (the node keeps exactly that for backward).
template <bool ReadsInput, bool ReadsOutput, class G>
struct PointwiseGrad {
  static constexpr bool kReadsInput = ReadsInput, kReadsOutput = ReadsOutput;
  G grad;
};
/// dx = grad(g).
template <class G>
PointwiseGrad<false, false, G> grad_from_g(G g) { return {std::move(g)}; }
/// dx = grad(g, x).
template <class G>
PointwiseGrad<true, false, G> grad_from_input(G g) { return {std::move(g)}; }
/// dx = grad(g, y), y the op's output.
template <class G>
PointwiseGrad<false, true, G> grad_from_output(G g) { return {std::move(g)}; }
/// dx = grad(g, x, y).
template <class G>
PointwiseGrad<true, true, G> grad_from_input_output(G g) { return {std::move(g)}; }

template <class T, bool ReadsInput, bool ReadsOutput, class G>
class PointwiseOp final : public Op<T> {
 public:
  explicit PointwiseOp(G grad) : grad_(std::move(grad)) {}
  bool keeps_input(std::size_t) const override { return ReadsInput; }
  bool keeps_output() const override { return ReadsOutput; }
  GradList<T> backward(const Tensor<T>& g) override {
    const T* pg = g.data();
    const T* px = nullptr;
    const T* py = nullptr;
    if constexpr (ReadsInput) px = this->inputs()[0].value().data();
    if constexpr (ReadsOutput) py = this->output().data();
    Tensor<T> dx = xg::empty<T>(g.shape());
    T* pd = dx.data();
    parallel_for(0, dx.size(), kElementwiseGrain, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) {
        if constexpr (ReadsInput && ReadsOutput) pd[i] = grad_(pg[i], px[i], py[i]);
        else if constexpr (ReadsInput) pd[i] = grad_(pg[i], px[i]);
        else if constexpr (ReadsOutput) pd[i] = grad_(pg[i], py[i]);
        else pd[i] = grad_(pg[i]);
      }
    });
    return {std::move(dx)};
  }

 private:
  G grad_;
};

template <class T>
struct IsPointwiseGrad : std::false_type {};
template <bool I, bool O, class G>
struct IsPointwiseGrad<PointwiseGrad<I, O, G>> : std::true_type {};

/// y = f(x) elementwise, recorded through `call` (the op's OpCall, opened before its argument checks) with the
/// gradient `grad` (a PointwiseGrad, or a derivative df(x) / df(x, y) that is multiplied by g).
template <class T, class F, class D>
Variable<T> pointwise(OpCall& call, const Variable<T>& x, F f, D grad) {
  const T* px = x.value().data();
  Tensor<T> y = xg::empty<T>(x.value().shape());
  T* py = y.data();
  parallel_for(0, y.size(), kElementwiseGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) py[i] = f(px[i]);
  });
  if constexpr (IsPointwiseGrad<D>::value) {
    return call.record<PointwiseOp<T, D::kReadsInput, D::kReadsOutput, decltype(grad.grad)>>(std::move(y), {x}, std::move(grad.grad));
  } else if constexpr (std::is_invocable_v<const D&, T>) {
    return pointwise(call, x, std::move(f), grad_from_input([df = std::move(grad)](T g, T v) { return g * df(v); }));
  } else {
    return pointwise(call, x, std::move(f), grad_from_input_output([df = std::move(grad)](T g, T v, T out) { return g * df(v, out); }));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// broadcast: two inputs

/// A broadcast input's gradient that is g itself (add), or −g (sub's second input): neither reads the inputs.
struct Passes {};
struct Negated {};

/// out = f(a, b) over the broadcast shape `s`.
template <class T, class F>
Tensor<T> broadcast_apply(const Tensor<T>& a, const Tensor<T>& b, const Shape& s, F f) {
  const Shape sa = shape_of(a), sb = shape_of(b);
  if (sa == s && sb == s) return zip(a, b, f);
  Tensor<T> out = xg::empty<T>(s);
  const T* pa = a.data();
  const T* pb = b.data();
  T* po = out.data();
  for_each_broadcast(s, broadcast_strides(sa, s), broadcast_strides(sb, s),
                     [&](std::size_t o, std::size_t ia, std::size_t ib) { po[o] = f(pa[ia], pb[ib]); });
  return out;
}

template <class T, class GA, class GB>
class BroadcastOp final : public Op<T> {
  template <class G>
  static constexpr bool kTag = std::is_same_v<G, Passes> || std::is_same_v<G, Negated>;

 public:
  BroadcastOp(GA ga, GB gb) : ga_(std::move(ga)), gb_(std::move(gb)) {}
  bool keeps_input(std::size_t) const override { return !(kTag<GA> && kTag<GB>); }
  bool keeps_output() const override { return false; }
  GradList<T> backward(const Tensor<T>& g) override {
    GradList<T> grads(2);
    if (this->needs_grad(0)) grads[0] = input_grad(ga_, g, this->inputs()[0].shape());
    if (this->needs_grad(1)) grads[1] = input_grad(gb_, g, this->inputs()[1].shape());
    return grads;
  }

 private:
  template <class G>
  Tensor<T> input_grad(const G& grad, const Tensor<T>& g, const Shape& target) {
    if constexpr (std::is_same_v<G, Passes>) {
      return sum_to_shape(g, target);
    } else if constexpr (std::is_same_v<G, Negated>) {
      Tensor<T> r = sum_to_shape(g, target);
      for (auto& v : r) v = -v;
      return r;
    } else {
      const Tensor<T>& a = this->inputs()[0].value();
      const Tensor<T>& b = this->inputs()[1].value();
      const Shape s = shape_of(g), sa = shape_of(a), sb = shape_of(b);
      Tensor<T> out = xg::empty<T>(s);
      const T* pg = g.data();
      const T* pa = a.data();
      const T* pb = b.data();
      T* po = out.data();
      if (sa == s && sb == s) {
        parallel_for(0, out.size(), kElementwiseGrain, [&](std::size_t lo, std::size_t hi) {
          for (std::size_t i = lo; i < hi; ++i) po[i] = grad(pg[i], pa[i], pb[i]);
        });
      } else {
        for_each_broadcast(s, broadcast_strides(sa, s), broadcast_strides(sb, s),
                           [&](std::size_t o, std::size_t ia, std::size_t ib) { po[o] = grad(pg[o], pa[ia], pb[ib]); });
      }
      return sum_to_shape(out, target);
    }
  }
  GA ga_;
  GB gb_;
};

/// z = f(a, b) over the broadcast shape of a and b, recorded through `call` with the inputs' gradients `ga`, `gb`.
template <class T, class F, class GA, class GB>
Variable<T> broadcast(OpCall& call, const Variable<T>& a, const Variable<T>& b, F f, GA ga, GB gb) {
  const Shape s = broadcast_shape(call.name(), a.shape(), b.shape());
  return call.record<BroadcastOp<T, GA, GB>>(broadcast_apply(a.value(), b.value(), s, f), {a, b}, std::move(ga), std::move(gb));
}

}  // namespace xg::ops::detail
