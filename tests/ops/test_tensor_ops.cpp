// permute/transpose, cat/stack, narrow/index_select, max/min/argmax along a dim, where and bmm: values, gradcheck,
// float32 against float64, errors naming the op and the shapes.
#include "helpers.h"

using namespace xg;
using xgt::random_tensor;

TEST_SUITE("tensor ops") {

TEST_CASE("permute and transpose reorder dims, and their gradients are the inverse permutation") {
  Tensor<double> x = Tensor<double>::from_shape({2, 3, 4});
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<double>(i);
  const auto y = ops::permute(Variable<double>(x), {2, 0, 1});
  CHECK(y.shape() == Shape{4, 2, 3});
  CHECK(y.value()(1, 1, 2) == x(1, 2, 1));
  const auto t = ops::transpose(Variable<double>(x), 0, -1);
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.value()(3, 1, 0) == x(0, 1, 3));
  CHECK_GRADCHECK([](const auto& v) { return ops::permute(v[0], {1, 2, 0}); }, {random_tensor({2, 3, 4}, 1)});
  CHECK_GRADCHECK([](const auto& v) { return ops::transpose(v[0], 0, 1); }, {random_tensor({3, 5}, 2)});
  CHECK_THROWS_WITH_AS(ops::permute(Variable<double>(x), {0, 0, 1}), doctest::Contains("permute: dims [0, 0, 1] repeat dim 0"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::permute(Variable<double>(x), {0, 1}), doctest::Contains("do not match the rank 3"), ShapeError);
}

TEST_CASE("cat and stack join tensors and hand each input its slice of the gradient") {
  const auto a = random_tensor({2, 3}, 3), b = random_tensor({2, 1}, 4), c = random_tensor({2, 3}, 5);
  const auto y = ops::cat(std::vector<Variable<double>>{Variable<double>(a), Variable<double>(b)}, 1);
  CHECK(y.shape() == Shape{2, 4});
  CHECK(y.value()(1, 3) == b(1, 0));
  CHECK(y.value()(1, 2) == a(1, 2));
  CHECK_GRADCHECK([](const auto& v) { return ops::cat(std::vector{v[0], v[1]}, -1); }, {a, b});
  CHECK_GRADCHECK([](const auto& v) { return ops::stack(std::vector{v[0], v[1]}, 1); }, {a, c});
  CHECK(ops::stack(std::vector{Variable<double>(a), Variable<double>(c)}, 2).shape() == Shape{2, 3, 2});
  CHECK_THROWS_WITH_AS(ops::cat(std::vector{Variable<double>(a), Variable<double>(random_tensor({3, 3}, 6))}, 1),
                       doctest::Contains("cat: tensor 1 has shape [3,3], which does not match [2,3] except in dim 1"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::stack(std::vector{Variable<double>(a), Variable<double>(b)}), doctest::Contains("stack: tensor 1 has shape [2,1]"), ShapeError);
}

TEST_CASE("narrow and index_select pick rows along a dim; repeated indices add their gradients") {
  const auto x = random_tensor({3, 5}, 7);
  const auto n = ops::narrow(Variable<double>(x), 1, 1, 3);
  CHECK(n.shape() == Shape{3, 3});
  CHECK(n.value()(2, 0) == x(2, 1));
  CHECK_GRADCHECK([](const auto& v) { return ops::narrow(v[0], 0, 1, 2); }, {x});
  CHECK_GRADCHECK([](const auto& v) { return ops::index_select(v[0], 1, {4, 0, 4}); }, {x});
  Variable<double> v(x, true);
  ops::sum(ops::index_select(v, 1, {2, 2})).backward();
  CHECK(v.grad()(0, 2) == 2.0);
  CHECK(v.grad()(0, 1) == 0.0);
  CHECK_THROWS_WITH_AS(ops::narrow(Variable<double>(x), 1, 4, 2), doctest::Contains("narrow: start 4 + length 2 exceeds the extent 5"), ShapeError);
  CHECK_THROWS_WITH_AS(ops::index_select(Variable<double>(x), 0, {3}), doctest::Contains("index_select: index 3 at position 0 is out of range"), ShapeError);
}

TEST_CASE("max and min along a dim return values and first indices; argmax matches; the gradient goes to the winner") {
  Tensor<double> x{{1.0, 5.0, 5.0}, {-2.0, -7.0, 0.5}};
  const auto m = ops::max(Variable<double>(x), 1);
  CHECK(m.values.value() == Tensor<double>{5.0, 0.5});
  CHECK(m.indices == Tensor<std::int64_t>{1, 2});  // the first of the tie
  const auto mn = ops::min(Variable<double>(x), 0, true);
  CHECK(mn.values.shape() == Shape{1, 3});
  CHECK(mn.indices == Tensor<std::int64_t>{{1, 1, 1}});
  CHECK(ops::argmax(Variable<double>(x)) == Tensor<std::int64_t>{1, 2});
  Variable<double> v(x, true);
  ops::sum(ops::max(v, 1).values).backward();
  CHECK(v.grad() == Tensor<double>{{0.0, 1.0, 0.0}, {0.0, 0.0, 1.0}});
  CHECK_GRADCHECK([](const auto& w) { return ops::max(w[0], 0).values; }, {xgt::distinct_tensor({3, 4}, 8)});
  CHECK_THROWS_WITH_AS(ops::max(Variable<double>(zeros<double>({2, 0})), 1), doctest::Contains("max: dim 1 of shape [2,0] is empty"), ShapeError);
}

TEST_CASE("where picks elementwise and routes the gradient by the condition; bmm multiplies batches") {
  const auto a = random_tensor({2, 3}, 9), b = random_tensor({2, 3}, 10);
  Tensor<bool> cond{{true, false, true}, {false, false, true}};
  const auto y = ops::where(cond, Variable<double>(a), Variable<double>(b));
  CHECK(y.value()(0, 1) == b(0, 1));
  CHECK(y.value()(1, 2) == a(1, 2));
  CHECK_GRADCHECK([cond](const auto& v) { return ops::where(cond, v[0], v[1]); }, {a, b});
  CHECK_THROWS_WITH_AS(ops::where(cond, Variable<double>(a), Variable<double>(random_tensor({3, 2}, 1))), doctest::Contains("where: condition [2,3]"), ShapeError);
  const auto p = random_tensor({3, 2, 4}, 11), q = random_tensor({3, 4, 5}, 12);
  const auto z = ops::bmm(Variable<double>(p), Variable<double>(q));
  CHECK(z.shape() == Shape{3, 2, 5});
  double ref = 0;
  for (std::size_t k = 0; k < 4; ++k) ref += p(2, 1, k) * q(2, k, 3);
  CHECK(z.value()(2, 1, 3) == doctest::Approx(ref));
  CHECK_GRADCHECK([](const auto& v) { return ops::bmm(v[0], v[1]); }, {p, q});
  const auto r = check_float_against_double([](const auto& v) { return ops::bmm(v[0], v[1]); }, {p, q});
  CHECK_MESSAGE(r.ok, r.message);
  CHECK_THROWS_WITH_AS(ops::bmm(Variable<double>(p), Variable<double>(p)), doctest::Contains("bmm: shapes [3,2,4] and [3,2,4] cannot be multiplied"), ShapeError);
}

}  // TEST_SUITE
