// Activations (same shape in and out).
//
// relu:    y = max(x, 0)          dx = g · [x > 0]      (relu'(0) = 0, as PyTorch)
// sigmoid: y = 1 / (1 + e^-x)      dx = g · y · (1 - y)  (finite for any x)
// tanh:    y = tanh(x)             dx = g · (1 - y²)
// Backward reads y through Op::output() (shared with the output Variable, not copied).
#include <cmath>

#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

enum class Act { Relu, Sigmoid, Tanh };

template <class T>
class ActivationOp final : public Op<T> {
 public:
  explicit ActivationOp(Act k) : k_(k) {}
  const char* name() const override {
    switch (k_) {
      case Act::Relu: return "relu";
      case Act::Sigmoid: return "sigmoid";
      case Act::Tanh: return "tanh";
    }
    return "?";
  }
  GradList<T> backward(const Tensor<T>& g) override {
    const Tensor<T>& y = this->output();
    switch (k_) {
      case Act::Relu: return {detail::zip(g, y, [](T gv, T yv) { return yv > T(0) ? gv : T(0); })};
      case Act::Sigmoid: return {detail::zip(g, y, [](T gv, T yv) { return gv * yv * (T(1) - yv); })};
      case Act::Tanh: return {detail::zip(g, y, [](T gv, T yv) { return gv * (T(1) - yv * yv); })};
    }
    return {std::nullopt};
  }

 private:
  Act k_;  // backward reads the output y (shared, not copied); relu's y > 0 exactly when x > 0
};

/// 1/(1 + e^-v) is exact at both ends in IEEE arithmetic: e^-v overflows to inf for v << 0, giving 0, never NaN.
template <class T>
T sigmoid_value(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

template <class T, class F>
Variable<T> activation(Act k, const Variable<T>& x, F f) {
  return record<ActivationOp<T>>(detail::map(x.value(), f), {x}, k);
}

}  // namespace

template <class T> Variable<T> relu(const Variable<T>& x) {
  return activation(Act::Relu, x, [](T v) { return v > T(0) ? v : T(0); });
}
template <class T> Variable<T> sigmoid(const Variable<T>& x) {
  return activation(Act::Sigmoid, x, [](T v) { return sigmoid_value(v); });
}
template <class T> Variable<T> tanh(const Variable<T>& x) {
  return activation(Act::Tanh, x, [](T v) { return std::tanh(v); });
}

#define XG_INSTANTIATE(T)                           \
  template Variable<T> relu(const Variable<T>&);    \
  template Variable<T> sigmoid(const Variable<T>&); \
  template Variable<T> tanh(const Variable<T>&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
