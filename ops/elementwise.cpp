// Elementwise ops with NumPy/PyTorch broadcasting, and the unary maps: each its own function on the shared pointwise
// and broadcast nodes (ops/pointwise.h).
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

#include "ops/ops.h"
#include "ops/pointwise.h"

namespace xg::ops {
using detail::broadcast;
using detail::grad_from_g;
using detail::grad_from_input;
using detail::grad_from_output;
using detail::Negated;
using detail::Passes;
using detail::pointwise;

namespace {
/// The share of the gradient that goes to a in maximum (mx) or minimum: 1 where a was chosen, ½ on a tie, 0 where b
/// was; a NaN in a takes it all (NaN propagates from a).
template <class T>
T share_of_a(bool mx, T a, T b) {
  return a == b ? T(0.5) : ((mx ? a > b : a < b) || a != a) ? T(1) : T(0);
}
template <class T>
Variable<T> extremum(const char* name, bool mx, const Variable<T>& a, const Variable<T>& b) {
  OpCall call(name);
  return broadcast(
      call, a, b, [mx](T x, T y) { return x != x || y != y ? x + y : mx ? std::max(x, y) : std::min(x, y); },
      [mx](T g, T x, T y) { return g * share_of_a(mx, x, y); }, [mx](T g, T x, T y) { return g * (T(1) - share_of_a(mx, x, y)); });
}
}  // namespace

template <class T> Variable<T> add(const Variable<T>& a, const Variable<T>& b) {
  OpCall call("add");
  return broadcast(call, a, b, [](T x, T y) { return x + y; }, Passes{}, Passes{});
}
template <class T> Variable<T> sub(const Variable<T>& a, const Variable<T>& b) {
  OpCall call("sub");
  return broadcast(call, a, b, [](T x, T y) { return x - y; }, Passes{}, Negated{});
}
template <class T> Variable<T> mul(const Variable<T>& a, const Variable<T>& b) {
  OpCall call("mul");
  return broadcast(call, a, b, [](T x, T y) { return x * y; }, [](T g, T, T y) { return g * y; }, [](T g, T x, T) { return g * x; });
}
template <class T> Variable<T> div(const Variable<T>& a, const Variable<T>& b) {
  OpCall call("div");
  return broadcast(call, a, b, [](T x, T y) { return x / y; }, [](T g, T, T y) { return g / y; },
                   [](T g, T x, T y) { return -(g * x) / (y * y); });
}
template <class T> Variable<T> minimum(const Variable<T>& a, const Variable<T>& b) { return extremum("minimum", false, a, b); }
template <class T> Variable<T> maximum(const Variable<T>& a, const Variable<T>& b) { return extremum("maximum", true, a, b); }

template <class T> Variable<T> scale(const Variable<T>& x, T s) {
  OpCall call("scale");
  return pointwise(call, x, [s](T v) { return s * v; }, grad_from_g([s](T g) { return s * g; }));
}
template <class T> Variable<T> add_scalar(const Variable<T>& x, T s) {
  OpCall call("add_scalar");
  return pointwise(call, x, [s](T v) { return v + s; }, grad_from_g([](T g) { return g; }));
}
template <class T> Variable<T> neg(const Variable<T>& x) {
  OpCall call("neg");
  return pointwise(call, x, [](T v) { return -v; }, grad_from_g([](T g) { return -g; }));
}
template <class T> Variable<T> exp(const Variable<T>& x) {
  OpCall call("exp");
  return pointwise(call, x, [](T v) { return std::exp(v); }, grad_from_output([](T g, T y) { return g * y; }));
}
template <class T> Variable<T> log(const Variable<T>& x) {
  OpCall call("log");
  return pointwise(call, x, [](T v) { return std::log(v); }, grad_from_input([](T g, T v) { return g / v; }));
}
template <class T> Variable<T> square(const Variable<T>& x) {
  OpCall call("square");
  return pointwise(call, x, [](T v) { return v * v; }, grad_from_input([](T g, T v) { return T(2) * v * g; }));
}
template <class T> Variable<T> sqrt(const Variable<T>& x) {
  OpCall call("sqrt");
  return pointwise(call, x, [](T v) { return std::sqrt(v); }, grad_from_output([](T g, T y) { return g / (T(2) * y); }));
}
template <class T> Variable<T> pow(const Variable<T>& x, T p) {
  OpCall call("pow");
  if (!std::isfinite(p)) throw call.error("the exponent must be finite, got " + std::to_string(p));
  return pointwise(call, x, [p](T v) { return std::pow(v, p); },
                   grad_from_input([p](T g, T v) { return p == T(0) ? T(0) : g * p * std::pow(v, p - T(1)); }));
}
template <class T> Variable<T> abs(const Variable<T>& x) {
  OpCall call("abs");
  return pointwise(call, x, [](T v) { return std::abs(v); },
                   grad_from_input([](T g, T v) { return v > T(0) ? g : v < T(0) ? -g : T(0); }));
}
template <class T> Variable<T> clamp(const Variable<T>& x, T lo, T hi) {
  OpCall call("clamp");
  if (!(lo <= hi)) throw call.error("min " + std::to_string(lo) + " is greater than max " + std::to_string(hi));
  return pointwise(call, x, [lo, hi](T v) { return v != v ? v : std::min(std::max(v, lo), hi); },
                   grad_from_input([lo, hi](T g, T v) { return v >= lo && v <= hi ? g : T(0); }));
}
template <class T> Variable<T> rsub(T s, const Variable<T>& x) {
  OpCall call("rsub");
  return pointwise(call, x, [s](T v) { return s - v; }, grad_from_g([](T g) { return -g; }));
}
template <class T> Variable<T> rdiv(T s, const Variable<T>& x) {
  OpCall call("rdiv");
  return pointwise(call, x, [s](T v) { return s / v; }, grad_from_input([s](T g, T v) { return -s * g / (v * v); }));
}

XG_INSTANTIATE_OP(minimum)
XG_INSTANTIATE_OP(maximum)
XG_INSTANTIATE_OP(sqrt)
XG_INSTANTIATE_OP(pow)
XG_INSTANTIATE_OP(abs)
XG_INSTANTIATE_OP(clamp)
XG_INSTANTIATE_OP(rsub)
XG_INSTANTIATE_OP(rdiv)
XG_INSTANTIATE_OP(add)
XG_INSTANTIATE_OP(sub)
XG_INSTANTIATE_OP(mul)
XG_INSTANTIATE_OP(div)
XG_INSTANTIATE_OP(scale)
XG_INSTANTIATE_OP(add_scalar)
XG_INSTANTIATE_OP(neg)
XG_INSTANTIATE_OP(exp)
XG_INSTANTIATE_OP(log)
XG_INSTANTIATE_OP(square)

}  // namespace xg::ops
