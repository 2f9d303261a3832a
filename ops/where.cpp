// where: y = cond ? a : b elementwise (cond, a and b of one shape).
// Backward: da = g where cond, 0 elsewhere; db = g where !cond. cond has no gradient.
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

template <class T>
class WhereOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  explicit WhereOp(Tensor<bool> cond) : cond_(std::move(cond)) {}
  GradList<T> backward(const Tensor<T>& g) override {
    GradList<T> grads(2);
    for (std::size_t k = 0; k < 2; ++k) {
      if (!this->needs_grad(k)) continue;
      Tensor<T> d = xg::empty<T>(g.shape());
      for (std::size_t i = 0; i < d.size(); ++i) d.data()[i] = cond_.data()[i] == (k == 0) ? g.data()[i] : T(0);
      grads[k] = std::move(d);
    }
    return grads;
  }
  void release() override { cond_ = Tensor<bool>(); }

 private:
  Tensor<bool> cond_;
};

}  // namespace

template <class T>
Variable<T> where(const Tensor<bool>& cond, const Variable<T>& a, const Variable<T>& b) {
  OpCall call("where");
  if (shape_of(cond) != a.shape() || a.shape() != b.shape())
    throw call.error("condition " + shape_str(shape_of(cond)) + ", a " + shape_str(a.shape()) + " and b " +
                     shape_str(b.shape()) + " must have one shape");
  Tensor<T> y = xg::empty<T>(a.shape());
  for (std::size_t i = 0; i < y.size(); ++i) y.data()[i] = cond.data()[i] ? a.value().data()[i] : b.value().data()[i];
  return call.record<WhereOp<T>>(std::move(y), {a, b}, cond);
}

#define XG_INSTANTIATE(T) template Variable<T> where(const Tensor<bool>&, const Variable<T>&, const Variable<T>&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
