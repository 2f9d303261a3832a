// Activations (same shape in and out).
//
// relu:    y = max(x, 0)          dx = g · [x > 0]      (relu'(0) = 0 and relu(NaN) = NaN, as PyTorch)
// sigmoid: y = 1 / (1 + e^-x)      dx = g · y · (1 - y)  (finite for any x: e^-x overflows to inf, giving 0)
// tanh:    y = tanh(x)             dx = g · (1 - y²)
// Backward reads y through Op::output() (shared with the output Variable, not copied). The per-element kernels
// (detail::activation_forward/backward) are shared with conv2d's fused activation, so both give the same bits.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "ops/detail.h"
#include "ops/simd_kernels.h"
#include "ops/ops.h"

namespace xg::ops {

namespace detail {

template <class T>
void activation_forward(Activation a, const T* x, T* y, std::size_t n) {
  switch (a) {
    case Activation::None:
      if (y != x) std::copy_n(x, n, y);
      return;
    case Activation::Relu:
      if constexpr (std::is_same_v<T, float>) simd::relu(x, y, n);  // dispatched vector kernel
      else for (std::size_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : (x[i] != x[i] ? x[i] : T(0));
      return;
    case Activation::Sigmoid:  // 1/(1 + e^-x): e^-x overflows to inf for x << 0, giving 0
      if constexpr (std::is_same_v<T, float>) simd::sigmoid(x, y, n);
      else for (std::size_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + std::exp(-x[i]));
      return;
    case Activation::Tanh:
      for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      return;
  }
}

template <class T>
void activation_backward(Activation a, const T* g, const T* y, T* dx, std::size_t n) {
  switch (a) {
    case Activation::None:
      if (dx != g) std::copy_n(g, n, dx);
      return;
    case Activation::Relu:
      if constexpr (std::is_same_v<T, float>) simd::relu_backward(g, y, dx, n);
      else for (std::size_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? g[i] : T(0);
      return;
    case Activation::Sigmoid:
      for (std::size_t i = 0; i < n; ++i) dx[i] = g[i] * y[i] * (T(1) - y[i]);
      return;
    case Activation::Tanh:
      for (std::size_t i = 0; i < n; ++i) dx[i] = g[i] * (T(1) - y[i] * y[i]);
      return;
  }
}

}  // namespace detail

const char* to_string(Activation a) {
  switch (a) {
    case Activation::None: return "none";
    case Activation::Relu: return "relu";
    case Activation::Sigmoid: return "sigmoid";
    case Activation::Tanh: return "tanh";
  }
  return "?";
}

namespace {

template <class T>
class ActivationOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads only the output
  explicit ActivationOp(Activation a) : a_(a) {}
  GradList<T> backward(const Tensor<T>& g) override {
    const Tensor<T>& y = this->output();
    Tensor<T> dx = xg::empty<T>(g.shape());
    parallel_for(0, g.size(), detail::kElementwiseGrain, [&](std::size_t lo, std::size_t hi) {
      detail::activation_backward(a_, g.data() + lo, y.data() + lo, dx.data() + lo, hi - lo);
    });
    return {std::move(dx)};
  }

 private:
  Activation a_;  // backward reads the output y (shared, not copied); relu's y > 0 exactly when x > 0
};

/// The call named after the activation (to_string(a): "relu", ...), timed and recorded.
template <class T>
Variable<T> apply(Activation a, const Variable<T>& x) {
  OpCall call(to_string(a));
  Tensor<T> y = xg::empty<T>(x.value().shape());
  const T* px = x.value().data();
  T* py = y.data();
  parallel_for(0, y.size(), detail::kElementwiseGrain,
               [&](std::size_t lo, std::size_t hi) { detail::activation_forward(a, px + lo, py + lo, hi - lo); });
  return call.record<ActivationOp<T>>(std::move(y), {x}, a);
}

}  // namespace

template <class T> Variable<T> relu(const Variable<T>& x) {
  return apply(Activation::Relu, x);
}
template <class T> Variable<T> sigmoid(const Variable<T>& x) {
  return apply(Activation::Sigmoid, x);
}
template <class T> Variable<T> tanh(const Variable<T>& x) {
  return apply(Activation::Tanh, x);
}
template <class T> Variable<T> activation(const Variable<T>& x, Activation a) {
  switch (a) {
    case Activation::None: return x;
    case Activation::Relu: return relu(x);
    case Activation::Sigmoid: return sigmoid(x);
    case Activation::Tanh: return tanh(x);
  }
  return x;
}

#define XG_INSTANTIATE(T)                                                                         \
  template Variable<T> relu(const Variable<T>&);                                                  \
  template Variable<T> sigmoid(const Variable<T>&);                                               \
  template Variable<T> tanh(const Variable<T>&);                                                  \
  template Variable<T> activation(const Variable<T>&, Activation);                                \
  template void detail::activation_forward(Activation, const T*, T*, std::size_t);                \
  template void detail::activation_backward(Activation, const T*, const T*, T*, std::size_t);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
