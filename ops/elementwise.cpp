// Elementwise ops with NumPy/PyTorch broadcasting, and the unary maps.
//
// Forward (broadcast a, b to a common shape S):  add a+b · sub a-b · mul a*b · div a/b
// Backward, each reduced to the input's own shape by summing over the broadcast axes (sum_to_shape):
//   add: da = g,        db = g
//   sub: da = g,        db = -g
//   mul: da = g*b,      db = g*a
//   div: da = g/b,      db = -g*a/b²
//   minimum/maximum: the gradient goes to the chosen input; on a tie half to each (PyTorch's rule); NaN propagates
// Unary: scale s*x -> s*g · add_scalar -> g · neg -> -g · exp -> g*e^x · log -> g/x · square -> 2*x*g
//        sqrt -> g/(2√x) · pow x^p -> p·x^(p−1)·g · abs -> sign(x)·g (0 at 0) · clamp(lo, hi) -> g inside [lo, hi], 0
//        outside · rsub s−x -> −g · rdiv s/x -> −s·g/x²
#include <cmath>

#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

enum class Binary { Add, Sub, Mul, Div, Minimum, Maximum };

const char* binary_name(Binary k) {
  switch (k) {
    case Binary::Add: return "add";
    case Binary::Sub: return "sub";
    case Binary::Mul: return "mul";
    case Binary::Div: return "div";
    case Binary::Minimum: return "minimum";
    case Binary::Maximum: return "maximum";
  }
  return "?";
}

template <class T>
T apply(Binary k, T a, T b) {
  switch (k) {
    case Binary::Add: return a + b;
    case Binary::Sub: return a - b;
    case Binary::Mul: return a * b;
    case Binary::Div: return a / b;
    case Binary::Minimum: return a != a || b != b ? a + b : std::min(a, b);  // NaN propagates
    case Binary::Maximum: return a != a || b != b ? a + b : std::max(a, b);
  }
  return T(0);
}

/// out = a (op) b over the broadcast shape `s`.
template <class T, class F>
Tensor<T> broadcast_apply(const Tensor<T>& a, const Tensor<T>& b, const Shape& s, F f) {
  const Shape sa = shape_of(a), sb = shape_of(b);
  if (sa == s && sb == s) return detail::zip(a, b, f);
  Tensor<T> out = empty<T>(s);
  const T* pa = a.data();
  const T* pb = b.data();
  T* po = out.data();
  detail::for_each_broadcast(s, detail::broadcast_strides(sa, s), detail::broadcast_strides(sb, s),
                             [&](std::size_t o, std::size_t ia, std::size_t ib) { po[o] = f(pa[ia], pb[ib]); });
  return out;
}

template <class T>
class BinaryOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return k_ != Binary::Add && k_ != Binary::Sub; }
  bool keeps_output() const override { return false; }
  explicit BinaryOp(Binary k) : k_(k) {}
  GradList<T> backward(const Tensor<T>& g) override {
    const Shape s = shape_of(g), sa = this->inputs()[0].shape(), sb = this->inputs()[1].shape();
    GradList<T> grads(2);
    if (k_ == Binary::Add || k_ == Binary::Sub) {  // no values needed (keeps_input is false for these)
      if (this->needs_grad(0)) grads[0] = detail::sum_to_shape(g, sa);
      if (this->needs_grad(1)) {
        Tensor<T> r = detail::sum_to_shape(g, sb);
        if (k_ == Binary::Sub)
          for (auto& v : r) v = -v;
        grads[1] = std::move(r);
      }
      return grads;
    }
    const Tensor<T>& a = this->inputs()[0].value();
    const Tensor<T>& b = this->inputs()[1].value();
    if (k_ == Binary::Minimum || k_ == Binary::Maximum) {
      // w: the share of the gradient that goes to a (1 where a was chosen, ½ on a tie, 0 where b was).
      const bool mx = k_ == Binary::Maximum;
      const Tensor<T> w = broadcast_apply(a, b, s, [mx](T av, T bv) {
        return av == bv ? T(0.5) : ((mx ? av > bv : av < bv) || av != av) ? T(1) : T(0);
      });
      if (this->needs_grad(0)) grads[0] = detail::sum_to_shape(detail::zip(g, w, [](T gv, T wv) { return gv * wv; }), sa);
      if (this->needs_grad(1))
        grads[1] = detail::sum_to_shape(detail::zip(g, w, [](T gv, T wv) { return gv * (T(1) - wv); }), sb);
      return grads;
    }
    if (this->needs_grad(0)) {
      switch (k_) {
        case Binary::Mul: grads[0] = detail::sum_to_shape(broadcast_apply(g, b, s, [](T gv, T bv) { return gv * bv; }), sa); break;
        case Binary::Div: grads[0] = detail::sum_to_shape(broadcast_apply(g, b, s, [](T gv, T bv) { return gv / bv; }), sa); break;
        default: break;
      }
    }
    if (this->needs_grad(1)) {
      switch (k_) {
        case Binary::Mul: grads[1] = detail::sum_to_shape(broadcast_apply(g, a, s, [](T gv, T av) { return gv * av; }), sb); break;
        case Binary::Div: {
          // -g * a / b², computed in the broadcast space: (g*a) then / b².
          Tensor<T> ga = broadcast_apply(g, a, s, [](T gv, T av) { return gv * av; });
          grads[1] = detail::sum_to_shape(broadcast_apply(ga, b, s, [](T v, T bv) { return -v / (bv * bv); }), sb);
          break;
        }
        default: break;
      }
    }
    return grads;
  }

 private:
  Binary k_;
};

template <class T>
Variable<T> binary(Binary k, const Variable<T>& a, const Variable<T>& b) {
  OpCall call(binary_name(k));
  const Shape s = detail::broadcast_shape(call.name(), a.shape(), b.shape());
  Tensor<T> out = broadcast_apply(a.value(), b.value(), s, [k](T x, T y) { return apply(k, x, y); });
  return call.record<BinaryOp<T>>(std::move(out), {a, b}, k);
}

enum class Unary { Scale, AddScalar, Neg, Exp, Log, Square, Sqrt, Pow, Abs, Clamp, RSub, RDiv };

const char* unary_name(Unary k) {
  switch (k) {
    case Unary::Scale: return "scale";
    case Unary::AddScalar: return "add_scalar";
    case Unary::Neg: return "neg";
    case Unary::Exp: return "exp";
    case Unary::Log: return "log";
    case Unary::Square: return "square";
    case Unary::Sqrt: return "sqrt";
    case Unary::Pow: return "pow";
    case Unary::Abs: return "abs";
    case Unary::Clamp: return "clamp";
    case Unary::RSub: return "rsub";
    case Unary::RDiv: return "rdiv";
  }
  return "?";
}

template <class T>
class UnaryOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override {
    return k_ == Unary::Log || k_ == Unary::Square || k_ == Unary::Pow || k_ == Unary::Abs || k_ == Unary::Clamp ||
           k_ == Unary::RDiv;
  }
  bool keeps_output() const override { return k_ == Unary::Exp || k_ == Unary::Sqrt; }
  UnaryOp(Unary k, T s, T s2 = T(0)) : k_(k), s_(s), s2_(s2) {}
  GradList<T> backward(const Tensor<T>& g) override {
    // x is read only by the cases that keep it (keeps_input)
    const auto x_of = [this]() -> const Tensor<T>& { return this->inputs()[0].value(); };
    switch (k_) {
      case Unary::Scale: { const T s = s_; return {detail::map(g, [s](T v) { return s * v; })}; }
      case Unary::AddScalar: return {g};
      case Unary::Neg: return {detail::map(g, [](T v) { return -v; })};
      case Unary::Exp: return {detail::zip(g, this->output(), [](T gv, T y) { return gv * y; })};
      case Unary::Log: return {detail::zip(g, x_of(), [](T gv, T xv) { return gv / xv; })};
      case Unary::Square: return {detail::zip(g, x_of(), [](T gv, T xv) { return T(2) * xv * gv; })};
      case Unary::Sqrt: return {detail::zip(g, this->output(), [](T gv, T y) { return gv / (T(2) * y); })};
      case Unary::Pow: {
        const T p = s_;
        return {detail::zip(g, x_of(), [p](T gv, T xv) { return p == T(0) ? T(0) : gv * p * std::pow(xv, p - T(1)); })};
      }
      case Unary::Abs: return {detail::zip(g, x_of(), [](T gv, T xv) { return xv > T(0) ? gv : xv < T(0) ? -gv : T(0); })};
      case Unary::Clamp: {
        const T lo = s_, hi = s2_;
        return {detail::zip(g, x_of(), [lo, hi](T gv, T xv) { return xv >= lo && xv <= hi ? gv : T(0); })};
      }
      case Unary::RSub: return {detail::map(g, [](T v) { return -v; })};
      case Unary::RDiv: {
        const T s = s_;
        return {detail::zip(g, x_of(), [s](T gv, T xv) { return -s * gv / (xv * xv); })};
      }
    }
    return {std::nullopt};
  }

 private:
  Unary k_;
  T s_, s2_;
};

/// y = f(x) recorded as unary op `k` (constants s, s2) through `call`, which the public function opened with
/// unary_name(k) before its argument checks.
template <class T, class F>
Variable<T> unary(OpCall& call, Unary k, const Variable<T>& x, T s, F f, T s2 = T(0)) {
  return call.record<UnaryOp<T>>(detail::map(x.value(), f), {x}, k, s, s2);
}

}  // namespace

template <class T> Variable<T> add(const Variable<T>& a, const Variable<T>& b) { return binary(Binary::Add, a, b); }
template <class T> Variable<T> sub(const Variable<T>& a, const Variable<T>& b) { return binary(Binary::Sub, a, b); }
template <class T> Variable<T> mul(const Variable<T>& a, const Variable<T>& b) { return binary(Binary::Mul, a, b); }
template <class T> Variable<T> div(const Variable<T>& a, const Variable<T>& b) { return binary(Binary::Div, a, b); }

template <class T> Variable<T> scale(const Variable<T>& x, T s) {
  OpCall call(unary_name(Unary::Scale));
  return unary(call, Unary::Scale, x, s, [s](T v) { return s * v; });
}
template <class T> Variable<T> add_scalar(const Variable<T>& x, T s) {
  OpCall call(unary_name(Unary::AddScalar));
  return unary(call, Unary::AddScalar, x, s, [s](T v) { return v + s; });
}
template <class T> Variable<T> neg(const Variable<T>& x) {
  OpCall call(unary_name(Unary::Neg));
  return unary(call, Unary::Neg, x, T(0), [](T v) { return -v; });
}
template <class T> Variable<T> exp(const Variable<T>& x) {
  OpCall call(unary_name(Unary::Exp));
  return unary(call, Unary::Exp, x, T(0), [](T v) { return std::exp(v); });
}
template <class T> Variable<T> log(const Variable<T>& x) {
  OpCall call(unary_name(Unary::Log));
  return unary(call, Unary::Log, x, T(0), [](T v) { return std::log(v); });
}
template <class T> Variable<T> square(const Variable<T>& x) {
  OpCall call(unary_name(Unary::Square));
  return unary(call, Unary::Square, x, T(0), [](T v) { return v * v; });
}

template <class T> Variable<T> minimum(const Variable<T>& a, const Variable<T>& b) { return binary(Binary::Minimum, a, b); }
template <class T> Variable<T> maximum(const Variable<T>& a, const Variable<T>& b) { return binary(Binary::Maximum, a, b); }
template <class T> Variable<T> sqrt(const Variable<T>& x) {
  OpCall call(unary_name(Unary::Sqrt));
  return unary(call, Unary::Sqrt, x, T(0), [](T v) { return std::sqrt(v); });
}
template <class T> Variable<T> pow(const Variable<T>& x, T p) {
  OpCall call(unary_name(Unary::Pow));
  if (!std::isfinite(p)) throw call.error("the exponent must be finite, got " + std::to_string(p));
  return unary(call, Unary::Pow, x, p, [p](T v) { return std::pow(v, p); });
}
template <class T> Variable<T> abs(const Variable<T>& x) {
  OpCall call(unary_name(Unary::Abs));
  return unary(call, Unary::Abs, x, T(0), [](T v) { return std::abs(v); });
}
template <class T> Variable<T> clamp(const Variable<T>& x, T lo, T hi) {
  OpCall call(unary_name(Unary::Clamp));
  if (!(lo <= hi)) throw call.error("min " + std::to_string(lo) + " is greater than max " + std::to_string(hi));
  return unary(call, Unary::Clamp, x, lo, [lo, hi](T v) { return v != v ? v : std::min(std::max(v, lo), hi); }, hi);
}
template <class T> Variable<T> rsub(T s, const Variable<T>& x) {
  OpCall call(unary_name(Unary::RSub));
  return unary(call, Unary::RSub, x, s, [s](T v) { return s - v; });
}
template <class T> Variable<T> rdiv(T s, const Variable<T>& x) {
  OpCall call(unary_name(Unary::RDiv));
  return unary(call, Unary::RDiv, x, s, [s](T v) { return s / v; });
}

#define XG_INSTANTIATE(T)                                                   \
  template Variable<T> minimum(const Variable<T>&, const Variable<T>&);    \
  template Variable<T> maximum(const Variable<T>&, const Variable<T>&);    \
  template Variable<T> sqrt(const Variable<T>&);                           \
  template Variable<T> pow(const Variable<T>&, T);                         \
  template Variable<T> abs(const Variable<T>&);                            \
  template Variable<T> clamp(const Variable<T>&, T, T);                    \
  template Variable<T> rsub(T, const Variable<T>&);                        \
  template Variable<T> rdiv(T, const Variable<T>&);                        \
  template Variable<T> add(const Variable<T>&, const Variable<T>&);        \
  template Variable<T> sub(const Variable<T>&, const Variable<T>&);        \
  template Variable<T> mul(const Variable<T>&, const Variable<T>&);        \
  template Variable<T> div(const Variable<T>&, const Variable<T>&);        \
  template Variable<T> scale(const Variable<T>&, T);                       \
  template Variable<T> add_scalar(const Variable<T>&, T);                  \
  template Variable<T> neg(const Variable<T>&);                            \
  template Variable<T> exp(const Variable<T>&);                            \
  template Variable<T> log(const Variable<T>&);                            \
  template Variable<T> square(const Variable<T>&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
