// layer_norm: normalisation over the last dims of x (PyTorch's F.layer_norm), per row r of the D = Π normalized dims:
//   μ_r, σ²_r = mean and biased variance of the row;  x̂ = (x − μ_r)/√(σ²_r + ε);  y = γ·x̂ + β (γ, β of the normalized
//   shape, elementwise; undefined: 1 and 0).
// Backward: dβ = Σ_rows g;  dγ = Σ_rows g·x̂;  dx = 1/√(σ²_r + ε)·(ĝ − mean_r(ĝ) − x̂·mean_r(ĝ·x̂)) with ĝ = g·γ.
// Rows in parallel over fixed chunks; dγ and dβ summed over rows in order afterwards (bit-identical at any thread count).
#include <cmath>

#include "core/parallel.h"
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

template <class T>
class LayerNormOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t i) const override { return i < 2; }  // x and the weight; never the bias
  bool keeps_output() const override { return false; }
  LayerNormOp(std::size_t rows, std::size_t d, std::vector<T> mean, std::vector<T> invstd)
      : rows_(rows), d_(d), mean_(std::move(mean)), invstd_(std::move(invstd)) {}
  GradList<T> backward(const Tensor<T>& g) override {
    const auto& in = this->inputs();
    const T* px = in[0].value().data();
    const T* pw = in[1].defined() ? in[1].value().data() : nullptr;
    const T* pg = g.data();
    Tensor<T> dx = xg::empty<T>(in[0].shape());
    parallel_for(0, rows_, std::max<std::size_t>(1, 4096 / std::max<std::size_t>(1, d_)), [&](std::size_t lo, std::size_t hi) {
      for (std::size_t r = lo; r < hi; ++r) {
        T a = 0, b = 0;  // Σ ĝ, Σ ĝ·x̂
        for (std::size_t j = 0; j < d_; ++j) {
          const std::size_t k = r * d_ + j;
          const T gh = pg[k] * (pw ? pw[j] : T(1)), xh = (px[k] - mean_[r]) * invstd_[r];
          a += gh;
          b += gh * xh;
        }
        const T inv_d = T(1) / static_cast<T>(d_);
        for (std::size_t j = 0; j < d_; ++j) {
          const std::size_t k = r * d_ + j;
          const T gh = pg[k] * (pw ? pw[j] : T(1)), xh = (px[k] - mean_[r]) * invstd_[r];
          dx.data()[k] = invstd_[r] * (gh - a * inv_d - xh * b * inv_d);
        }
      }
    });
    GradList<T> grads(in.size());
    if (this->needs_grad(0)) grads[0] = std::move(dx);
    if (in[1].defined() && this->needs_grad(1)) {
      Tensor<T> dw = zeros<T>(in[1].shape());
      for (std::size_t r = 0; r < rows_; ++r)
        for (std::size_t j = 0; j < d_; ++j) dw.data()[j] += pg[r * d_ + j] * (px[r * d_ + j] - mean_[r]) * invstd_[r];
      grads[1] = std::move(dw);
    }
    if (in[2].defined() && this->needs_grad(2)) {
      Tensor<T> db = zeros<T>(in[2].shape());
      for (std::size_t r = 0; r < rows_; ++r)
        for (std::size_t j = 0; j < d_; ++j) db.data()[j] += pg[r * d_ + j];
      grads[2] = std::move(db);
    }
    return grads;
  }

 private:
  std::size_t rows_, d_;
  std::vector<T> mean_, invstd_;
};

}  // namespace

template <class T>
Variable<T> layer_norm(const Variable<T>& x, const Shape& normalized_shape, const Variable<T>& weight,
                       const Variable<T>& bias, double eps) {
  OpCall call("layer_norm");
  const Shape xs = x.shape();
  const std::size_t k = normalized_shape.size();
  if (k == 0 || k > xs.size() || !std::equal(normalized_shape.begin(), normalized_shape.end(), xs.end() - static_cast<std::ptrdiff_t>(k)))
    throw call.error("normalized shape " + shape_str(normalized_shape) + " is not the trailing shape of input " + shape_str(xs));
  for (const auto* p : {&weight, &bias})
    if (p->defined() && p->shape() != normalized_shape)
      throw call.error("weight and bias must have the normalized shape " + shape_str(normalized_shape) + ", got " +
                       shape_str(p->shape()));
  if (!(eps > 0)) throw call.error("eps must be positive, got " + std::to_string(eps));
  std::size_t d = 1;
  for (auto e : normalized_shape) d *= e;
  const std::size_t rows = d ? x.numel() / d : 0;
  const T* px = x.value().data();
  const T* pw = weight.defined() ? weight.value().data() : nullptr;
  const T* pb = bias.defined() ? bias.value().data() : nullptr;
  std::vector<T> mean(rows), invstd(rows);
  Tensor<T> y = xg::empty<T>(xs);
  parallel_for(0, rows, std::max<std::size_t>(1, 4096 / std::max<std::size_t>(1, d)), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t r = lo; r < hi; ++r) {
      T s = 0;
      for (std::size_t j = 0; j < d; ++j) s += px[r * d + j];
      const T mu = s / static_cast<T>(d);
      T v = 0;
      for (std::size_t j = 0; j < d; ++j) v += (px[r * d + j] - mu) * (px[r * d + j] - mu);
      const T is = T(1) / std::sqrt(v / static_cast<T>(d) + static_cast<T>(eps));
      mean[r] = mu;
      invstd[r] = is;
      for (std::size_t j = 0; j < d; ++j)
        y.data()[r * d + j] = (px[r * d + j] - mu) * is * (pw ? pw[j] : T(1)) + (pb ? pb[j] : T(0));
    }
  });
  return call.record<LayerNormOp<T>>(std::move(y), {x, weight, bias}, rows, d, std::move(mean), std::move(invstd));
}

#define XG_INSTANTIATE(T) \
  template Variable<T> layer_norm(const Variable<T>&, const Shape&, const Variable<T>&, const Variable<T>&, double);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
