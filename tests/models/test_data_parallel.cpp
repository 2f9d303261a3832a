// Data-parallel training end to end (framework/dist under mnist::Run): against one process, and with dropout. Every
// test here holds for any number of ranks: ctest runs this suite in one process (K = 1) and again under
// `mpirun -np 2` (tests/CMakeLists.txt), where the collectives are real.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "dist/data_parallel.h"
#include "helpers.h"
#include "data/mnist.h"
#include "models/run.h"

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
