// split and chunk: one node with several outputs (the engine's multi-output ops).
//
// Forward:  x [..., n, ...] along dim → pieces y_k [..., s_k, ...] with Σ s_k = n, y_k = x[..., o_k : o_k + s_k, ...]
//           (o_k = s_0 + … + s_{k−1}). chunk(x, c) uses s = ceil(n / c) (the last piece smaller, fewer pieces when n is
//           small), as PyTorch's chunk.
// Backward: dx[..., o_k : o_k + s_k, ...] = g_k for every piece a gradient reached; zero where none did (an unused
//           piece costs no tensor of its own).
// Shapes:   any rank ≥ 1; dim may be negative. Copies of contiguous blocks: outer · s_k · inner elements per piece.
#include <cstring>

#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {
namespace {


template <class T>
class SplitOp final : public Op<T> {
 public:
  bool keeps_input(std::size_t) const override { return false; }  // backward reads no value: shapes and saved state
  bool keeps_output() const override { return false; }
  SplitOp(std::size_t dim, std::vector<std::size_t> sizes) : dim_(dim), sizes_(std::move(sizes)) {}
  GradList<T> backward_outputs(const std::vector<std::optional<Tensor<T>>>& g) override {
    const Shape xs = this->inputs()[0].shape();
    const detail::DimBlocks b = detail::dim_blocks(xs, dim_);
    Tensor<T> dx = zeros<T>(xs);
    std::size_t offset = 0;
    for (std::size_t k = 0; k < sizes_.size(); ++k) {
      if (g[k]) {
        const std::size_t run = sizes_[k] * b.inner;
        for (std::size_t o = 0; o < b.outer; ++o)
          std::memcpy(dx.data() + (o * b.n + offset) * b.inner, g[k]->data() + o * run, run * sizeof(T));
      }
      offset += sizes_[k];
    }
    return {std::move(dx)};
  }

 private:
  std::size_t dim_;
  std::vector<std::size_t> sizes_;
};

}  // namespace

template <class T>
std::vector<Variable<T>> split(const Variable<T>& x, const std::vector<std::size_t>& sizes, std::int64_t dim) {
  OpCall call("split");
  const std::size_t d = detail::normalize_dim(call.name(), dim, x.dim());
  const Shape xs = x.shape();
  // The sum is checked: sizes whose sum wraps around to the extent (q, q, q, q + 4 with q = 2^62) are refused, never
  // taken for pieces with no data behind them.
  std::size_t total = 0;
  bool wrapped = false;
  for (std::size_t s : sizes) wrapped = wrapped || __builtin_add_overflow(total, s, &total);
  if (sizes.empty() || wrapped || total != xs[d]) {
    std::string list;
    for (std::size_t s : sizes) list += (list.empty() ? "" : ", ") + std::to_string(s);
    throw call.error("sizes [" + list + "] must sum to the extent " + std::to_string(xs[d]) + " of dim " +
                     std::to_string(dim) + " of a tensor of shape " + shape_str(xs));
  }
  const detail::DimBlocks b = detail::dim_blocks(xs, d);
  std::vector<Tensor<T>> outs;
  std::size_t offset = 0;
  for (std::size_t s : sizes) {
    Shape ys = xs;
    ys[d] = s;
    Tensor<T> y = xg::empty<T>(ys);
    const std::size_t run = s * b.inner;
    for (std::size_t o = 0; o < b.outer; ++o)
      if (run) std::memcpy(y.data() + o * run, x.value().data() + (o * b.n + offset) * b.inner, run * sizeof(T));
    offset += s;
    outs.push_back(std::move(y));
  }
  return call.record_outputs<SplitOp<T>>(std::move(outs), {x}, d, sizes);
}

template <class T>
std::vector<Variable<T>> chunk(const Variable<T>& x, std::size_t chunks, std::int64_t dim) {
  // Not a node of its own (split with equal sizes): its errors name it.
  constexpr const char* op = "chunk";
  const std::size_t d = detail::normalize_dim(op, dim, x.dim());
  if (chunks == 0) throw ShapeError(std::string(op) + ": the number of chunks must be positive, got 0");
  const std::size_t n = x.shape()[d], size = std::max<std::size_t>(1, (n + chunks - 1) / chunks);
  std::vector<std::size_t> sizes;
  for (std::size_t o = 0; o < n; o += size) sizes.push_back(std::min(size, n - o));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, dim);
}

#define XG_INSTANTIATE(T)                                                                               \
  template std::vector<Variable<T>> split(const Variable<T>&, const std::vector<std::size_t>&, std::int64_t); \
  template std::vector<Variable<T>> chunk(const Variable<T>&, std::size_t, std::int64_t);
XG_FOR_EACH_REAL(XG_INSTANTIATE)

}  // namespace xg::ops
