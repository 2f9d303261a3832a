// gelu, exact:  y = x·Φ(x) = ½x(1 + erf(x/√2));                dy/dx = Φ(x) + x·φ(x),  φ(x) = e^(−x²/2)/√(2π)
// gelu, tanh:   y = ½x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³);  dy/dx = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)
// (PyTorch's approximate="none" and "tanh").
#include <cmath>

#include "ops/pointwise.h"

namespace xg::ops {

template <class T>
Variable<T> gelu(const Variable<T>& x, GeluApproximation approximate) {
  OpCall call("gelu");
  constexpr double kSqrt2OverPi = 0.79788456080286535588, kInvSqrt2 = 0.70710678118654752440;
  constexpr double kInvSqrt2Pi = 0.39894228040143267794, kC = 0.044715;
  if (approximate == GeluApproximation::Tanh)
    return detail::pointwise(call, x,
                             [](T v) { return T(0.5) * v * (T(1) + std::tanh(T(kSqrt2OverPi) * (v + T(kC) * v * v * v))); },
                             [](T v) {
                               const T t = std::tanh(T(kSqrt2OverPi) * (v + T(kC) * v * v * v));
                               return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * T(kSqrt2OverPi) * (T(1) + T(3 * kC) * v * v);
                             });
  return detail::pointwise(call, x, [](T v) { return T(0.5) * v * (T(1) + std::erf(v * T(kInvSqrt2))); },
                           [](T v) {
                             return T(0.5) * (T(1) + std::erf(v * T(kInvSqrt2))) + v * T(kInvSqrt2Pi) * std::exp(T(-0.5) * v * v);
                           });
}

#define XG_INSTANTIATE(T) template Variable<T> gelu(const Variable<T>&, GeluApproximation);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
