#pragma once
// A differentiable op written outside xgrad's tree, with public headers only.
//
// Forward:  y = softplus(x) = log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|) (finite for any x)
// Backward: dx = g · sigmoid(x)
// Shapes:   any; y has x's shape.
#include <cmath>

#include "core/variable.h"
#include "ops/detail.h"  // map/zip kernels over .data(), run with xg::parallel_for

namespace my_ops {

template <class T>
class SoftplusOp final : public xg::Op<T> {
 public:
  bool keeps_output() const override { return false; }  // backward reads x, not y
  xg::GradList<T> backward(const xg::Tensor<T>& g) override {
    const xg::Tensor<T>& x = this->inputs()[0].value();
    return {xg::ops::detail::zip(g, x, [](T gv, T xv) { return gv / (T(1) + std::exp(-xv)); })};
  }
};

template <class T>
xg::Variable<T> softplus(const xg::Variable<T>& x) {
  xg::OpCall call("my_ops::softplus");  // the node's name in graphs, errors and the profiler; times the forward
  xg::Tensor<T> y = xg::ops::detail::map(x.value(), [](T v) { return std::max(v, T(0)) + std::log1p(std::exp(-std::abs(v))); });
  return call.record<SoftplusOp<T>>(std::move(y), {x});
}

}  // namespace my_ops
