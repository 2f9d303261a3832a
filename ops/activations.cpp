// Activations (same shape in and out).
//
// relu:    y = max(x, 0)          dx = g · [x > 0]      (relu'(0) = 0 and relu(NaN) = NaN, as PyTorch)
// sigmoid: y = 1 / (1 + e^-x)      dx = g · y · (1 - y)  (finite for any x: e^-x overflows to inf, giving 0)
// tanh:    y = tanh(x)             dx = g · (1 - y²)
// Backward reads y through Op::output() (shared with the output Variable, not copied).
#include <cmath>
#include <type_traits>

#include "core/profiler.h"
#include "ops/detail.h"
#include "ops/simd_kernels.h"
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
      case Act::Relu:
        if constexpr (std::is_same_v<T, float>) {  // dispatched vector kernel
          Tensor<T> dx = Tensor<T>::from_shape(g.shape());
          parallel_for(0, g.size(), detail::kElementwiseGrain, [&](std::size_t lo, std::size_t hi) {
            simd::relu_backward(g.data() + lo, y.data() + lo, dx.data() + lo, hi - lo);
          });
          return {std::move(dx)};
        } else {
          return {detail::zip(g, y, [](T gv, T yv) { return yv > T(0) ? gv : T(0); })};
        }
      case Act::Sigmoid: return {detail::zip(g, y, [](T gv, T yv) { return gv * yv * (T(1) - yv); })};
      case Act::Tanh: return {detail::zip(g, y, [](T gv, T yv) { return gv * (T(1) - yv * yv); })};
    }
    return {std::nullopt};
  }

 private:
  Act k_;  // backward reads the output y (shared, not copied); relu's y > 0 exactly when x > 0
};

template <class T>
Variable<T> activation(Act k, const Variable<T>& x, Tensor<T> y) {
  return record<ActivationOp<T>>(std::move(y), {x}, k);
}

}  // namespace

template <class T> Variable<T> relu(const Variable<T>& x) {
  profiler::ScopedForward prof("relu");
  if constexpr (std::is_same_v<T, float>) {  // dispatched vector kernel
    Tensor<T> y = Tensor<T>::from_shape(x.value().shape());
    const T* px = x.value().data();
    T* py = y.data();
    parallel_for(0, y.size(), detail::kElementwiseGrain, [&](std::size_t lo, std::size_t hi) { simd::relu(px + lo, py + lo, hi - lo); });
    return activation(Act::Relu, x, std::move(y));
  } else {
    return activation(Act::Relu, x, detail::map(x.value(), [](T v) { return v > T(0) ? v : (v != v ? v : T(0)); }));
  }
}
template <class T> Variable<T> sigmoid(const Variable<T>& x) {  // 1/(1 + e^-x): e^-x overflows to inf for x << 0, giving 0
  profiler::ScopedForward prof("sigmoid");
  if constexpr (std::is_same_v<T, float>) {  // run-time dispatched vector kernel (simd_kernels.h)
    Tensor<T> y = Tensor<T>::from_shape(x.value().shape());
    const T* px = x.value().data();
    T* py = y.data();
    parallel_for(0, y.size(), detail::kElementwiseGrain,
                 [&](std::size_t lo, std::size_t hi) { simd::sigmoid(px + lo, py + lo, hi - lo); });
    return activation(Act::Sigmoid, x, std::move(y));
  } else {
    return activation(Act::Sigmoid, x, detail::map(x.value(), [](T v) { return T(1) / (T(1) + std::exp(-v)); }));
  }
}
template <class T> Variable<T> tanh(const Variable<T>& x) {
  profiler::ScopedForward prof("tanh");
  return activation(Act::Tanh, x, detail::map(x.value(), [](T v) { return std::tanh(v); }));
}

#define XG_INSTANTIATE(T)                           \
  template Variable<T> relu(const Variable<T>&);    \
  template Variable<T> sigmoid(const Variable<T>&); \
  template Variable<T> tanh(const Variable<T>&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
