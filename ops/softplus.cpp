// softplus: y = log(1 + e^(βx))/β, and y = x where βx > threshold (PyTorch's linear regime);
//           dy/dx = σ(βx), and 1 where βx > threshold. β > 0 (default 1), threshold default 20.
#include <cmath>

#include "ops/pointwise.h"

namespace xg::ops {

template <class T>
Variable<T> softplus(const Variable<T>& x, T beta, T threshold) {
  OpCall call("softplus");
  if (!(beta > T(0) && std::isfinite(beta))) throw call.error("beta must be positive and finite, got " + std::to_string(beta));
  return detail::pointwise(call, x,
                           [beta, threshold](T v) { return v * beta > threshold ? v : std::log1p(std::exp(beta * v)) / beta; },
                           [beta, threshold](T v) { return v * beta > threshold ? T(1) : T(1) / (T(1) + std::exp(-beta * v)); });
}

#define XG_INSTANTIATE(T) template Variable<T> softplus(const Variable<T>&, T, T);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
