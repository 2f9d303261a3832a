// Matrix products through BLAS (core/linalg.h), with transpose flags instead of explicit transposes.
//
// matmul: C = A B,  A [M,K], B [K,N] -> [M,N]           dA = G Bᵀ,  dB = Aᵀ G
//         with torch.matmul's rules for other ranks: a 1-D A is a row [1,K] and a 1-D B a column [K,1] (the added
//         dimension is dropped from the result: 1-D·1-D is a 0-d dot product); with 3 or more dimensions the leading
//         ones are batch dimensions, broadcast against each other (NumPy rules): C[i] = A[ia(i)] · B[ib(i)]. A batch
//         entry of A used by several entries of C gets the sum of their dA, added in batch order (likewise B).
// linear: Y = X Wᵀ + b, X [*,in], W [out,in], b [out] -> [*,out]   dX = G W,   dW = Gᵀ X,  db = Σ_rows G
//         (the leading dimensions of X are rows of one product).
// Each partial is computed only when its input needs it. Large products are split into fixed blocks (parallel_gemm),
// batches over fixed chunks, each block or entry one single-threaded BLAS call: the same bits whatever xgrad's thread
// count.
#include "core/linalg.h"
#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

/// Rows of linear's input [*,in]: the product of its leading dimensions (1 for a 1-D input).
template <class S>
std::size_t rows_of(const S& s) {
  std::size_t r = 1;
  for (std::size_t i = 0; i + 1 < s.size(); ++i) r *= s[i];
  return r;
}

/// How matmul's operands line up: M, K, N of each product and, per entry of the broadcast batch, the entries of A and
/// B it reads (one entry, {0}, {0}, for plain 2-D products and for A's batches folded into M).
struct MatmulPlan {
  std::size_t m = 0, k = 0, n = 0;
  std::vector<std::size_t> a_of, b_of;  ///< per output batch entry: A's and B's entry
  std::size_t a_entries = 1, b_entries = 1;
  std::size_t batches() const { return a_of.size(); }
};

/// Σ over the output entries i that read operand entry s (in increasing i) of one product per i: into `dst` entry s,
/// the first with beta 0, the others added. Parallel over operand entries (disjoint writes).
template <class T, class Product>
void accumulate_by_entry(const std::vector<std::size_t>& entry_of, std::size_t entries, std::size_t entry_size, T* dst,
                         Product&& product) {
  std::vector<std::vector<std::size_t>> users(entries);
  for (std::size_t i = 0; i < entry_of.size(); ++i) users[entry_of[i]].push_back(i);
  parallel_for(0, entries, 1, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t s = lo; s < hi; ++s) {
      T* out = dst + s * entry_size;
      if (users[s].empty()) std::fill(out, out + entry_size, T(0));
      for (std::size_t j = 0; j < users[s].size(); ++j) product(users[s][j], out, j == 0 ? T(0) : T(1));
    }
  });
}

template <class T>
class MatmulOp final : public Op<T> {
 public:
  bool keeps_output() const override { return false; }  // backward reads the inputs, not the output
  explicit MatmulOp(MatmulPlan plan) : p_(std::move(plan)) {}
  GradList<T> backward(const Tensor<T>& g) override {
    const Tensor<T>& a = this->inputs()[0].value();
    const Tensor<T>& b = this->inputs()[1].value();
    const std::size_t m = p_.m, k = p_.k, n = p_.n;
    GradList<T> grads(2);
    if (p_.batches() == 1) {  // one product (2-D, or A's batches folded into M)
      if (this->needs_grad(0)) {
        Tensor<T> da = xg::empty<T>(a.shape());
        if (n == 0) std::fill(da.begin(), da.end(), T(0));
        else parallel_gemm<T>(false, true, m, k, n, T(1), g.data(), n, b.data(), n, T(0), da.data(), k);
        grads[0] = std::move(da);
      }
      if (this->needs_grad(1)) {
        Tensor<T> db = xg::empty<T>(b.shape());
        if (m == 0) std::fill(db.begin(), db.end(), T(0));
        else parallel_gemm<T>(true, false, k, n, m, T(1), a.data(), k, g.data(), n, T(0), db.data(), n);
        grads[1] = std::move(db);
      }
      return grads;
    }
    const T* pa = a.data();
    const T* pb = b.data();
    const T* pg = g.data();
    if (this->needs_grad(0)) {  // dA[s] = Σ_{i reads A[s]} G[i] · B[b_of(i)]ᵀ
      Tensor<T> da = xg::empty<T>(a.shape());
      accumulate_by_entry<T>(p_.a_of, p_.a_entries, m * k, da.data(), [&](std::size_t i, T* out, T beta) {
        if (n == 0 && beta == T(0)) std::fill(out, out + m * k, T(0));
        else gemm<T>(false, true, m, k, n, T(1), pg + i * m * n, n, pb + p_.b_of[i] * k * n, n, beta, out, k);
      });
      grads[0] = std::move(da);
    }
    if (this->needs_grad(1)) {  // dB[s] = Σ_{i reads B[s]} A[a_of(i)]ᵀ · G[i]
      Tensor<T> db = xg::empty<T>(b.shape());
      accumulate_by_entry<T>(p_.b_of, p_.b_entries, k * n, db.data(), [&](std::size_t i, T* out, T beta) {
        if (m == 0 && beta == T(0)) std::fill(out, out + k * n, T(0));
        else gemm<T>(true, false, k, n, m, T(1), pa + p_.a_of[i] * m * k, k, pg + i * m * n, n, beta, out, n);
      });
      grads[1] = std::move(db);
    }
    return grads;
  }

 private:
  MatmulPlan p_;
};

template <class T>
class LinearOp final : public Op<T> {
 public:
  bool keeps_output() const override { return false; }  // backward reads the inputs, not the output
  GradList<T> backward(const Tensor<T>& g) override {
    const Tensor<T>& x = this->inputs()[0].value();
    const Tensor<T>& w = this->inputs()[1].value();
    const std::size_t in = w.shape()[1], out = w.shape()[0], n = rows_of(x.shape());
    GradList<T> grads(3);
    if (this->needs_grad(0)) {
      Tensor<T> dx = xg::empty<T>(x.shape());
      parallel_gemm<T>(false, false, n, in, out, T(1), g.data(), out, w.data(), in, T(0), dx.data(), in);
      grads[0] = std::move(dx);
    }
    if (this->needs_grad(1)) {
      Tensor<T> dw = xg::empty<T>({out, in});
      parallel_gemm<T>(true, false, out, in, n, T(1), g.data(), out, x.data(), in, T(0), dw.data(), in);
      grads[1] = std::move(dw);
    }
    if (this->needs_grad(2)) {
      Tensor<T> db = zeros<T>({out});
      const T* pg = g.data();
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t j = 0; j < out; ++j) db.data()[j] += pg[r * out + j];
      grads[2] = std::move(db);
    }
    return grads;
  }
};

}  // namespace

template <class T>
Variable<T> matmul(const Variable<T>& a, const Variable<T>& b) {
  OpCall call("matmul");
  const Shape sa = a.shape(), sb = b.shape();
  const auto cannot = [&](const std::string& why) {
    return call.error("shapes " + shape_str(sa) + " and " + shape_str(sb) + " cannot be multiplied (" + why + ")");
  };
  if (sa.empty() || sb.empty()) throw cannot("both need at least one dimension");
  // The matrices (a 1-D A is a row, a 1-D B a column) and the batch dimensions before them.
  const std::size_t m = sa.size() == 1 ? 1 : sa[sa.size() - 2], k = sa.back();
  const std::size_t kb = sb.size() == 1 ? sb[0] : sb[sb.size() - 2], n = sb.size() == 1 ? 1 : sb.back();
  if (k != kb)
    throw cannot("the last dimension of the first, " + std::to_string(k) + ", must equal the " +
                 (sb.size() == 1 ? std::string("length") : std::string("second-to-last dimension")) + " of the second, " +
                 std::to_string(kb));
  const Shape batch_a(sa.begin(), sa.end() - std::min<std::size_t>(sa.size(), 2));
  const Shape batch_b(sb.begin(), sb.end() - std::min<std::size_t>(sb.size(), 2));
  Shape batch;
  try {
    batch = detail::broadcast_shape("matmul", batch_a, batch_b);
  } catch (const ShapeError&) {
    throw cannot("batch dimensions " + shape_str(batch_a) + " and " + shape_str(batch_b) + " do not broadcast");
  }
  Shape out_shape = batch;
  if (sa.size() > 1) out_shape.push_back(m);
  if (sb.size() > 1) out_shape.push_back(n);
  MatmulPlan plan;
  plan.k = k;
  plan.n = n;
  if (batch_b.empty() || numel(batch_b) == 1) {
    // B is one matrix: A's batch entries are consecutive rows of one product [Ba·M, K] · [K, N].
    plan.m = numel(batch) * m;
    plan.a_of = plan.b_of = {0};
  } else {
    plan.m = m;
    const std::size_t entries = numel(batch);
    plan.a_of.resize(entries);
    plan.b_of.resize(entries);
    plan.a_entries = numel(batch_a);
    plan.b_entries = numel(batch_b);
    const auto st_a = detail::broadcast_strides(batch_a, batch), st_b = detail::broadcast_strides(batch_b, batch);
    std::size_t i = 0;
    detail::for_each_broadcast(batch, st_a, st_b, [&](std::size_t, std::size_t ia, std::size_t ib) {
      plan.a_of[i] = ia;
      plan.b_of[i] = ib;
      ++i;
    });
  }
  Tensor<T> c = xg::empty<T>(out_shape);
  const std::size_t pm = plan.m;
  const T* pa = a.value().data();
  const T* pb = b.value().data();
  if (k == 0) {
    std::fill(c.begin(), c.end(), T(0));
  } else if (plan.batches() == 1) {
    parallel_gemm<T>(false, false, pm, n, k, T(1), pa, k, pb, n, T(0), c.data(), n);
  } else {
    T* pc = c.data();
    parallel_for(0, plan.batches(), 1, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i)
        gemm<T>(false, false, pm, n, k, T(1), pa + plan.a_of[i] * pm * k, k, pb + plan.b_of[i] * k * n, n, T(0),
                pc + i * pm * n, n);
    });
  }
  return call.record<MatmulOp<T>>(std::move(c), {a, b}, std::move(plan));
}

template <class T>
Variable<T> linear(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b) {
  OpCall call("linear");
  if (x.dim() < 1 || w.dim() != 2 || x.shape().back() != w.shape()[1])
    throw call.error("input " + shape_str(x.shape()) + " and weight " + shape_str(w.shape()) +
                     " do not match (expected input [*,in] and weight [out,in])");
  const std::size_t in = w.shape()[1], out = w.shape()[0], n = rows_of(x.shape());
  if (b.defined() && (b.dim() != 1 || b.shape()[0] != out))
    throw call.error("bias " + shape_str(b.shape()) + " does not match weight " + shape_str(w.shape()) +
                     " (expected [" + std::to_string(out) + "])");
  Shape y_shape = x.shape();
  y_shape.back() = out;
  Tensor<T> y = xg::empty<T>(y_shape);
  T* py = y.data();
  if (b.defined()) {
    const T* pb = b.value().data();
    for (std::size_t r = 0; r < n; ++r) std::copy(pb, pb + out, py + r * out);
  } else {
    std::fill(py, py + n * out, T(0));
  }
  if (in > 0) parallel_gemm<T>(false, true, n, out, in, T(1), x.value().data(), in, w.value().data(), in, T(1), py, out);
  return call.record<LinearOp<T>>(std::move(y), {x, w, b});
}

#define XG_INSTANTIATE(T)                                                     \
  template Variable<T> matmul(const Variable<T>&, const Variable<T>&);        \
  template Variable<T> linear(const Variable<T>&, const Variable<T>&, const Variable<T>&);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
