// libFuzzer target, structure-aware: the input is a checkpoint *header*. The harness frames it with valid checksums
// (nn::frame_checkpoint), and when the header parses and lists tensors it builds a payload that fits their offsets
// and writes each tensor's true CRC into the header, so mutations reach the header's meaning — names, shapes,
// dtypes, offsets, nesting, the training state — instead of stopping at the checksum. What parses is loaded into
// the seed network and restored into a Trainer (all or nothing). Any input must give a result or a CheckpointError.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/json_limits.h"
#include "data/mnist.h"
#include "models/run.h"
#include "nn/checkpoint.h"

namespace {
/// The header with true CRCs and a payload that covers every tensor's range (at most 1 MiB); the input unchanged
/// when it is not a JSON object with a tensor list.
std::vector<std::uint8_t> frame(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json header;
  try {
    // Bounded like the library's own parse: the harness must not overflow its stack on dump() either.
    header = xg::parse_json_bounded<std::runtime_error>(text.begin(), text.end(), "fuzz", xg::JsonLimits{32, 1u << 20});
    if (!header.is_object() || !header.contains("tensors") || !header["tensors"].is_array()) throw 0;
    std::uint64_t end = 0;
    for (const auto& t : header["tensors"]) {
      const auto off = xg::json_get<std::uint64_t, std::runtime_error>(t.at("offset"), "offset");
      const auto n = xg::json_get<std::uint64_t, std::runtime_error>(t.at("nbytes"), "nbytes");
      if (off > (1u << 20) || n > (1u << 20)) throw 0;
      end = std::max<std::uint64_t>(end, (off + n + 63) / 64 * 64);
    }
    std::vector<std::uint8_t> payload(static_cast<std::size_t>(end));
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i * 131 + 7);
    for (auto& t : header["tensors"]) {
      const auto off = t["offset"].get<std::size_t>(), n = t["nbytes"].get<std::size_t>();
      t["crc32"] = xg::nn::checkpoint_crc32(payload.data() + off, n);
    }
    return xg::nn::frame_checkpoint(header.dump(), payload);
  } catch (...) {  // not a header we can complete (or too deep to dump): frame the bytes as they are
    return xg::nn::frame_checkpoint(text, {});
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static xg::Rng rng(0);
  static xg::mnist::MnistCnn<float> model(xg::mnist::MnistCnnConfig::preset("seed"), rng);
  static const xg::data::MnistDataset no_data;
  static xg::mnist::Run trainer{xg::mnist::RunConfig{}, no_data};
  if (size > (1u << 20)) return 0;
  const std::vector<std::uint8_t> bytes = frame(data, size);
  try {
    const xg::nn::Checkpoint ck = xg::nn::parse_checkpoint(bytes.data(), bytes.size(), "fuzz.xgck");
    xg::nn::load_module(model, ck);
    trainer.restore(ck);
  } catch (const xg::CheckpointError&) {
  }
  return 0;
}
