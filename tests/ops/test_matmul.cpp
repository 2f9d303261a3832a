// matmul and linear (BLAS).
#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

namespace {
Tensor<double> matmul_reference(const Tensor<double>& a, const Tensor<double>& b) {
  const std::size_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  Tensor<double> c = zeros<double>({m, n});
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t p = 0; p < k; ++p) c.data()[i * n + j] += a.data()[i * k + p] * b.data()[p * n + j];
  return c;
}
}  // namespace

TEST_SUITE("matmul") {

TEST_CASE("matmul matches a plain triple loop and passes gradcheck over a sweep of shapes") {
  std::uint64_t seed = 1;
  for (std::size_t m : {1, 2, 5})
    for (std::size_t k : {1, 3, 7})
      for (std::size_t n : {1, 4}) {
        CAPTURE(m);
        CAPTURE(k);
        CAPTURE(n);
        const auto a = random_tensor({m, k}, seed++), b = random_tensor({k, n}, seed++);
        CHECK(xgt::max_abs_diff(ops::matmul(Variable<double>(a), Variable<double>(b)).value(), matmul_reference(a, b)) < 1e-12);
        CHECK_GRADCHECK([](const auto& v) { return ops::matmul(v[0], v[1]); }, {a, b});
      }
}

TEST_CASE("a large matmul split into parallel row blocks matches the plain triple loop and passes gradcheck") {
  const auto a = random_tensor({150, 130}, 30), b = random_tensor({130, 120}, 31);  // 2.3M multiply-adds: blocked
  CHECK(xgt::max_abs_diff(ops::matmul(Variable<double>(a), Variable<double>(b)).value(), matmul_reference(a, b)) < 1e-11);
  GradcheckOptions o;
  o.max_checks_per_input = 40;
  CHECK_GRADCHECK([](const auto& v) { return ops::matmul(v[0], v[1]); }, {a, b}, o);
}

TEST_CASE("a fully connected layer on a small batch splits its GEMMs by columns: same values, same bits at 1, 2 and 3 threads") {
  // x [40,300] · wᵀ [300,180]: 2.2M multiply-adds in one row block, so the forward and the input gradient are split
  // into column blocks (core/linalg.h); the weight gradient [180,300] into row blocks.
  const auto x = random_tensor({40, 300}, 40), w = random_tensor({180, 300}, 41);
  Variable<double> vx(x, true), vw(w, true);
  ops::sum(ops::linear(vx, vw)).backward();
  Tensor<double> wt = Tensor<double>::from_shape({300, 180});
  for (std::size_t i = 0; i < 180; ++i)
    for (std::size_t j = 0; j < 300; ++j) wt.data()[j * 180 + i] = w.data()[i * 300 + j];
  CHECK(xgt::max_abs_diff(ops::linear(Variable<double>(x), Variable<double>(w)).value(), matmul_reference(x, wt)) < 1e-11);
  // d/dx Σ x·wᵀ = 1·w (every row the column sums of w); d/dw = 1ᵀ·x (every row the column sums of x).
  double err_x = 0, err_w = 0;
  for (std::size_t j = 0; j < 300; ++j) {
    double sum_w = 0, sum_x = 0;
    for (std::size_t i = 0; i < 180; ++i) sum_w += w.data()[i * 300 + j];
    for (std::size_t r = 0; r < 40; ++r) sum_x += x.data()[r * 300 + j];
    for (std::size_t r = 0; r < 40; ++r) err_x = std::max(err_x, std::abs(vx.grad().data()[r * 300 + j] - sum_w));
    for (std::size_t i = 0; i < 180; ++i) err_w = std::max(err_w, std::abs(vw.grad().data()[i * 300 + j] - sum_x));
  }
  CHECK(err_x < 1e-11);
  CHECK(err_w < 1e-11);
  const Tensor<float> wf = xt::cast<float>(w);
  xgt::check_thread_identity([&](const Variable<float>& v) { return ops::linear(v, Variable<float>(wf)); },
                             Tensor<float>(xt::cast<float>(x)));
}

TEST_CASE("matmul follows torch.matmul for 1-D and batched operands: values against per-entry products, and gradcheck") {
  // Reference: promote 1-D operands, broadcast the batch dimensions, multiply each entry with matmul_reference.
  struct Case {
    Shape a, b, out;
  };
  const std::vector<Case> cases{
      {{3}, {3}, {}},                        // dot product
      {{2, 3}, {3}, {2}},                    // matrix · vector
      {{3}, {3, 4}, {4}},                    // vector · matrix
      {{2, 2, 3}, {3, 4}, {2, 2, 4}},        // batched · matrix (folded into one product)
      {{3}, {2, 3, 4}, {2, 4}},              // vector · batched
      {{2, 2, 3}, {3}, {2, 2}},              // batched · vector
      {{2, 3}, {2, 3, 4}, {2, 2, 4}},        // matrix · batched
      {{2, 1, 2, 3}, {3, 3, 2}, {2, 3, 2, 2}},  // broadcast batches: A's entries used 3 times, B's twice
      {{1, 2, 3}, {2, 3, 4}, {2, 2, 4}},
  };
  std::uint64_t seed = 60;
  for (const Case& c : cases) {
    CAPTURE(shape_str(c.a));
    CAPTURE(shape_str(c.b));
    const auto a = random_tensor(c.a, seed++), b = random_tensor(c.b, seed++);
    const Variable<double> y = ops::matmul(Variable<double>(a), Variable<double>(b));
    REQUIRE(y.shape() == c.out);
    // Promote, then compute each broadcast entry.
    const Shape pa = c.a.size() == 1 ? Shape{1, c.a[0]} : c.a, pb = c.b.size() == 1 ? Shape{c.b[0], 1} : c.b;
    const std::size_t m = pa[pa.size() - 2], k = pa.back(), n = pb.back();
    // Batch dimensions right-aligned, size 1 repeated; output entry o's multi-index read back in each operand.
    const Shape ba(pa.begin(), pa.end() - 2), bb(pb.begin(), pb.end() - 2);
    const std::size_t r = std::max(ba.size(), bb.size());
    Shape batch(r);
    const auto dim = [&](const Shape& s, std::size_t i) { return i < r - s.size() ? std::size_t(1) : s[i - (r - s.size())]; };
    for (std::size_t i = 0; i < r; ++i) batch[i] = std::max(dim(ba, i), dim(bb, i));
    const auto entry = [&](const Shape& s, const std::vector<std::size_t>& idx) {
      std::size_t e = 0;
      for (std::size_t i = 0; i < r; ++i) e = e * dim(s, i) + (dim(s, i) == 1 ? 0 : idx[i]);
      return e;
    };
    double err = 0;
    std::vector<std::size_t> idx(r, 0);
    for (std::size_t o = 0; o < numel(batch); ++o) {
      for (std::size_t i = r, rest = o; i-- > 0; rest /= batch[i]) idx[i] = rest % batch[i];
      Tensor<double> am = Tensor<double>::from_shape({m, k}), bm = Tensor<double>::from_shape({k, n});
      std::copy_n(a.data() + entry(ba, idx) * m * k, m * k, am.data());
      std::copy_n(b.data() + entry(bb, idx) * k * n, k * n, bm.data());
      const auto ref = matmul_reference(am, bm);
      for (std::size_t j = 0; j < m * n; ++j) err = std::max(err, std::abs(y.value().data()[o * m * n + j] - ref.data()[j]));
    }
    CHECK(err < 1e-12);
    CHECK_GRADCHECK([](const auto& v) { return ops::matmul(v[0], v[1]); }, {a, b});
  }
}

TEST_CASE("batched matmul with broadcast batches is bit-identical at 1, 2 and 3 threads") {
  const Tensor<float> b = xt::cast<float>(random_tensor({3, 1, 16, 24}, 70));
  xgt::check_thread_identity([&](const Variable<float>& v) { return ops::matmul(v, Variable<float>(b)); },
                             Tensor<float>(xt::cast<float>(random_tensor({4, 20, 16}, 71))));
}

TEST_CASE("linear takes inputs with any leading dimensions, [*,in] -> [*,out], as F.linear") {
  const auto x = random_tensor({2, 3, 5}, 80), w = random_tensor({4, 5}, 81), b = random_tensor({4}, 82);
  const auto flat = ops::linear(Variable<double>(xt::eval(xt::reshape_view(x, {6, 5}))), Variable<double>(w), Variable<double>(b));
  const auto y = ops::linear(Variable<double>(x), Variable<double>(w), Variable<double>(b));
  REQUIRE(y.shape() == Shape{2, 3, 4});
  CHECK(xgt::max_abs_diff(Tensor<double>(xt::eval(xt::reshape_view(y.value(), {6, 4}))), flat.value()) == 0.0);
  CHECK(ops::linear(Variable<double>(random_tensor({5}, 83)), Variable<double>(w)).shape() == Shape{4});
  CHECK_GRADCHECK([](const auto& v) { return ops::linear(v[0], v[1], v[2]); }, {x, w, b});
  CHECK_GRADCHECK([](const auto& v) { return ops::linear(v[0], v[1]); }, {random_tensor({5}, 84), w});
}

TEST_CASE("linear equals x wT + b and passes gradcheck with and without bias") {
  const auto x = random_tensor({4, 6}, 10), w = random_tensor({3, 6}, 11), b = random_tensor({3}, 12);
  Tensor<double> wt = Tensor<double>::from_shape({6, 3});
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 6; ++j) wt.data()[j * 3 + i] = w.data()[i * 6 + j];
  auto ref = matmul_reference(x, wt);
  for (std::size_t r = 0; r < 4; ++r)
    for (std::size_t j = 0; j < 3; ++j) ref.data()[r * 3 + j] += b.data()[j];
  CHECK(xgt::max_abs_diff(ops::linear(Variable<double>(x), Variable<double>(w), Variable<double>(b)).value(), ref) < 1e-12);
  CHECK_GRADCHECK([](const auto& v) { return ops::linear(v[0], v[1], v[2]); }, {x, w, b});
  CHECK_GRADCHECK([](const auto& v) { return ops::linear(v[0], v[1]); }, {x, w});
}

TEST_CASE("matmul and linear in float32 agree with their float64 runs on MNIST-sized shapes") {
  auto r = check_float_against_double([](const auto& v) { return ops::matmul(v[0], v[1]); },
                                      {random_tensor({64, 432}, 13), random_tensor({432, 10}, 14)});
  CHECK_MESSAGE(r.ok, r.message);
  r = check_float_against_double([](const auto& v) { return ops::linear(v[0], v[1], v[2]); },
                                 {random_tensor({64, 640}, 15), random_tensor({100, 640}, 16), random_tensor({100}, 17)});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("shapes that cannot be multiplied raise a ShapeError naming both shapes") {
  Variable<double> a(random_tensor({2, 3}, 20)), b(random_tensor({4, 2}, 21));
  CHECK_THROWS_WITH_AS(ops::matmul(a, b), doctest::Contains("matmul: shapes [2,3] and [4,2] cannot be multiplied"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::matmul(a, Variable<double>(random_tensor({4}, 22))),
                       doctest::Contains("matmul: shapes [2,3] and [4] cannot be multiplied (the last dimension of the first, 3, "
                                         "must equal the length of the second, 4)"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(ops::matmul(Variable<double>(random_tensor({2, 2, 3}, 26)), Variable<double>(random_tensor({3, 3, 4}, 27))),
                       doctest::Contains("batch dimensions [2] and [3] do not broadcast"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::matmul(Variable<double>(zeros<double>({})), a),
                       doctest::Contains("both need at least one dimension"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::linear(a, Variable<double>(random_tensor({5, 4}, 23))), doctest::Contains("linear: input [2,3] and weight [5,4] do not match (expected input [*,in]"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::linear(a, Variable<double>(random_tensor({5, 3}, 24)), Variable<double>(random_tensor({4}, 25))),
                       doctest::Contains("bias [4]"), ShapeError);
}

}  // TEST_SUITE
