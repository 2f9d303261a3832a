// libFuzzer target: the checkpoint parser, then loading what parsed into the seed network (all or nothing).
// Any input must give a checkpoint or a CheckpointError.
#include <cstddef>
#include <cstdint>

#include "core/errors.h"
#include "models/mnist_cnn.h"
#include "nn/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static xg::Rng rng(0);
  static xg::mnist::MnistCnn<float> model(xg::mnist::MnistCnnConfig::preset("seed"), rng);
  try {
    const xg::nn::Checkpoint ck = xg::nn::parse_checkpoint(data, size, "fuzz.xgck");
    xg::nn::load_module(model, ck);
  } catch (const xg::CheckpointError&) {
  }
  return 0;
}
