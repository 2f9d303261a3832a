// Your own model on the whole training stack: LeNet-5 written the way a user writes a model, trained on MNIST-format
// digits with data::DataLoader (seeded shuffle, rank shards, random shifts) and train::Trainer (metrics, per-epoch
// checkpoints), saved and loaded with xg::save / xg::load, and resumed bit for bit. Runs alone or under
//   mpirun -np 2 ./train_lenet5 DATA_DIR
// DATA_DIR holds the four MNIST IDX files (raw or .gz). Exits non-zero if anything it checks does not hold.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "data/loader.h"
#include "data/mnist.h"
#include "nn/layers.h"
#include "nn/serialize.h"
#include "train/job.h"
#include "train/trainer.h"

using namespace xg;

/// LeNet-5 for 28×28 digits: conv 6@5×5 (padding 2) → tanh → avg-pool 2 → conv 16@5×5 → tanh → avg-pool 2 →
/// 400 → 120 → 84 → 10, with dropout before the last two layers.
struct LeNet5 : nn::Layer<float> {
  explicit LeNet5(Rng& init)
      : conv1({.in = 1, .out = 6, .kernel = 5, .padding = 2}, init), conv2(6, 16, 5, init),
        fc1(400, 120, init), fc2(120, 84, init), fc3(84, 10, init) {
    set_type("LeNet5");
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("pool", pool);
    register_module("fc1", fc1);
    register_module("fc2", fc2);
    register_module("fc3", fc3);
    register_module("drop", drop);
  }

  Variable<float> forward(const Variable<float>& x) override {
    Variable<float> h = pool(ops::tanh(conv1(x)));
    h = ops::flatten(pool(ops::tanh(conv2(h))));
    h = ops::tanh(fc1(h));
    h = ops::tanh(fc2(drop(h)));
    return fc3(drop(h));
  }

  nn::Conv2d<float> conv1, conv2;
  nn::AvgPool2d<float> pool{2};
  nn::Linear<float> fc1, fc2, fc3;
  nn::Dropout<float> drop{0.1};  // draws from the Trainer's per-epoch generator (Module::set_generator)
};

/// Model, optimizer, schedule, loader and trainer: what a run owns, built the same way every time. `seed` is the
/// run's (shuffling, dropout, shifts: a resumed run must be configured like the original); `init_seed` only draws
/// the initial parameters, which a restored checkpoint replaces.
struct Run {
  Rng init;
  LeNet5 model;
  nn::Sgd<float> opt;
  data::DataLoader loader;
  nn::CosineLR<float> schedule;
  train::Trainer trainer;
  Run(const data::Dataset& train_set, dist::Communicator& world, std::uint64_t seed, std::uint64_t init_seed)
      : init(init_seed), model(init), opt(model.parameters(), {.lr = 0.1, .momentum = 0.9}),
        loader(train_set, {.batch_size = 16, .shuffle = true, .seed = seed, .rank = world.rank(), .world = world.size()}),
        schedule(opt, 5, loader.batches()),
        trainer(model, opt, loader, {.seed = seed}, world) {
    loader.add_transform(std::make_shared<data::RandomShift>(1, seed));  // the book's expanded training data
    trainer.set_scheduler(&schedule);
  }
};

bool same_parameters(nn::Module<float>& a, nn::Module<float>& b) {
  auto pa = a.parameters(), pb = b.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i)
    if (std::memcmp(pa[i].value().data(), pb[i].value().data(), pa[i].numel() * sizeof(float)) != 0) return false;
  return true;
}

int main(int argc, char** argv) {
  dist::Environment env(argc, argv);
  dist::Communicator& world = env.world();
  const bool rank0 = world.rank() == 0;
  if (argc < 2) {
    if (rank0) std::fprintf(stderr, "usage: train_lenet5 DATA_DIR\n");
    return 2;
  }
  try {
    const data::Split digits = train::on_every_rank(world, [&] { return data::load_mnist_dir(argv[1]); });
    const std::string dir = (std::filesystem::temp_directory_path() / ("train_lenet5_" + std::to_string(::getpid()))).string();
    train::on_rank0(world, [&] { std::filesystem::create_directories(dir); });
    std::string shared_dir = dir;  // every rank uses rank 0's directory name
    std::uint64_t n = shared_dir.size();
    world.broadcast(&n, sizeof n, 0);
    shared_dir.resize(n);
    world.broadcast(shared_dir.data(), n, 0);
    const std::string ck1 = shared_dir + "/epoch.xgck";

    // 1. Five epochs straight, printing a line per epoch.
    Run a(digits.train, world, 1, 1);
    train::FitOptions fit;
    fit.epochs = 5;
    fit.test = &digits.test;
    fit.say = [](const std::string& line) { std::printf("%s\n", line.c_str()); };
    const train::FitResult r = a.trainer.fit(fit);

    // 2. One epoch with a checkpoint, then a fresh run (other initial parameters) restored from it, to epoch 5.
    Run b(digits.train, world, 1, 1);
    train::FitOptions first = fit;
    first.epochs = 1;
    first.say = nullptr;
    first.checkpoint_path = ck1;
    b.trainer.fit(first);
    Run c(digits.train, world, 1, 999);
    c.trainer.restore(train::load_checkpoint_everywhere(world, ck1));
    fit.say = nullptr;
    c.trainer.fit(fit);
    const bool resumed_same = same_parameters(a.model, c.model);

    // 3. xg::save / xg::load: the model and optimizer in one call each, into a freshly built model.
    const std::string saved = shared_dir + "/lenet5.xgck";
    train::on_rank0(world, [&] { xg::save(saved, a.model, a.opt, a.schedule); });
    world.barrier();
    Rng other(5);
    LeNet5 loaded(other);
    nn::Sgd<float> opt(loaded.parameters(), {.lr = 0.1, .momentum = 0.9});
    nn::CosineLR<float> schedule(opt, 5, a.loader.batches());
    xg::load(saved, loaded, opt, schedule);
    const bool loaded_same = same_parameters(a.model, loaded);
    world.barrier();
    train::on_rank0(world, [&] { std::filesystem::remove_all(shared_dir); });

    if (rank0)
      std::printf("%d rank(s): test accuracy %.2f%% after %zu epochs; resumed run identical: %s; loaded model identical: %s\n",
                  world.size(), 100 * r.final_accuracy, r.epochs_run, resumed_same ? "yes" : "NO",
                  loaded_same ? "yes" : "NO");
    return r.final_accuracy > 0.5 && resumed_same && loaded_same ? 0 : 1;
  } catch (const std::exception& e) {
    if (rank0) std::fprintf(stderr, "error: %s\n", e.what());
    return train::exit_code_of(e);
  }
}
