// Define a model with xgrad and train it: a two-layer network on a synthetic problem, then a small CNN.
// Prints the loss falling; exits non-zero if it does not fall.
#include <cstdio>

#include "core/random.h"
#include "nn/layers.h"
#include "nn/optim.h"

using namespace xg;

// Points in [-1,1]²; class 1 inside the circle of radius 0.6.
void circle_batch(Rng& rng, std::size_t n, Tensor<float>& x, ops::Labels& y) {
  x = Tensor<float>::from_shape({n, 2});
  y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float a = static_cast<float>(rng.uniform(-1, 1)), b = static_cast<float>(rng.uniform(-1, 1));
    x(i, 0) = a;
    x(i, 1) = b;
    y[i] = a * a + b * b < 0.36f ? 1 : 0;
  }
}

// 8x8 images with one horizontal (class 0) or vertical (class 1) bar, plus noise.
void bars_batch(Rng& rng, std::size_t n, Tensor<float>& x, ops::Labels& y) {
  x = zeros<float>({n, 1, 8, 8});
  y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const bool vertical = rng.below(2) == 1;
    const std::size_t at = rng.below(8);
    for (std::size_t k = 0; k < 8; ++k) x(i, 0, vertical ? k : at, vertical ? at : k) = 1.0f;
    for (std::size_t p = 0; p < 64; ++p) x.data()[i * 64 + p] += static_cast<float>(rng.normal(0, 0.1));
    y[i] = vertical ? 1 : 0;
  }
}

template <class Net, class Batch>
bool train(const char* title, Net& net, Batch batch, double lr, int steps) {
  Rng rng(1);
  nn::Sgd<> opt(net.parameters(), {.lr = lr, .momentum = 0.9});
  Tensor<float> xb;
  ops::Labels yb;
  float first = 0, last = 0;
  std::printf("%s (%zu parameters)\n", title, net.num_parameters());
  for (int step = 0; step <= steps; ++step) {
    batch(rng, 32, xb, yb);
    Variable<> loss = ops::cross_entropy(net(Variable<>(xb)), yb);  // forward records the graph
    opt.zero_grad();
    loss.backward();                                                // reverse-mode autodiff
    opt.step();
    if (step == 0) first = loss.item();
    if (step % (steps / 5) == 0) std::printf("  step %4d  loss %.4f\n", step, static_cast<double>(loss.item()));
    last = loss.item();
  }
  return last < 0.5f * first;
}

int main() {
  manual_seed(0);
  nn::Sequential<> mlp;  // two layers: 2 -> 16 -> 2
  mlp.add<nn::Linear<>>(2, 16);
  mlp.add<nn::Tanh<>>();
  mlp.add<nn::Linear<>>(16, 2);
  const bool ok1 = train("two-layer network, inside/outside a circle", mlp, circle_batch, 0.1, 400);

  nn::Sequential<> cnn;  // [N,1,8,8] -> conv 4@3x3 -> relu -> max-pool 2 -> [N,36] -> 2
  cnn.add<nn::Conv2d<>>(1, 4, 3);
  cnn.add<nn::ReLU<>>();
  cnn.add<nn::MaxPool2d<>>(2);
  cnn.add<nn::Flatten<>>();
  cnn.add<nn::Linear<>>(36, 2);
  const bool ok2 = train("small CNN, horizontal or vertical bar", cnn, bars_batch, 0.05, 200);

  std::printf("%s\n", ok1 && ok2 ? "both losses fell" : "error: a loss did not fall");
  return ok1 && ok2 ? 0 : 1;
}
