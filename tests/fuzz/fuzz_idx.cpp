// libFuzzer target: the IDX parser on raw bytes (as image and as label file), and the in-memory gzip layer followed by
// the parser. Any input must give a parse or a DataError: never a crash, an out-of-bounds access or a huge allocation.
#include <cstddef>
#include <cstdint>

#include "core/errors.h"
#include "data/mnist.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (std::size_t ndim : {1, 3}) {
    try {
      xg::data::parse_idx(data, size, ndim, "fuzz");
    } catch (const xg::DataError&) {
    }
  }
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
    try {
      const auto raw = xg::data::gunzip(data, size, "fuzz.gz", std::size_t(1) << 24);
      xg::data::parse_idx(raw.data(), raw.size(), 3, "fuzz.gz");
    } catch (const xg::DataError&) {
    }
  }
  return 0;
}
