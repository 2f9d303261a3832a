// Data-parallel training (framework/dist). Every test here holds for any number of ranks: ctest runs this suite in
// one process (K = 1) and again under `mpirun -np 2` (tests/CMakeLists.txt), where the collectives are real.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "dist/data_parallel.h"
#include "helpers.h"
#include "data/mnist.h"
#include "models/run.h"
#include "nn/layers.h"

using namespace xg;
using xgt::world;

namespace {
const data::Split& fixture() {
  static const data::Split s = data::load_mnist_dir(std::string(XGRAD_FIXTURES_DIR) + "/mnist-small");
  return s;
}
std::vector<float> flat_params(mnist::Run& t) {
  std::vector<float> out;
  for (auto& p : t.model().parameters()) out.insert(out.end(), p.value().begin(), p.value().end());
  return out;
}
/// max over tensors of ‖a − b‖∞ / ‖b‖∞.
double max_relative_difference(mnist::Run& a, mnist::Run& b) {
  double worst = 0;
  auto pa = a.model().parameters(), pb = b.model().parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    double diff = 0, scale = 0;
    for (std::size_t j = 0; j < pa[i].numel(); ++j) {
      diff = std::max(diff, std::abs(double(pa[i].value().data()[j]) - double(pb[i].value().data()[j])));
      scale = std::max(scale, std::abs(double(pb[i].value().data()[j])));
    }
    worst = std::max(worst, diff / scale);
  }
  return worst;
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
  nn::Linear<float> layer(7, 3, mine);
  if (world().size() > 1)
    CHECK_THROWS_WITH_AS(dist::check_replicas(world(), layer.parameters(), "before the broadcast"),
                         doctest::Contains("the parameters of rank 1 differ from rank 0's before the broadcast"),
                         std::runtime_error);
  dist::broadcast_parameters(world(), layer.parameters());
  const std::uint64_t common = dist::check_replicas(world(), layer.parameters(), "after the broadcast");
  Rng rank0(100);
  nn::Linear<float> reference(7, 3, rank0);
  CHECK(common == dist::parameter_checksum(reference.parameters()));
  for (std::size_t i = 0; i < 2; ++i)
    CHECK(std::memcmp(layer.parameters()[i].value().data(), reference.parameters()[i].value().data(),
                      layer.parameters()[i].numel() * sizeof(float)) == 0);
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

TEST_CASE("data-parallel training matches one process within 1e-5 after an epoch, and repeats bit for bit") {
  mnist::RunConfig cfg;
  cfg.batch_size = 13;  // 300 images: the last global batch has one image, so with 2 ranks one shard is empty
  cfg.momentum = 0.9;
  cfg.lr = 0.05;
  mnist::Run one(cfg, fixture().train);  // this process alone
  mnist::Run parallel(cfg, fixture().train, world());
  // Same parameters before training, and the same sharded evaluation.
  CHECK(max_relative_difference(parallel, one) == 0.0);
  const train::EvalStats e1 = one.evaluate(fixture().test), ek = parallel.evaluate(fixture().test);
  CHECK(ek.total == e1.total);
  CHECK(ek.correct == e1.correct);
  CHECK(ek.loss == doctest::Approx(e1.loss).epsilon(1e-6));

  const train::EpochStats s1 = one.train_epoch(), sk = parallel.train_epoch();
  CHECK(sk.images == 300);
  CHECK(sk.steps == s1.steps);
  CHECK(sk.loss == doctest::Approx(s1.loss).epsilon(1e-5));
  const double rel = max_relative_difference(parallel, one);
  MESSAGE("ranks: ", world().size(), ", max relative parameter difference to one process: ", rel);
  CHECK(rel <= 1e-5);
  dist::check_replicas(world(), parallel.model().parameters(), "after an epoch");

  mnist::Run again(cfg, fixture().train, world());
  again.train_epoch();
  const auto a = flat_params(parallel), b = flat_params(again);
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST_CASE("with dropout, ranks draw different masks yet stay identical replicas, and runs repeat bit for bit") {
  mnist::RunConfig cfg;
  cfg.model.hidden = {20};
  cfg.model.dropout = 0.3;
  mnist::Run a(cfg, fixture().train, world()), b(cfg, fixture().train, world());
  a.train_epoch();
  b.train_epoch();
  dist::check_replicas(world(), a.model().parameters(), "after an epoch with dropout");
  const auto pa = flat_params(a), pb = flat_params(b);
  CHECK(std::memcmp(pa.data(), pb.data(), pa.size() * sizeof(float)) == 0);
}

}  // TEST_SUITE
