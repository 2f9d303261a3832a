// Losses. N rows, C classes; g is the upstream gradient (a scalar for Mean/Sum, [N] for None); w = 1/N for Mean.
//
// nll_loss:      L_n = -lp[n, y_n]                             d lp[n,c] = -g_n w · [c == y_n]
// cross_entropy: L_n = -x[n,y_n] + m_n + log Σ_c e^(x[n,c]-m_n)  dx[n,c]  = g_n w · (softmax(x)[n,c] - [c == y_n])
//                (fused log-softmax + NLL; m_n = row max, so logits of ±1000 stay finite)
// mse_loss:      L = Σ (a - b)² · w (w = 1/numel for Mean)       da = 2 g w (a - b),  db = -da
#include <cmath>

#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {

/// The rule for empty reductions (docs/architecture.md): a mean over zero elements is undefined and refused with a
/// ShapeError naming the op (PyTorch returns NaN, which xgrad never hands back silently); a sum over zero is 0.
void check_not_empty_mean(const char* op, std::size_t n, Reduction r, const std::string& what) {
  if (n == 0 && r == Reduction::Mean)
    throw ShapeError(std::string(op) + ": " + what + " is empty, so its mean is undefined (Reduction::Sum gives 0)");
}

template <class T>
void check_labels(const char* op, const Variable<T>& x, const Labels& labels) {
  detail::check_rank(op, "input", x, 2, "[N,C]");
  const std::size_t n = x.shape()[0], c = x.shape()[1];
  if (labels.size() != n)
    throw ShapeError(std::string(op) + ": expected input batch_size (" + std::to_string(n) +
                     ") to match target batch_size (" + std::to_string(labels.size()) + ")");
  if (c == 0) throw ShapeError(std::string(op) + ": the input has 0 classes (shape " + shape_str(x.shape()) + ")");
  for (std::size_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= static_cast<std::int64_t>(c))
      throw ShapeError(std::string(op) + ": target " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                       " is out of bounds for " + std::to_string(c) + " classes");
}

/// Per-row losses reduced as asked: a scalar for Mean/Sum, [N] for None.
template <class T>
Tensor<T> reduce_rows(const std::vector<T>& per_row, Reduction r) {
  if (r == Reduction::None) {
    Tensor<T> out = xg::empty<T>({per_row.size()});
    std::copy(per_row.begin(), per_row.end(), out.begin());
    return out;
  }
  T acc = T(0);
  for (T v : per_row) acc += v;
  if (r == Reduction::Mean) acc /= static_cast<T>(per_row.size());
  return full<T>({}, acc);
}

/// The weight of row n's gradient: g (scalar or per row) times 1/N for Mean.
template <class T>
T row_weight(const Tensor<T>& g, Reduction r, std::size_t n, std::size_t rows) {
  if (r == Reduction::None) return g.data()[n];
  return r == Reduction::Mean ? g.data()[0] / static_cast<T>(rows) : g.data()[0];
}

template <class T>
class NllLossOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  NllLossOp(Labels labels, Reduction r) : labels_(std::move(labels)), r_(r) {}
  GradList<T> backward(const Tensor<T>& g) override {
    const Shape s = this->inputs()[0].shape();
    Tensor<T> dx = zeros<T>(s);
    for (std::size_t n = 0; n < s[0]; ++n)
      dx.data()[n * s[1] + static_cast<std::size_t>(labels_[n])] = -row_weight(g, r_, n, s[0]);
    return {std::move(dx)};
  }

 private:
  Labels labels_;
  Reduction r_;
};

template <class T>
class CrossEntropyOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  CrossEntropyOp(Labels labels, Reduction r, Tensor<T> probs) : labels_(std::move(labels)), r_(r), p_(std::move(probs)) {}
  GradList<T> backward(const Tensor<T>& g) override {
    const std::size_t rows = p_.shape()[0], c = p_.shape()[1];
    Tensor<T> dx = xg::empty<T>(p_.shape());
    const T* pp = p_.data();
    T* pd = dx.data();
    for (std::size_t n = 0; n < rows; ++n) {
      const T w = row_weight(g, r_, n, rows);
      for (std::size_t k = 0; k < c; ++k) pd[n * c + k] = w * pp[n * c + k];
      pd[n * c + static_cast<std::size_t>(labels_[n])] -= w;
    }
    return {std::move(dx)};
  }
  void release() override { p_ = Tensor<T>(); }

 private:
  Labels labels_;
  Reduction r_;
  Tensor<T> p_;  // softmax(x)
};

template <class T>
class MseLossOp final : public Op<T> {
 public:
  bool keeps_output() const override { return false; }  // backward reads the inputs, not the output
  explicit MseLossOp(Reduction r) : r_(r) {}
  GradList<T> backward(const Tensor<T>& g) override {
    const Tensor<T>& a = this->inputs()[0].value();
    const Tensor<T>& b = this->inputs()[1].value();
    const std::size_t n = a.size();
    Tensor<T> da = xg::empty<T>(a.shape());
    for (std::size_t i = 0; i < n; ++i) {
      const T w = r_ == Reduction::None ? g.data()[i] : (r_ == Reduction::Mean ? g.data()[0] / static_cast<T>(n) : g.data()[0]);
      da.data()[i] = T(2) * w * (a.data()[i] - b.data()[i]);
    }
    GradList<T> grads(2);
    if (this->needs_grad(1)) {
      Tensor<T> db = da;
      for (auto& v : db) v = -v;
      grads[1] = std::move(db);
    }
    if (this->needs_grad(0)) grads[0] = std::move(da);
    return grads;
  }

 private:
  Reduction r_;
};

}  // namespace

template <class T>
Variable<T> nll_loss(const Variable<T>& log_probs, const Labels& labels, Reduction r) {
  OpCall call("nll_loss");
  check_labels(call.name(), log_probs, labels);
  check_not_empty_mean(call.name(), labels.size(), r, "the batch " + shape_str(log_probs.shape()));
  const std::size_t c = log_probs.shape()[1];
  std::vector<T> per_row(labels.size());
  for (std::size_t n = 0; n < labels.size(); ++n)
    per_row[n] = -log_probs.value().data()[n * c + static_cast<std::size_t>(labels[n])];
  return call.record<NllLossOp<T>>(reduce_rows(per_row, r), {log_probs}, labels, r);
}

template <class T>
Variable<T> cross_entropy(const Variable<T>& logits, const Labels& labels, Reduction r) {
  OpCall call("cross_entropy");
  check_labels(call.name(), logits, labels);
  check_not_empty_mean(call.name(), labels.size(), r, "the batch " + shape_str(logits.shape()));
  const std::size_t rows = logits.shape()[0], c = logits.shape()[1];
  const T* px = logits.value().data();
  Tensor<T> p = xg::empty<T>({rows, c});
  T* pp = p.data();
  std::vector<T> per_row(rows);
  for (std::size_t n = 0; n < rows; ++n) {
    const T* row = px + n * c;
    const auto [m, z] = detail::softmax_row(row, c, 1, pp + n * c);
    for (std::size_t k = 0; k < c; ++k) pp[n * c + k] /= z;
    per_row[n] = std::log(z) + m - row[labels[n]];
  }
  return call.record<CrossEntropyOp<T>>(reduce_rows(per_row, r), {logits}, labels, r, std::move(p));
}

template <class T>
Variable<T> mse_loss(const Variable<T>& input, const Variable<T>& target, Reduction r) {
  OpCall call("mse_loss");
  if (input.shape() != target.shape())
    throw call.error("input shape " + shape_str(input.shape()) + " and target shape " +
                     shape_str(target.shape()) + " differ");
  const std::size_t n = input.numel();
  check_not_empty_mean(call.name(), n, r, "the input " + shape_str(input.shape()));
  Tensor<T> out;
  if (r == Reduction::None) {
    out = detail::zip(input.value(), target.value(), [](T a, T b) { return (a - b) * (a - b); });
  } else {
    T acc = T(0);
    for (std::size_t i = 0; i < n; ++i) {
      const T d = input.value().data()[i] - target.value().data()[i];
      acc += d * d;
    }
    if (r == Reduction::Mean) acc /= static_cast<T>(n);
    out = full<T>({}, acc);
  }
  return call.record<MseLossOp<T>>(std::move(out), {input, target}, r);
}

#define XG_INSTANTIATE(T)                                                                \
  template Variable<T> nll_loss(const Variable<T>&, const Labels&, Reduction);           \
  template Variable<T> cross_entropy(const Variable<T>&, const Labels&, Reduction);      \
  template Variable<T> mse_loss(const Variable<T>&, const Variable<T>&, Reduction);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
