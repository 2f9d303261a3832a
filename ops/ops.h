#pragma once
/// \file ops.h
/// The public op API. Every function records its node when an input requires grad (define-by-run) and checks its
/// arguments when called, throwing `xg::ShapeError` that names the op and the offending shapes or values.
/// Shapes use PyTorch's conventions: images are NCHW, matrices are [rows, cols].
/// All ops are templates instantiated for `float` (training) and `double` (gradient checks).

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/random.h"
#include "core/variable.h"

namespace xg::ops {

/// A pair of extents for 2-D ops (height, width); an integer means the same for both.
struct Size2 {
  std::int64_t h, w;
  Size2(std::int64_t v) : h(v), w(v) {}  // NOLINT: implicit on purpose, as PyTorch's IntArrayRef accepts one int
  Size2(std::int64_t h_, std::int64_t w_) : h(h_), w(w_) {}
};
/// "(h, w)", as PyTorch prints a pair in its errors.
inline std::string to_string(Size2 v) {
  std::string s(1, '(');  // appended, not "(" + std::to_string(…): GCC 12 warns falsely (-Wrestrict) on that
  s.append(std::to_string(v.h)).append(", ").append(std::to_string(v.w)).push_back(')');
  return s;
}

/// An elementwise activation, to apply by value (`activation(x, a)`) or fused into an op's output pass (conv2d).
enum class Activation { None, Relu, Sigmoid, Tanh };
/// "none", "relu", "sigmoid" or "tanh".
const char* to_string(Activation a);

/// How a loss reduces over the batch (PyTorch's `reduction=`).
enum class Reduction { Mean, Sum, None };

/// Class indices for classification losses, one per row (core/tensor.h).
using xg::Labels;

// ---- elementwise (elementwise.cpp): NumPy/PyTorch broadcasting; backward sums over the broadcast axes ----
template <class T> Variable<T> add(const Variable<T>& a, const Variable<T>& b);  ///< a + b, broadcast shapes
template <class T> Variable<T> sub(const Variable<T>& a, const Variable<T>& b);  ///< a - b, broadcast shapes
template <class T> Variable<T> mul(const Variable<T>& a, const Variable<T>& b);  ///< a * b, broadcast shapes
template <class T> Variable<T> div(const Variable<T>& a, const Variable<T>& b);  ///< a / b, broadcast shapes
template <class T> Variable<T> scale(const Variable<T>& x, T s);       ///< s * x, same shape
template <class T> Variable<T> add_scalar(const Variable<T>& x, T s);  ///< x + s, same shape
template <class T> Variable<T> neg(const Variable<T>& x);              ///< -x
template <class T> Variable<T> exp(const Variable<T>& x);              ///< e^x
template <class T> Variable<T> log(const Variable<T>& x);              ///< natural log (x > 0 for finite values)
template <class T> Variable<T> square(const Variable<T>& x);           ///< x²
template <class T> Variable<T> sqrt(const Variable<T>& x);             ///< √x (x ≥ 0 for finite values)
template <class T> Variable<T> pow(const Variable<T>& x, T p);         ///< x^p for a finite scalar p
template <class T> Variable<T> abs(const Variable<T>& x);              ///< |x|; gradient sign(x), 0 at 0
/// min(max(x, lo), hi); the gradient passes where lo ≤ x ≤ hi. ShapeError when lo > hi.
template <class T> Variable<T> clamp(const Variable<T>& x, T lo, T hi);
template <class T> Variable<T> rsub(T s, const Variable<T>& x);        ///< s − x (what `s - x` calls)
template <class T> Variable<T> rdiv(T s, const Variable<T>& x);        ///< s / x (what `s / x` calls)
/// Elementwise minimum and maximum with broadcasting; on a tie each input gets half the gradient; NaN propagates.
template <class T> Variable<T> minimum(const Variable<T>& a, const Variable<T>& b);
template <class T> Variable<T> maximum(const Variable<T>& a, const Variable<T>& b);

// ---- reductions (reduce.cpp) ----
template <class T> Variable<T> sum(const Variable<T>& x);  ///< sum of all elements -> shape []
/// Sum along `dim` (negative counts from the end); keepdim keeps it with extent 1.
template <class T> Variable<T> sum(const Variable<T>& x, std::int64_t dim, bool keepdim = false);
template <class T> Variable<T> mean(const Variable<T>& x);  ///< mean of all elements -> shape []
template <class T> Variable<T> mean(const Variable<T>& x, std::int64_t dim, bool keepdim = false);

// ---- activations (activations.cpp): same shape in and out ----
template <class T> Variable<T> relu(const Variable<T>& x);     ///< max(x, 0); relu'(0) = 0
template <class T> Variable<T> sigmoid(const Variable<T>& x);  ///< 1 / (1 + e^-x)
template <class T> Variable<T> tanh(const Variable<T>& x);     ///< tanh(x)
/// relu, sigmoid or tanh of x as chosen by `a` (x itself for Activation::None). `Activation` is the closed set conv2d
/// can fuse into its output pass; every other activation is an op of its own (below), one file each.
template <class T> Variable<T> activation(const Variable<T>& x, Activation a);
/// x for x > 0, slope·x otherwise (leaky_relu.cpp). ShapeError for a non-finite slope.
template <class T> Variable<T> leaky_relu(const Variable<T>& x, T slope = T(0.01));
/// x for x > 0, α(eˣ − 1) otherwise (elu.cpp). ShapeError unless α > 0.
template <class T> Variable<T> elu(const Variable<T>& x, T alpha = T(1));
/// gelu's exact form x·Φ(x) or PyTorch's tanh approximation (gelu.cpp).
enum class GeluApproximation { None, Tanh };
template <class T> Variable<T> gelu(const Variable<T>& x, GeluApproximation approximate = GeluApproximation::None);
/// log(1 + e^(βx))/β, linear where βx > threshold (softplus.cpp). ShapeError unless β > 0.
template <class T> Variable<T> softplus(const Variable<T>& x, T beta = T(1), T threshold = T(20));
/// x·σ(x), also called swish (silu.cpp).
template <class T> Variable<T> silu(const Variable<T>& x);

// ---- softmax family (softmax.cpp): along `dim` (default last) ----
template <class T> Variable<T> softmax(const Variable<T>& x, std::int64_t dim = -1);
template <class T> Variable<T> log_softmax(const Variable<T>& x, std::int64_t dim = -1);

// ---- losses (losses.cpp) ----
/// Negative log-likelihood of `log_probs [N,C]` at `labels` (N entries in [0, C)).
template <class T> Variable<T> nll_loss(const Variable<T>& log_probs, const Labels& labels, Reduction r = Reduction::Mean);
/// Fused log-softmax + NLL over `logits [N,C]`; stable for logits of any magnitude.
template <class T> Variable<T> cross_entropy(const Variable<T>& logits, const Labels& labels, Reduction r = Reduction::Mean);
/// Mean (or summed) squared error between same-shaped `input` and `target`.
template <class T> Variable<T> mse_loss(const Variable<T>& input, const Variable<T>& target, Reduction r = Reduction::Mean);

// ---- matrix products (matmul.cpp, BLAS) ----
/// torch.matmul: a [M,K] x b [K,N] -> [M,N]; a 1-D a [K] is a row and a 1-D b [K] a column, the added dimension
/// dropped from the result ([K]·[K] -> a 0-d dot product, [M,K]·[K] -> [M], [K]·[K,N] -> [N]); leading dimensions
/// beyond two are batch dimensions, broadcast (NumPy rules): [*,M,K]·[*,K,N] -> [*,M,N], e.g. [2,1,3,4]·[5,4,6] ->
/// [2,5,3,6]. bmm is the unbroadcast [B,M,K]·[B,K,N].
template <class T> Variable<T> matmul(const Variable<T>& a, const Variable<T>& b);
/// PyTorch's F.linear: x [*,in] x wᵀ (w [out,in]) + b [out] (b may be undefined) -> [*,out] (any leading dimensions,
/// none for a 1-D x).
template <class T> Variable<T> linear(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b = {});

// ---- shape (reshape.cpp) ----
/// Same elements, new shape; one extent may be -1 (inferred).
template <class T> Variable<T> reshape(const Variable<T>& x, const std::vector<std::int64_t>& shape);
/// Merges dims start_dim..end_dim into one (default: all but the batch axis).
template <class T> Variable<T> flatten(const Variable<T>& x, std::int64_t start_dim = 1, std::int64_t end_dim = -1);

// ---- convolution and pooling (one file each) ----
/// Cross-correlation, as torch::conv2d: x [N,C,H,W], w [F,C,KH,KW], b [F] or undefined ->
/// [N,F,(H+2ph-dh(KH-1)-1)/sh+1,(W+2pw-dw(KW-1)-1)/sw+1].
/// `fused` applies an activation to the output in the same pass as the bias (and its derivative in the backward's
/// first pass): the same bits as `activation(conv2d(...), fused)`, one op recorded and one tensor fewer.
template <class T>
Variable<T> conv2d(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b = {}, Size2 stride = 1,
                   Size2 padding = 0, Size2 dilation = 1, Activation fused = Activation::None);
/// max_pool2d(activation(conv2d(x, w, b, stride, padding, dilation), fused), pool) — windows of `pool` with stride
/// `pool`, no padding — as one node, without the convolution's output (or its gradient) ever stored as a tensor (each
/// block is pooled, and rebuilt in backward, in per-thread scratch) and with the activation's derivative taken on the
/// pooled size. The output and db are the two ops' bits. So are dw and dx for patches shorter than 64 values
/// (C·KH·KW: the MNIST first layers); for longer patches the backward visits only the window maxima with a non-zero
/// gradient — a quarter of the cells at most, for 2×2 windows — instead of dense GEMMs over a gradient that is zero
/// elsewhere: the same products added in another order, so dw and dx equal the two ops' within rounding (tested;
/// what it saves is measured in docs/performance.md). Output [N, F, OH / pool.h, OW / pool.w] (OH, OW:
/// conv2d's; rows and columns past the last whole window are dropped, as max_pool2d does). Named
/// "conv2d+relu+max_pool2d" etc. in graphs, profiles and errors. nn::conv2d_pool picks it for a Conv2d followed by
/// such a MaxPool2d. Differences from the two ops with non-finite values only: a cell the pool did not select adds
/// nothing here, where the two ops add 0 · act'(y) (NaN for a NaN y with sigmoid/tanh); and, for long patches, neither
/// does a cell with a zero gradient (not selected, or selected with act'·g = 0, e.g. a ReLU-clamped maximum), where
/// the two ops add 0 · x to dw and 0 · w to dx (NaN where x or w is ±inf or NaN). Anomaly mode checks only the pooled output
/// (nn::conv2d_pool runs the two ops in anomaly mode).
template <class T>
Variable<T> conv2d_max_pool2d(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b, Size2 pool,
                              Size2 stride = 1, Size2 padding = 0, Size2 dilation = 1,
                              Activation fused = Activation::None);
/// Transposed convolution (the adjoint of conv2d in its input), x [N,C_in,H,W], w [C_in,C_out,KH,KW], b [C_out] →
/// [N,C_out,OH,OW], OH = (H−1)·sh − 2ph + dh(KH−1) + output_padding + 1; output_padding < stride or < dilation.
template <class T>
Variable<T> conv_transpose2d(const Variable<T>& x, const Variable<T>& w, const Variable<T>& b = {}, Size2 stride = 1,
                             Size2 padding = 0, Size2 output_padding = 0, Size2 dilation = 1);
/// Max over each window, x [N,C,H,W] -> [N,C,(H+2ph-kh)/sh+1,(W+2pw-kw)/sw+1]; stride defaults to the kernel.
/// The gradient of a window goes to its first maximum in row-major order; padded cells never win.
template <class T>
Variable<T> max_pool2d(const Variable<T>& x, Size2 kernel, std::optional<Size2> stride = {}, Size2 padding = 0);
/// L2 pooling: sqrt of the sum of squares over each window (padded cells count as 0). Same shapes as max_pool2d.
/// Gradient x / y, and exactly 0 where a window is all zero.
template <class T>
Variable<T> l2_pool2d(const Variable<T>& x, Size2 kernel, std::optional<Size2> stride = {}, Size2 padding = 0);
/// Average over each window. With count_include_pad (PyTorch's default) padded cells count as zeros in the mean.
template <class T>
Variable<T> avg_pool2d(const Variable<T>& x, Size2 kernel, std::optional<Size2> stride = {}, Size2 padding = 0,
                       bool count_include_pad = true);
/// Lp pooling: (Σ |x|^p)^(1/p) over each window, any finite p ≥ 1 (p = 2 is l2_pool2d). Same shapes as max_pool2d;
/// gradient sign(x)·(|x|/y)^(p−1) (at x = 0: 0 for p > 1, g for p = 1), exactly 0 where a window is all zero. (PyTorch's lp_pool2d uses x^p without |·|:
/// equal for non-negative inputs; see lp_pool2d.cpp.)
template <class T>
Variable<T> lp_pool2d(const Variable<T>& x, double p, Size2 kernel, std::optional<Size2> stride = {}, Size2 padding = 0);
/// Stochastic pooling (Zeiler & Fergus 2013) of non-negative x: in training, one cell per window drawn with
/// probability a/Σa (its value is the output, the gradient goes to it); in eval, Σa²/Σa. Draws come from `rng`, the
/// same at any thread count. A negative or non-finite input is a NumericError. Same shapes as max_pool2d.
template <class T>
Variable<T> stochastic_pool2d(const Variable<T>& x, Size2 kernel, std::optional<Size2> stride, Size2 padding,
                              bool training, Rng& rng);

// ---- split and chunk (split.cpp): one node, several outputs ----
/// Pieces of x along `dim` with the given sizes (summing to x's extent there); each piece is an output of one node
/// with its own gradient (an unused piece contributes zeros). ShapeError when the sizes do not add up.
template <class T>
std::vector<Variable<T>> split(const Variable<T>& x, const std::vector<std::size_t>& sizes, std::int64_t dim = 0);
/// `chunks` pieces of ceil(n / chunks) along `dim` (the last smaller, fewer when n is small), as PyTorch's chunk.
template <class T>
std::vector<Variable<T>> chunk(const Variable<T>& x, std::size_t chunks, std::int64_t dim = 0);

// ---- tensor ops: permute.cpp, cat.cpp, narrow.cpp, max_dim.cpp, where.cpp, bmm.cpp ----
/// x with its dims reordered (y.shape[i] = x.shape[dims[i]]); ShapeError unless dims is a permutation.
template <class T> Variable<T> permute(const Variable<T>& x, const std::vector<std::int64_t>& dims);
/// x with dims dim0 and dim1 swapped.
template <class T> Variable<T> transpose(const Variable<T>& x, std::int64_t dim0, std::int64_t dim1);
/// The tensors joined along `dim` (all other extents equal).
template <class T> Variable<T> cat(const std::vector<Variable<T>>& xs, std::int64_t dim = 0);
/// The tensors (all one shape) joined along a new dim.
template <class T> Variable<T> stack(const std::vector<Variable<T>>& xs, std::int64_t dim = 0);
/// x[…, start : start + length, …] along dim.
template <class T> Variable<T> narrow(const Variable<T>& x, std::int64_t dim, std::size_t start, std::size_t length);
/// The rows `index` of x along dim (repeats allowed; their gradients add up).
template <class T> Variable<T> index_select(const Variable<T>& x, std::int64_t dim, const std::vector<std::int64_t>& index);
/// max/min along a dim: the values (differentiable: the gradient goes to the first extremum) and their indices.
template <class T>
struct DimResult {
  Variable<T> values;
  Tensor<std::int64_t> indices;
};
template <class T> DimResult<T> max(const Variable<T>& x, std::int64_t dim, bool keepdim = false);
template <class T> DimResult<T> min(const Variable<T>& x, std::int64_t dim, bool keepdim = false);
/// The index of the maximum along dim (the first on ties; NaN wins); no gradient.
template <class T> Tensor<std::int64_t> argmax(const Variable<T>& x, std::int64_t dim = -1, bool keepdim = false);
/// cond ? a : b elementwise (one shape for all three).
template <class T> Variable<T> where(const Tensor<bool>& cond, const Variable<T>& a, const Variable<T>& b);
/// Batched matrix product: [B,M,K] · [B,K,N] → [B,M,N].
template <class T> Variable<T> bmm(const Variable<T>& a, const Variable<T>& b);

// ---- normalisation and adaptive pooling: batch_norm.cpp, layer_norm.cpp, group_norm.cpp, adaptive_avg_pool2d.cpp ----
/// Batch normalisation over channel dim 1 of x [N,C], [N,C,L] or [N,C,H,W] (PyTorch's F.batch_norm): in training the
/// batch's statistics, updating *running_mean and *running_var in place (when given) with `momentum`; in eval the
/// running ones. weight (γ) and bias (β) of shape [C] may be undefined (1 and 0). Stricter than PyTorch, which
/// accepts these and computes nonsense or NaN: eps must be > 0 and momentum in [0, 1]; training needs more than one
/// value per channel (PyTorch's rule, applied to an empty batch too). Each is an error naming the values.
template <class T>
Variable<T> batch_norm(const Variable<T>& x, Tensor<T>* running_mean, Tensor<T>* running_var, const Variable<T>& weight,
                       const Variable<T>& bias, bool training, double momentum = 0.1, double eps = 1e-5);
/// Layer normalisation over the trailing `normalized_shape` of x; weight and bias of that shape may be undefined.
/// eps must be > 0 (PyTorch accepts 0, which divides by zero on a constant row).
template <class T>
Variable<T> layer_norm(const Variable<T>& x, const Shape& normalized_shape, const Variable<T>& weight = {},
                       const Variable<T>& bias = {}, double eps = 1e-5);
/// Group normalisation (PyTorch's F.group_norm, group_norm.cpp): x [N,C,*] normalised over each sample's `groups`
/// groups of C/groups channels, then weight [C] and bias [C] (undefined: 1 and 0) per channel. ShapeError naming the
/// values when C does not divide into the groups, weight or bias is not [C], or eps ≤ 0.
template <class T>
Variable<T> group_norm(const Variable<T>& x, std::size_t groups, const Variable<T>& weight = {}, const Variable<T>& bias = {},
                       double eps = 1e-5);
/// Average pooling to a fixed output size (PyTorch's adaptive windows).
template <class T> Variable<T> adaptive_avg_pool2d(const Variable<T>& x, Size2 output_size);

// ---- regularisation (dropout.cpp, dropout2d.cpp) ----
/// Inverted dropout: in training, zeroes each element with probability p (drawn from `rng`) and scales the rest by
/// 1/(1-p); identity when `training` is false or p == 0.
template <class T> Variable<T> dropout(const Variable<T>& x, double p, bool training, Rng& rng);
/// Channel dropout: whole channels of x [N,C,…] zeroed with probability p in training, the rest scaled by 1/(1 − p).
template <class T> Variable<T> dropout2d(const Variable<T>& x, double p, bool training, Rng& rng);

}  // namespace xg::ops

namespace xg {
// Operator overloads over Variables and scalars (found by ADL).
template <class T> Variable<T> operator+(const Variable<T>& a, const Variable<T>& b) { return ops::add(a, b); }
template <class T> Variable<T> operator-(const Variable<T>& a, const Variable<T>& b) { return ops::sub(a, b); }
template <class T> Variable<T> operator*(const Variable<T>& a, const Variable<T>& b) { return ops::mul(a, b); }
template <class T> Variable<T> operator/(const Variable<T>& a, const Variable<T>& b) { return ops::div(a, b); }
template <class T> Variable<T> operator-(const Variable<T>& a) { return ops::neg(a); }
// The scalar side is not deduced (std::type_identity_t), so any arithmetic literal works: `2 * x`, `1.0 - x`,
// `1 / x` with a Variable<float> or Variable<double>.
template <class T> Variable<T> operator*(const Variable<T>& a, std::type_identity_t<T> s) { return ops::scale(a, s); }
template <class T> Variable<T> operator*(std::type_identity_t<T> s, const Variable<T>& a) { return ops::scale(a, s); }
template <class T> Variable<T> operator/(const Variable<T>& a, std::type_identity_t<T> s) { return ops::scale(a, T(1) / s); }
template <class T> Variable<T> operator/(std::type_identity_t<T> s, const Variable<T>& a) { return ops::rdiv(s, a); }
template <class T> Variable<T> operator+(const Variable<T>& a, std::type_identity_t<T> s) { return ops::add_scalar(a, s); }
template <class T> Variable<T> operator+(std::type_identity_t<T> s, const Variable<T>& a) { return ops::add_scalar(a, s); }
template <class T> Variable<T> operator-(const Variable<T>& a, std::type_identity_t<T> s) { return ops::add_scalar(a, -s); }
template <class T> Variable<T> operator-(std::type_identity_t<T> s, const Variable<T>& a) { return ops::rsub(s, a); }
}  // namespace xg
