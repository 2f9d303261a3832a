// Activations (same shape in and out).
//
// relu:    y = max(x, 0)          dx = g · [x > 0]      (relu'(0) = 0, as PyTorch)
// sigmoid: y = 1 / (1 + e^-x)      dx = g · y · (1 - y)  (y saved; stable for large |x|)
// tanh:    y = tanh(x)             dx = g · (1 - y²)     (y saved)
#include <cmath>

#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

enum class Act { Relu, Sigmoid, Tanh };

template <class T>
class ActivationOp final : public Op<T> {
 public:
  ActivationOp(Act k, Tensor<T> y) : k_(k), y_(std::move(y)) {}
  const char* name() const override {
    switch (k_) {
      case Act::Relu: return "relu";
      case Act::Sigmoid: return "sigmoid";
      case Act::Tanh: return "tanh";
    }
    return "?";
  }
  GradList<T> backward(const Tensor<T>& g) override {
    switch (k_) {
      case Act::Relu: return {detail::zip(g, y_, [](T gv, T y) { return y > T(0) ? gv : T(0); })};
      case Act::Sigmoid: return {detail::zip(g, y_, [](T gv, T y) { return gv * y * (T(1) - y); })};
      case Act::Tanh: return {detail::zip(g, y_, [](T gv, T y) { return gv * (T(1) - y * y); })};
    }
    return {std::nullopt};
  }
  void release() override { y_ = Tensor<T>(); }

 private:
  Act k_;
  Tensor<T> y_;  // the output (relu's y > 0 exactly when x > 0)
};

template <class T>
T stable_sigmoid(T v) {
  if (v >= T(0)) return T(1) / (T(1) + std::exp(-v));
  const T e = std::exp(v);
  return e / (T(1) + e);
}

template <class T, class F>
Variable<T> activation(Act k, const Variable<T>& x, F f) {
  Tensor<T> y = detail::map(x.value(), f);
  if (!should_record<T>({&x})) return Variable<T>(std::move(y));
  Tensor<T> saved = y;
  return record<ActivationOp<T>>(std::move(y), {x}, k, std::move(saved));
}

}  // namespace

template <class T> Variable<T> relu(const Variable<T>& x) {
  return activation(Act::Relu, x, [](T v) { return v > T(0) ? v : T(0); });
}
template <class T> Variable<T> sigmoid(const Variable<T>& x) {
  return activation(Act::Sigmoid, x, [](T v) { return stable_sigmoid(v); });
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
