// The MNIST CNN and its trainer: presets, gradients of the whole model, learning, determinism, resume, non-finite
// detection.
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "core/parallel.h"

#include "helpers.h"
#include "data/mnist.h"
#include "models/run.h"
#include "nn/gradcheck_module.h"

using namespace xg;
using namespace xg::mnist;
using namespace xg::data;
using train::EpochStats;
using train::EvalStats;

namespace {
const Split& fixture() {
  static const Split s = load_mnist_dir(std::string(XGRAD_FIXTURES_DIR) + "/mnist-small");
  return s;
}
/// Every parameter's bytes, concatenated.
std::vector<float> flat_params(Run& t) {
  std::vector<float> out;
  for (auto& p : t.model().parameters()) out.insert(out.end(), p.value().begin(), p.value().end());
  return out;
}
}  // namespace

TEST_SUITE("mnist cnn") {

TEST_CASE("the presets have the book's shapes and parameter counts") {
  Rng rng(0);
  MnistCnn<float> seed(MnistCnnConfig::preset("seed"), rng);
  CHECK(seed.num_parameters() == 4408);
  auto maps = seed.feature_maps(Variable<float>(zeros<float>({2, 1, 28, 28})));
  CHECK(maps[0].shape() == Shape{2, 3, 24, 24});
  CHECK(maps[1].shape() == Shape{2, 3, 12, 12});
  CHECK(seed(Variable<float>(zeros<float>({2, 1, 28, 28}))).shape() == Shape{2, 10});
  MnistCnn<float> l2(MnistCnnConfig::preset("seed-l2"), rng);
  CHECK(l2.num_parameters() == 4408);
  CHECK(l2.layout().find("l22") != std::string::npos);
  MnistCnn<float> deep(MnistCnnConfig::preset("deep"), rng);
  CHECK(deep.num_parameters() == 85670);
  auto names = deep.named_parameters();
  CHECK(names.front().first == "conv1.weight");
  CHECK(names.back().first == "fc2.bias");
  CHECK_THROWS_WITH_AS(MnistCnnConfig::preset("lenet"), doctest::Contains("unknown architecture 'lenet'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(deep(Variable<float>(zeros<float>({2, 28, 28}))), doctest::Contains("[N,1,28,28]"), ShapeError);
}

TEST_CASE("every parameter and the input pass gradcheck through the whole seed, seed-l2 and deep networks") {
  for (const char* arch : {"seed", "seed-l2", "deep"}) {
    CAPTURE(arch);
    Rng rng(1);
    MnistCnnConfig cfg = MnistCnnConfig::preset(arch);
    cfg.init = InitScheme::PyTorch;  // network3 zeroes the last layer, which would make some gradients trivially 0
    MnistCnn<double> model(cfg, rng);
    const Tensor<double> images = xgt::random_tensor({2, 1, 28, 28}, 2, 0.0, 1.0);
    const ops::Labels labels{3, 7};
    GradcheckOptions o;
    o.max_checks_per_input = 30;
    auto r = nn::gradcheck_parameters(model, [&] {
      return ops::cross_entropy(model(Variable<double>(images)), labels);
    }, o);
    CHECK_MESSAGE(r.ok, r.message);
    std::size_t expected = 0;
    for (auto& np : model.named_parameters()) expected += std::min<std::size_t>(np.second.numel(), 30);
    CHECK(r.elements_checked == expected);
    o.max_checks_per_input = 60;
    auto ri = gradcheck([&](const auto& v) { return ops::cross_entropy(model(v[0]), labels); }, {images}, o);
    CHECK_MESSAGE(ri.ok, ri.message);
  }
}

TEST_CASE("one epoch on 300 digits lowers the loss and beats chance by a wide margin") {
  RunConfig cfg;  // the seed network with plain SGD; 150 steps of batch 2 (30 steps of batch 10 barely move it)
  cfg.batch_size = 2;
  cfg.lr = 0.2;
  Run t(cfg, fixture().train);
  const EvalStats before = t.evaluate(fixture().test);
  const EpochStats s = t.train_epoch();
  const EvalStats after = t.evaluate(fixture().test);
  CHECK(s.steps == 150);
  CHECK(after.loss < before.loss * 0.8);
  CHECK(after.accuracy > 0.4);  // chance is 0.1
}

TEST_CASE("training is bit-identical at 1, 2 and 3 threads and across two runs with the same seed") {
  auto run = [](std::size_t threads) {
    set_num_threads(threads);
    RunConfig cfg;
    cfg.batch_size = 16;
    Run t(cfg, fixture().train);
    std::vector<double> losses;
    t.train_epoch([&](std::size_t, std::size_t, double l) { losses.push_back(l); });
    set_num_threads(0);
    return std::make_pair(flat_params(t), losses);
  };
  const auto ref = run(1);
  for (std::size_t threads : {1, 2, 3}) {
    const auto other = run(threads);
    REQUIRE(other.first.size() == ref.first.size());
    CHECK(std::memcmp(other.first.data(), ref.first.data(), ref.first.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(other.second.data(), ref.second.data(), ref.second.size() * sizeof(double)) == 0);
  }
}

TEST_CASE("1 epoch, checkpoint, resume and 1 more epoch equals 2 epochs bit for bit (SGD momentum and Adam)") {
  for (const char* opt : {"sgd", "adam"}) {
    CAPTURE(opt);
    RunConfig cfg;
    cfg.optimizer = opt;
    cfg.lr = std::string(opt) == "sgd" ? 0.05 : 0.002;
    cfg.momentum = std::string(opt) == "sgd" ? 0.9 : 0.0;
    cfg.model.dropout = 0.3;  // dropout draws from the generator too: its state must be restored
    cfg.model.hidden = {20};
    Run straight(cfg, fixture().train);
    straight.train_epoch();
    straight.train_epoch();

    Run first(cfg, fixture().train);
    first.train_epoch();
    const auto path = (std::filesystem::temp_directory_path() / ("xgrad_resume_" + std::to_string(::getpid()))).string();
    nn::save_checkpoint(path, first.checkpoint());
    RunConfig other_seed = cfg;
    other_seed.trainer.seed = 12345;  // the restored state must override everything the seed set up
    Run resumed(other_seed, fixture().train);
    resumed.restore(nn::load_checkpoint(path));
    CHECK(resumed.epoch() == 1);
    resumed.train_epoch();
    const auto a = flat_params(straight), b = flat_params(resumed);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    std::filesystem::remove(path);
  }
}

TEST_CASE("restoring a checkpoint of another architecture is refused and changes nothing") {
  RunConfig seed_cfg;
  Run seed(seed_cfg, fixture().train);
  RunConfig l2_cfg;
  l2_cfg.arch = "seed-l2";
  l2_cfg.model = MnistCnnConfig::preset("seed-l2");
  Run l2(l2_cfg, fixture().train);
  const auto before = flat_params(l2);
  CHECK_THROWS_WITH_AS(l2.restore(seed.checkpoint()), doctest::Contains("does not match this MnistCnn: pool1: the checkpoint has a MaxPool2d, this model a L2Pool2d"), CheckpointError);
  RunConfig deep_cfg;
  deep_cfg.model = MnistCnnConfig::preset("deep");
  Run deep(deep_cfg, fixture().train);
  CHECK_THROWS_WITH_AS(deep.restore(seed.checkpoint()), doctest::Contains("missing: model.conv2.weight"), CheckpointError);
  CHECK(flat_params(l2) == before);
}

TEST_CASE("a non-finite loss stops training with a NumericError naming the loss and the step") {
  RunConfig cfg;
  Run t(cfg, fixture().train);
  t.model().parameters()[0].value().data()[0] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(t.train_epoch(), doctest::Contains("at epoch 1, step 1"), NumericError);
  cfg.trainer.allow_nonfinite = true;
  Run u(cfg, fixture().train);
  u.model().parameters()[0].value().data()[0] = std::numeric_limits<float>::quiet_NaN();
  CHECK_NOTHROW(u.train_epoch());
}

}  // TEST_SUITE
