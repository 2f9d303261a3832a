// The generic Trainer with a user's own model (an MLP with dropout on three Gaussian blobs): learning, metrics and
// checkpoints from fit, bit-identical results at any thread count, resume bit for bit (with a schedule, momentum,
// dropout and clipping), non-finite detection, and data-parallel training equal to one process.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/parallel.h"
#include "helpers.h"
#include "nn/layers.h"
#include "data/mnist.h"
#include "nn/serialize.h"
#include "train/trainer.h"

using namespace xg;
namespace fs = std::filesystem;
using xgt::world;

namespace {
/// 3 classes of 2-D points around (0,3), (3,0), (-3,-3), with unit spread; n per class.
data::TensorDataset blobs(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  Tensor<float> x = zeros<float>({3 * n, 2});
  ops::Labels y(3 * n);
  const float cx[] = {0, 3, -3}, cy[] = {3, 0, -3};
  for (std::size_t i = 0; i < 3 * n; ++i) {
    const std::size_t c = i % 3;
    x.data()[2 * i] = cx[c] + static_cast<float>(rng.normal());
    x.data()[2 * i + 1] = cy[c] + static_cast<float>(rng.normal());
    y[i] = static_cast<std::int64_t>(c);
  }
  return data::TensorDataset(std::move(x), std::move(y), 3, "blobs");
}
const data::TensorDataset& train_set() {
  static const data::TensorDataset d = blobs(100, 1);
  return d;
}
const data::TensorDataset& test_set() {
  static const data::TensorDataset d = blobs(50, 2);
  return d;
}

/// A user's model, built as a user would: Sequential layers, its own generator for initialisation.
struct Mlp {
  Rng init;
  nn::Sequential<float> net;
  explicit Mlp(std::uint64_t seed, bool dropout = true) : init(seed) {
    net.add<nn::Linear<float>>(2, 16, init);
    net.add<nn::ReLU<float>>();
    if (dropout) net.add<nn::Dropout<float>>(0.2);  // draws from the trainer's per-epoch generator
    net.add<nn::Linear<float>>(16, 3, init);
  }
};

std::vector<float> flat(nn::Module<float>& m) {
  std::vector<float> out;
  for (auto& p : m.parameters()) out.insert(out.end(), p.value().begin(), p.value().end());
  return out;
}
std::string temp(const std::string& name) {
  return (fs::temp_directory_path() / ("xgrad_trainer_" + name + "_" + std::to_string(::getpid()))).string();
}

/// Everything a run needs, owned together.
struct Setup {
  Mlp model;
  nn::Sgd<float> opt;
  nn::CosineLR<float> sched;
  data::DataLoader loader;
  train::Trainer trainer;
  Setup(std::uint64_t seed, dist::Communicator& comm = dist::local_communicator(), double clip = 1.0, bool dropout = true)
      : model(seed, dropout),
        opt(model.net.parameters(), nn::SgdOptions{0.1, 0.9}),
        sched(opt, 4, 1),
        loader(train_set(), {.batch_size = 16, .shuffle = true, .seed = seed, .rank = comm.rank(), .world = comm.size()}),
        trainer(model.net, opt, loader, {.seed = seed, .clip_grad_norm = clip}, comm) {
    trainer.set_scheduler(&sched);
  }
};
}  // namespace

TEST_SUITE("train") {

TEST_CASE("fit trains a user's model, reports every epoch, writes metrics and a checkpoint") {
  Setup s(3);
  const auto ck = temp("fit.xgck"), metrics_path = temp("fit.jsonl");
  files::AppendFile metrics(metrics_path, "metrics");
  std::vector<std::string> lines;
  std::size_t callbacks = 0;
  train::FitOptions fo;
  fo.epochs = 4;
  fo.test = &test_set();
  fo.checkpoint_path = ck;
  fo.metrics = &metrics;
  fo.say = [&](const std::string& l) { lines.push_back(l); };
  fo.on_epoch_end = [&](const train::EpochReport& r) {
    ++callbacks;
    CHECK(r.epoch == callbacks);
  };
  const train::FitResult r = s.trainer.fit(fo);
  CHECK(r.epochs_run == 4);
  CHECK(callbacks == 4);
  CHECK(r.final_accuracy > 0.9);  // the blobs are well separated; chance is 1/3
  CHECK(lines.size() == 4);
  CHECK_MESSAGE(lines[0].find("epoch  1/4  train loss") == 0, lines[0]);
  std::ifstream in(metrics_path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    for (const char* k : {"epoch", "train_loss", "heldout_loss", "heldout_accuracy", "lr", "batch_size", "ranks"})
      CHECK_MESSAGE(j.contains(k), k);
    ++n;
  }
  CHECK(n == 4);
  CHECK(s.trainer.epoch() == 4);
  CHECK(s.trainer.step() == 4 * 19);  // 300 examples in batches of 16
  CHECK(s.opt.lr() == doctest::Approx(s.sched.lr_at(s.trainer.step() - 1)));  // the last step's rate, near the end
  CHECK(s.opt.lr() < 0.001);
  const nn::Checkpoint saved = nn::load_checkpoint(ck);
  CHECK(saved.arch == s.model.net.architecture());
  CHECK(saved.has("optim.momentum_buffer.0.weight"));
  const std::vector<std::size_t> pred = s.trainer.predict(test_set());
  CHECK(pred.size() == 150);
  fs::remove(ck);
  fs::remove(metrics_path);
}

TEST_CASE("training is bit-identical at 1, 2 and 3 threads") {
  auto run = [](std::size_t threads) {
    set_num_threads(threads);
    Setup s(5);
    s.trainer.train_epoch();
    s.trainer.train_epoch();
    set_num_threads(0);
    return flat(s.model.net);
  };
  const auto ref = run(1);
  for (std::size_t t : {2, 3}) CHECK(run(t) == ref);
}

TEST_CASE("2 epochs equal 1 epoch, checkpoint, restore into a fresh setup and 1 more epoch, bit for bit") {
  Setup straight(7);
  straight.trainer.train_epoch();
  straight.trainer.train_epoch();
  Setup first(7);
  first.trainer.train_epoch();
  const nn::Checkpoint ck = nn::parse_checkpoint(nn::serialize_checkpoint(first.trainer.checkpoint()).data(),
                                                 nn::serialize_checkpoint(first.trainer.checkpoint()).size(), "memory");
  Setup resumed(99);  // another seed everywhere: the checkpoint must override all of it
  resumed.trainer.restore(ck);
  CHECK(resumed.trainer.epoch() == 1);
  CHECK(resumed.opt.lr() == doctest::Approx(first.sched.lr_at(first.trainer.step())));  // the next step's rate
  resumed.trainer.train_epoch();
  CHECK(flat(resumed.model.net) == flat(straight.model.net));
  CHECK(resumed.opt.lr() == doctest::Approx(straight.opt.lr()));
  // Another architecture is refused and changes nothing.
  Mlp other(1);
  other.net.add<nn::Linear<float>>(3, 3);
  nn::Sgd<float> opt(other.net.parameters(), nn::SgdOptions{0.1});
  data::DataLoader loader(train_set(), {.batch_size = 16});
  train::Trainer t(other.net, opt, loader);
  const auto before = flat(other.net);
  CHECK_THROWS_WITH_AS(t.restore(ck), doctest::Contains("does not match this Sequential: the checkpoint has the submodules [0, 1, 2, 3], this model [0, 1, 2, 3, 4]"), CheckpointError);
  CHECK(flat(other.net) == before);
}

TEST_CASE("after a failed save the metrics file is cut back to the checkpoint's epoch before resuming") {
  // Round 3: epoch 2's line was written, then its save failed; resuming from epoch 1 left epochs 1, 2, 2, 3. The line
  // comes first (a failed metrics write then leaves no checkpoint of the epoch), and metrics_resume_offset says where
  // a resume from the checkpoint's epoch cuts the file.
  const fs::path dir = fs::temp_directory_path() / ("xgrad_order_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string ck = (dir / "run.xgck").string(), metrics_path = (dir / "m.jsonl").string();
  Mlp m(1);
  nn::Sgd<float> opt(m.net.parameters(), nn::SgdOptions{0.1});
  data::DataLoader loader(train_set(), {.batch_size = 16});
  train::Trainer t(m.net, opt, loader);
  files::AppendFile metrics(metrics_path, "metrics");
  train::FitOptions fo;
  fo.epochs = 3;
  fo.checkpoint_path = ck;
  fo.metrics = &metrics;
  fo.on_epoch_end = [&](const train::EpochReport& r) {
    if (r.epoch == 1) {  // the next save fails: its target is now a directory
      fs::remove(ck);
      fs::create_directory(ck);
    }
  };
  CHECK_THROWS_WITH(t.fit(fo), doctest::Contains("run.xgck': is a directory, not a regular file"));
  std::ifstream in(metrics_path);
  std::vector<int> epochs;
  std::string first;
  for (std::string line; std::getline(in, line);) {
    if (first.empty()) first = line;
    epochs.push_back(nlohmann::json::parse(line)["epoch"].get<int>());
  }
  CHECK(epochs == std::vector<int>{1, 2});  // epoch 2's line, without its checkpoint
  CHECK(train::metrics_resume_offset(metrics_path, 1) == first.size() + 1);
  CHECK(train::metrics_resume_offset(metrics_path, 2) == fs::file_size(metrics_path));
  std::ofstream(metrics_path, std::ios::app) << R"({"epoch":3,"train_lo)";  // a torn line is cut too
  CHECK(train::metrics_resume_offset(metrics_path, 5) < fs::file_size(metrics_path));
  fs::remove_all(dir);
}

TEST_CASE("a non-finite loss stops training naming the loss and the step, unless allowed; bad setups are refused") {
  Mlp m(1);
  m.net.parameters()[0].value().data()[0] = std::numeric_limits<float>::quiet_NaN();
  nn::Sgd<float> opt(m.net.parameters(), nn::SgdOptions{0.1});
  data::DataLoader loader(train_set(), {.batch_size = 16});
  train::TrainerOptions o;
  o.loss = [](const Variable<float>& logits, const ops::Labels& y) { return ops::nll_loss(ops::log_softmax(logits, 1), y); };
  o.loss_name = "nll_loss";
  train::Trainer t(m.net, opt, loader, o);
  CHECK_THROWS_WITH_AS(t.train_epoch(), doctest::Contains("the loss (nll_loss) is nan at epoch 1, step 1"), NumericError);
  o.allow_nonfinite = true;
  train::Trainer u(m.net, opt, loader, o);
  CHECK_NOTHROW(u.train_epoch());
  // An evaluation of nothing would report loss 0 and accuracy 0 as if measured.
  const data::TensorDataset none(zeros<float>({0, 2}), ops::Labels{}, 3, "empty set");
  CHECK_THROWS_WITH_AS(t.evaluate(none), doctest::Contains("evaluate: the dataset 'empty set' is empty"), std::invalid_argument);
  // Round 3: drop_last with a batch larger than the data ran 0 steps and reported loss 0.0000.
  data::DataLoader too_big(train_set(), {.batch_size = 1000, .drop_last = true});
  train::Trainer v(m.net, opt, too_big, o);
  CHECK_THROWS_WITH_AS(v.train_epoch(), doctest::Contains("Trainer: the training loader gives no batch (300 examples, batch size 1000, drop_last)"), std::invalid_argument);
  data::DataLoader sharded(train_set(), {.batch_size = 16, .rank = 1, .world = 2});
  CHECK_THROWS_WITH_AS(train::Trainer(m.net, opt, sharded), doctest::Contains("sharded as rank 1 of 2"), std::invalid_argument);
}

}  // TEST_SUITE

TEST_SUITE("train") {

TEST_CASE("a LeNet-5 with batch norm trains on real digits with the Trainer, and its running statistics survive save/load") {
  const data::Split digits = data::load_mnist_dir(std::string(XGRAD_FIXTURES_DIR) + "/mnist-small");
  auto make = [](Rng& init) {
    auto net = std::make_unique<nn::Sequential<float>>();
    net->add<nn::Conv2d<float>>(nn::Conv2dOptions{.in = 1, .out = 6, .kernel = 5, .padding = 2}, init);
    net->add<nn::BatchNorm2d<float>>(6);
    net->add<nn::ReLU<float>>();
    net->add<nn::AvgPool2d<float>>(2);
    net->add<nn::Conv2d<float>>(6, 16, 5, init);
    net->add<nn::BatchNorm2d<float>>(16);
    net->add<nn::ReLU<float>>();
    net->add<nn::AvgPool2d<float>>(2);
    net->add<nn::Flatten<float>>();
    net->add<nn::Linear<float>>(400, 120, init);
    net->add<nn::BatchNorm1d<float>>(120);
    net->add<nn::ReLU<float>>();
    net->add<nn::Linear<float>>(120, 10, init);
    return net;
  };
  Rng init(1);
  auto net = make(init);
  nn::Sgd<float> opt(net->parameters(), {.lr = 0.05, .momentum = 0.9});
  data::DataLoader loader(digits.train, {.batch_size = 20, .shuffle = true, .seed = 1});
  train::Trainer trainer(*net, opt, loader, {.seed = 1});
  const train::EvalStats before = trainer.evaluate(digits.test);
  train::FitOptions fo;
  fo.epochs = 3;
  fo.test = &digits.test;
  const train::FitResult r = trainer.fit(fo);
  MESSAGE("LeNet-5 + BatchNorm on the 300-digit fixture: ", 100 * before.accuracy, "% -> ", 100 * r.final_accuracy, "%");
  CHECK(r.final_accuracy > 0.6);
  CHECK(r.final_accuracy > before.accuracy + 0.3);
  const auto path = temp("lenet_bn.xgck");
  xg::save(path, *net, opt);
  Rng other(9);
  auto fresh = make(other);
  nn::Sgd<float> fresh_opt(fresh->parameters(), {.lr = 0.05, .momentum = 0.9});
  xg::load(path, *fresh, fresh_opt);
  const auto a = net->named_buffers(), b = fresh->named_buffers();
  REQUIRE(a.size() == 6);  // three BatchNorms × (running mean, running variance)
  for (std::size_t i = 0; i < a.size(); ++i) CHECK_MESSAGE(*a[i].second == *b[i].second, a[i].first);
  data::DataLoader fresh_loader(digits.train, {.batch_size = 20});
  train::Trainer check(*fresh, fresh_opt, fresh_loader);
  CHECK(check.evaluate(digits.test).correct == trainer.evaluate(digits.test).correct);
  fs::remove(path);
}

}  // TEST_SUITE

TEST_SUITE("distributed") {

TEST_CASE("the generic trainer on K ranks matches one process within 1e-5 and keeps identical replicas") {
  // No dropout here: each rank draws its own masks (as it should), which one process cannot reproduce.
  Setup one(11, dist::local_communicator(), 0.0, false);
  Setup parallel(11, world(), 0.0, false);
  one.trainer.train_epoch();
  parallel.trainer.train_epoch();
  const auto a = flat(one.model.net), b = flat(parallel.model.net);
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
  MESSAGE("ranks: ", world().size(), ", max parameter difference to one process: ", worst);
  CHECK(worst <= 1e-5);
  dist::check_replicas(world(), parallel.model.net.parameters(), "after an epoch");
  const train::EvalStats e1 = one.trainer.evaluate(test_set()), ek = parallel.trainer.evaluate(test_set());
  CHECK(ek.total == e1.total);
}

}  // TEST_SUITE
