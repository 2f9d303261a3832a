// The communicator and the data-parallel pieces of framework/dist: shards, collectives, parameter broadcast and
// replica checks, the bucketed gradient reducer, agreement on failures. Every test here holds for any number of ranks:
// ctest runs this suite in one process (K = 1) and again under `mpirun -np 2` (tests/CMakeLists.txt), where the
// collectives are real. (Training data-parallel end to end: tests/models/test_data_parallel.cpp.)
#include <algorithm>
#include <cmath>
#include <cstring>

#include "dist/data_parallel.h"
#include "helpers.h"

using namespace xg;
using xgt::world;

namespace {
/// Parameters of the shapes of a Linear(7, 3), drawn from `rng`.
std::vector<Variable<float>> random_parameters(Rng& rng) {
  std::vector<Variable<float>> params;
  for (const Shape& s : {Shape{3, 7}, Shape{3}}) {
    Tensor<float> t = zeros<float>(s);
    for (auto& v : t) v = static_cast<float>(rng.uniform(-1.0, 1.0));
    params.emplace_back(std::move(t), true);
  }
  return params;
}
}  // namespace

TEST_SUITE("distributed") {

TEST_CASE("shards are contiguous, disjoint, balanced and cover every item in rank order") {
  for (std::size_t n = 0; n <= 20; ++n)
    for (int k = 1; k <= 5; ++k) {
      std::size_t next = 0, smallest = n, largest = 0;
      for (int r = 0; r < k; ++r) {
        const auto [b, e] = dist::shard(n, r, k);
        CHECK(b == next);
        CHECK(e >= b);
        next = e;
        smallest = std::min(smallest, e - b);
        largest = std::max(largest, e - b);
      }
      CHECK(next == n);
      CHECK(largest - smallest <= 1);
    }
  CHECK_THROWS_WITH_AS(dist::shard(10, 2, 2), doctest::Contains("rank 2 is not in a group of 2"), std::invalid_argument);
}

TEST_CASE("all_gather returns every rank's string in rank order") {
  const int r = world().rank();
  const auto all = world().all_gather(std::string(static_cast<std::size_t>(r + 1), static_cast<char>('a' + r)));
  REQUIRE(all.size() == static_cast<std::size_t>(world().size()));
  for (int i = 0; i < world().size(); ++i)
    CHECK(all[static_cast<std::size_t>(i)] == std::string(static_cast<std::size_t>(i + 1), static_cast<char>('a' + i)));
}

TEST_CASE("broadcast_parameters gives every rank rank 0's parameters, and check_replicas names a rank that differs") {
  Rng mine(100 + static_cast<std::uint64_t>(world().rank()));
  const auto layer = random_parameters(mine);
  if (world().size() > 1)
    CHECK_THROWS_WITH_AS(dist::check_replicas(world(), layer, "before the broadcast"),
                         doctest::Contains("the parameters of rank 1 differ from rank 0's before the broadcast"),
                         std::runtime_error);
  dist::broadcast_parameters(world(), layer);
  const std::uint64_t common = dist::check_replicas(world(), layer, "after the broadcast");
  Rng rank0(100);
  const auto reference = random_parameters(rank0);
  CHECK(common == dist::parameter_checksum(reference));
  for (std::size_t i = 0; i < 2; ++i)
    CHECK(std::memcmp(layer[i].value().data(), reference[i].value().data(),
                      layer[i].numel() * sizeof(float)) == 0);
}

TEST_CASE("the gradient reducer sums weighted gradients over ranks in several buckets") {
  const int k = world().size(), r = world().rank();
  std::vector<Variable<double>> params{Variable<double>(zeros<double>({3, 4}), true),
                                       Variable<double>(zeros<double>({5}), true),
                                       Variable<double>(zeros<double>({2, 2, 2}), true)};
  auto value = [](int rank, std::size_t p, std::size_t i) { return std::sin(1.0 + rank * 7.0 + p * 3.0 + i * 0.37); };
  for (std::size_t p = 0; p < params.size(); ++p) {
    if (p == 1 && r == k - 1 && k > 1) continue;  // the last rank has no gradient for parameter 1: it adds zeros
    Tensor<double> g = zeros<double>(params[p].shape());
    for (std::size_t i = 0; i < g.size(); ++i) g.data()[i] = value(r, p, i);
    params[p].set_grad(g);
  }
  const double total = k * (k + 1) / 2.0;
  // Buckets of at most 8 doubles: [p0] (12 elements, larger than the cap, alone), [p1] (5), [p2] (8).
  dist::GradientReducer<double> reducer(world(), params, 8 * sizeof(double));
  CHECK(reducer.num_buckets() == 3);
  CHECK(reducer.bucket_size(0) == 12);
  reducer.reduce(k == 1 ? 1.0 : (r + 1) / total);
  for (std::size_t p = 0; p < params.size(); ++p) {
    REQUIRE(params[p].has_grad());
    for (std::size_t i = 0; i < params[p].numel(); ++i) {
      double expected = 0;
      for (int q = 0; q < k; ++q)
        if (!(p == 1 && q == k - 1 && k > 1)) expected += (k == 1 ? 1.0 : (q + 1) / total) * value(q, p, i);
      CHECK(params[p].grad().data()[i] == doctest::Approx(expected).epsilon(1e-12));
    }
  }
}

TEST_CASE("agree gives every rank the lowest failing rank's code and message") {
  const int k = world().size(), r = world().rank();
  CHECK(dist::agree(world(), 0, "").ok());
  const dist::Outcome o = dist::agree(world(), r == k - 1 ? 3 : 0, r == k - 1 ? "no data on this rank" : "");
  CHECK(o.rank == k - 1);
  CHECK(o.code == 3);
  CHECK(o.message == "no data on this rank");
  const dist::Outcome all = dist::agree(world(), 10 + r, "rank " + std::to_string(r));
  CHECK(all.rank == 0);
  CHECK(all.code == 10);
  CHECK(all.message == "rank 0");
}

}  // TEST_SUITE
