#pragma once
/// \file simd_kernels.h
/// float32 kernels compiled for several instruction sets (AVX-512, AVX2, baseline: XG_DISPATCH in simd_kernels.cpp)
/// and chosen at run time by xg::active_isa() (the CPU's features, lowered by XGRAD_ISA), so the binary stays portable
/// (no -march=native) while the hot loops use the widest vectors the CPU has.
/// They do elementwise arithmetic in a fixed order (no reassociation) and are compiled without floating-point
/// contraction (-ffp-contract=off, CMakeLists.txt), so a result depends only on its inputs: the same bits at every
/// position of a tensor (vector body, masked tail, scalar remainder), at any thread count, and on every copy
/// (AVX-512, AVX2, baseline), which tests/ops/test_kernel_positions.cpp checks on each path. The one exception is
/// sparse_rows_axpy, whose AVX-512 copy fuses each multiply-add (at every position alike): its bits differ from the
/// other copies' in the last place. NaN is the one narrowing: a result that is NaN is NaN everywhere, but where two
/// NaN operands meet (l2_pool_2x2_backward's (g/y)·x with both NaN) which one's sign and payload survive can depend
/// on the vector code, as x86 returns the first operand's NaN and a vectorised product may swap its operands.

#include <cstddef>
#include <cstdint>

namespace xg::ops::simd {

/// y[i] = 1 / (1 + e^(-x[i])), with e^ a Cephes-style polynomial (max relative error ~2e-7 against double);
/// exactly 0 for x < -88.7 and 1 for large x, never NaN for finite x.
void sigmoid(const float* x, float* y, std::size_t n);

/// y[i] = max(x[i], 0) (a NaN stays NaN).
void relu(const float* x, float* y, std::size_t n);
/// dx[i] = g[i] where y[i] > 0, else 0 (relu'(0) = 0).
void relu_backward(const float* g, const float* y, float* dx, std::size_t n);

/// 2×2 L2 pooling with stride 2 and no padding over one [h, w] plane: y = sqrt(a² + b² + c² + d²).
void l2_pool_2x2(const float* x, std::size_t h, std::size_t w, float* y);
/// Its backward for one plane: dx = g · x / y over each window, 0 where y == 0 (dx is written, not accumulated:
/// with stride 2 the windows do not overlap; cells outside every window, an odd last row or column, are set to 0).
void l2_pool_2x2_backward(const float* x, const float* y, const float* g, std::size_t h, std::size_t w, float* dx);

/// 2×2 max-pooling with stride 2 and no padding over one [h, w] plane into [h/2, w/2]: the maximum and, if `arg` is
/// not null, its index in the plane (the first maximum in row-major order wins; a NaN wins, as in PyTorch).
void max_pool_2x2(const float* x, std::size_t h, std::size_t w, float* y, std::int32_t* arg);

/// im2col of one image for a "valid" convolution (stride 1, no padding, no dilation), where every patch row is a
/// contiguous run of the input: x [c, h, w] → col rows (ci, i, j) of oh·ow values (row stride `ld`), value
/// (oh_, ow_) = x[ci, i + oh_, j + ow_].
void im2col_valid(const float* x, std::size_t c, std::size_t h, std::size_t w, std::size_t kh, std::size_t kw,
                  std::size_t oh, std::size_t ow, float* col, std::size_t ld);
/// Its adjoint: dx [c, h, w] += col2im(dcol), in the same order as the generic col2im (the same bits).
void col2im_valid(const float* dcol, std::size_t c, std::size_t h, std::size_t w, std::size_t kh, std::size_t kw,
                  std::size_t oh, std::size_t ow, float* dx, std::size_t ld);

/// im2row of one image for a valid convolution (stride 1, no padding, no dilation): rows [oh·ow, c·kh·kw], row
/// (oh_, ow_) = the patch x[ci, oh_ + i, ow_ + j] in (ci, i, j) order.
void im2row_valid(const float* x, std::size_t c, std::size_t h, std::size_t w, std::size_t kh, std::size_t kw,
                  std::size_t oh, std::size_t ow, float* rows);
/// Its adjoint for the positions with used[p] != 0: dx [c, h, w] += row2im(rows).
void row2im_valid(const float* rows, std::size_t c, std::size_t h, std::size_t w, std::size_t kh, std::size_t kw,
                  std::size_t oh, std::size_t ow, const std::uint8_t* used, float* dx);

/// out[0, len) = (accumulate ? out : 0) + Σ_j d[j] · src[idx[j]·len, idx[j]·len + len), j in order (each element's sum
/// in that order): one row of a product with a sparse factor, e.g. conv2d_max_pool2d's weight gradient (rows of
/// patches) and input gradient (rows of weights).
void sparse_rows_axpy(const float* d, const std::int32_t* idx, std::size_t count, const float* src, std::size_t len,
                      float* out, bool accumulate);

}  // namespace xg::ops::simd
