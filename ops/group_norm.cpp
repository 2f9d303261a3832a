// group_norm: normalisation over groups of channels (PyTorch's F.group_norm). x [N,C,*] with C divisible by G; for
// each sample n and group k — channels k·C/G … (k+1)·C/G − 1 at every position, D = (C/G)·Π* values:
//   μ, σ² = mean and biased variance of the group;  x̂ = (x − μ)/√(σ² + ε);  y[n,c,…] = γ_c·x̂ + β_c  (γ, β [C];
//   undefined: 1 and 0).
// Built from ops — layer_norm over the last dim of x viewed as [N, G, D], then the per-channel affine broadcast over
// the positions — so its gradients are theirs: it has no backward of its own, and what they guarantee (thread-count
// identity, float64 checks) holds for it.
#include <cmath>

#include "ops/detail.h"
#include "ops/ops.h"

namespace xg::ops {

template <class T>
Variable<T> group_norm(const Variable<T>& x, std::size_t groups, const Variable<T>& weight, const Variable<T>& bias,
                       double eps) {
  OpCall call("group_norm");
  const Shape s = x.shape();
  if (s.size() < 2) throw call.error("expected input [N,C,*], got " + shape_str(s));
  const std::size_t n = s[0], c = s[1];
  if (groups == 0 || c % groups != 0)
    throw call.error("the " + std::to_string(c) + " channels of input " + shape_str(s) + " do not divide into " +
                     std::to_string(groups) + " groups");
  for (const Variable<T>* p : {&weight, &bias})
    if (p->defined() && p->shape() != Shape{c})
      throw call.error(std::string(p == &weight ? "weight" : "bias") + " must have shape [" + std::to_string(c) + "], got " +
                       shape_str(p->shape()));
  if (!(eps > 0)) throw call.error("eps must be positive, got " + std::to_string(eps));
  const std::size_t d = n == 0 ? 0 : x.numel() / (n * groups);
  std::vector<std::int64_t> shape(s.begin(), s.end()), per_channel(s.size(), 1);
  per_channel[1] = static_cast<std::int64_t>(c);
  Variable<T> y = reshape(x, {static_cast<std::int64_t>(n), static_cast<std::int64_t>(groups), static_cast<std::int64_t>(d)});
  y = reshape(layer_norm(y, Shape{d}, Variable<T>(), Variable<T>(), eps), shape);
  if (weight.defined()) y = y * reshape(weight, per_channel);
  if (bias.defined()) y = y + reshape(bias, per_channel);
  return y;
}

XG_INSTANTIATE_OP(group_norm)

}  // namespace xg::ops
