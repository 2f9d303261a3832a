// Data-parallel training of your own model with xgrad's dist layer: run it alone, or on K processes with
//   mpirun -np 2 ./data_parallel
// Every rank builds the model, takes rank 0's parameters, trains on its share of each global batch and averages the
// gradients; the replicas stay identical. Exits non-zero if the loss does not fall or the replicas differ.
#include <cstdio>

#include "core/random.h"
#include "dist/data_parallel.h"
#include "nn/layers.h"
#include "nn/optim.h"

using namespace xg;

int main(int argc, char** argv) {
  dist::Environment env(argc, argv);  // MPI_Init when launched by mpirun or srun; one local process otherwise
  dist::Communicator& world = env.world();

  Rng init(static_cast<std::uint64_t>(world.rank()));  // deliberately different per rank: the broadcast fixes it
  nn::Sequential<> net;
  net.add<nn::Linear<>>(2, 32, init);
  net.add<nn::Tanh<>>();
  net.add<nn::Linear<>>(32, 2, init);
  dist::broadcast_parameters(world, net.parameters());
  dist::GradientReducer<float> reducer(world, net.parameters());
  nn::Sgd<> opt(net.parameters(), {.lr = 0.2, .momentum = 0.9});

  Rng data(7);  // the same data stream on every rank; each rank uses its own share of every global batch
  constexpr std::size_t kBatch = 64;
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    Tensor<float> x = Tensor<float>::from_shape({kBatch, 2});
    ops::Labels y(kBatch);
    for (std::size_t i = 0; i < kBatch; ++i) {  // class 1 inside the circle of radius 0.6
      const float a = static_cast<float>(data.uniform(-1, 1)), b = static_cast<float>(data.uniform(-1, 1));
      x.data()[2 * i] = a;
      x.data()[2 * i + 1] = b;
      y[i] = a * a + b * b < 0.36f ? 1 : 0;
    }
    const auto [lo, hi] = dist::shard(kBatch, world.rank(), world.size());
    opt.zero_grad();
    double loss = 0;  // this rank's share of the global batch's summed loss
    if (hi > lo) {
      Tensor<float> xs = Tensor<float>::from_shape({hi - lo, 2});
      std::copy(x.data() + 2 * lo, x.data() + 2 * hi, xs.data());
      Variable<float> l = ops::cross_entropy(net(Variable<float>(xs)), ops::Labels(y.begin() + lo, y.begin() + hi));
      l.backward();
      loss = static_cast<double>(l.item()) * static_cast<double>(hi - lo);
    }
    reducer.reduce(static_cast<double>(hi - lo) / kBatch);  // every rank now holds the global batch's gradient
    world.all_reduce_sum(&loss, 1);
    opt.step();
    (step == 0 ? first : last) = loss / kBatch;
  }
  const std::uint64_t checksum = dist::check_replicas(world, net.parameters(), "after training");  // throws if not
  if (world.rank() == 0)
    std::printf("%d process(es): loss %.4f -> %.4f, identical parameters on every rank (checksum %016llx)\n",
                world.size(), first, last, static_cast<unsigned long long>(checksum));
  return last < 0.5 * first ? 0 : 1;
}
