// Elementwise ops with NumPy/PyTorch broadcasting, and the unary maps.
//
// Forward (broadcast a, b to a common shape S):  add a+b · sub a-b · mul a*b · div a/b
// Backward, each reduced to the input's own shape by summing over the broadcast axes (sum_to_shape):
//   add: da = g,        db = g
//   sub: da = g,        db = -g
//   mul: da = g*b,      db = g*a
//   div: da = g/b,      db = -g*a/b²
// Unary: scale s*x -> s*g · add_scalar -> g · neg -> -g · exp -> g*e^x · log -> g/x · square -> 2*x*g
#include <cmath>

#include "core/profiler.h"
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

enum class Binary { Add, Sub, Mul, Div };

const char* binary_name(Binary k) {
  switch (k) {
    case Binary::Add: return "add";
    case Binary::Sub: return "sub";
    case Binary::Mul: return "mul";
    case Binary::Div: return "div";
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
  explicit BinaryOp(Binary k) : k_(k) {}
  const char* name() const override { return binary_name(k_); }
  GradList<T> backward(const Tensor<T>& g) override {
    const Tensor<T>& a = this->inputs()[0].value();
    const Tensor<T>& b = this->inputs()[1].value();
    const Shape s = shape_of(g), sa = shape_of(a), sb = shape_of(b);
    GradList<T> grads(2);
    if (this->needs_grad(0)) {
      switch (k_) {
        case Binary::Add:
        case Binary::Sub: grads[0] = detail::sum_to_shape(g, sa); break;
        case Binary::Mul: grads[0] = detail::sum_to_shape(broadcast_apply(g, b, s, [](T gv, T bv) { return gv * bv; }), sa); break;
        case Binary::Div: grads[0] = detail::sum_to_shape(broadcast_apply(g, b, s, [](T gv, T bv) { return gv / bv; }), sa); break;
      }
    }
    if (this->needs_grad(1)) {
      switch (k_) {
        case Binary::Add: grads[1] = detail::sum_to_shape(g, sb); break;
        case Binary::Sub: {
          Tensor<T> r = detail::sum_to_shape(g, sb);
          for (auto& v : r) v = -v;
          grads[1] = std::move(r);
          break;
        }
        case Binary::Mul: grads[1] = detail::sum_to_shape(broadcast_apply(g, a, s, [](T gv, T av) { return gv * av; }), sb); break;
        case Binary::Div: {
          // -g * a / b², computed in the broadcast space: (g*a) then / b².
          Tensor<T> ga = broadcast_apply(g, a, s, [](T gv, T av) { return gv * av; });
          grads[1] = detail::sum_to_shape(broadcast_apply(ga, b, s, [](T v, T bv) { return -v / (bv * bv); }), sb);
          break;
        }
      }
    }
    return grads;
  }

 private:
  Binary k_;
};

template <class T>
Variable<T> binary(Binary k, const Variable<T>& a, const Variable<T>& b) {
  profiler::ScopedForward prof(binary_name(k));
  const Shape s = detail::broadcast_shape(binary_name(k), a.shape(), b.shape());
  Tensor<T> out = broadcast_apply(a.value(), b.value(), s, [k](T x, T y) { return apply(k, x, y); });
  return record<BinaryOp<T>>(std::move(out), {a, b}, k);
}

enum class Unary { Scale, AddScalar, Neg, Exp, Log, Square };

const char* unary_name(Unary k) {
  switch (k) {
    case Unary::Scale: return "scale";
    case Unary::AddScalar: return "add_scalar";
    case Unary::Neg: return "neg";
    case Unary::Exp: return "exp";
    case Unary::Log: return "log";
    case Unary::Square: return "square";
  }
  return "?";
}

template <class T>
class UnaryOp final : public Op<T> {
 public:
  UnaryOp(Unary k, T s) : k_(k), s_(s) {}
  const char* name() const override { return unary_name(k_); }
  GradList<T> backward(const Tensor<T>& g) override {
    const Tensor<T>& x = this->inputs()[0].value();
    switch (k_) {
      case Unary::Scale: { const T s = s_; return {detail::map(g, [s](T v) { return s * v; })}; }
      case Unary::AddScalar: return {g};
      case Unary::Neg: return {detail::map(g, [](T v) { return -v; })};
      case Unary::Exp: return {detail::zip(g, this->output(), [](T gv, T y) { return gv * y; })};
      case Unary::Log: return {detail::zip(g, x, [](T gv, T xv) { return gv / xv; })};
      case Unary::Square: return {detail::zip(g, x, [](T gv, T xv) { return T(2) * xv * gv; })};
    }
    return {std::nullopt};
  }

 private:
  Unary k_;
  T s_;
};

template <class T>
Variable<T> unary(Unary k, const Variable<T>& x, T s, Tensor<T> y) {
  return record<UnaryOp<T>>(std::move(y), {x}, k, s);
}

}  // namespace

template <class T> Variable<T> add(const Variable<T>& a, const Variable<T>& b) { return binary(Binary::Add, a, b); }
template <class T> Variable<T> sub(const Variable<T>& a, const Variable<T>& b) { return binary(Binary::Sub, a, b); }
template <class T> Variable<T> mul(const Variable<T>& a, const Variable<T>& b) { return binary(Binary::Mul, a, b); }
template <class T> Variable<T> div(const Variable<T>& a, const Variable<T>& b) { return binary(Binary::Div, a, b); }

template <class T> Variable<T> scale(const Variable<T>& x, T s) {
  profiler::ScopedForward prof("scale");
  return unary(Unary::Scale, x, s, detail::map(x.value(), [s](T v) { return s * v; }));
}
template <class T> Variable<T> add_scalar(const Variable<T>& x, T s) {
  profiler::ScopedForward prof("add_scalar");
  return unary(Unary::AddScalar, x, s, detail::map(x.value(), [s](T v) { return v + s; }));
}
template <class T> Variable<T> neg(const Variable<T>& x) {
  profiler::ScopedForward prof("neg");
  return unary(Unary::Neg, x, T(0), detail::map(x.value(), [](T v) { return -v; }));
}
template <class T> Variable<T> exp(const Variable<T>& x) {
  profiler::ScopedForward prof("exp");
  return unary(Unary::Exp, x, T(0), detail::map(x.value(), [](T v) { return std::exp(v); }));
}
template <class T> Variable<T> log(const Variable<T>& x) {
  profiler::ScopedForward prof("log");
  return unary(Unary::Log, x, T(0), detail::map(x.value(), [](T v) { return std::log(v); }));
}
template <class T> Variable<T> square(const Variable<T>& x) {
  profiler::ScopedForward prof("square");
  return unary(Unary::Square, x, T(0), detail::map(x.value(), [](T v) { return v * v; }));
}

#define XG_INSTANTIATE(T)                                                   \
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
