#include "models/cli/flags.h"

#include <charconv>
#include <cmath>

#include "models/classifier.h"

namespace xg::mnist::cli {

/// "a, b or c" for help texts.
std::string choices(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) s += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return s;
}

/// A whole decimal number in [lo, hi]: digits only (no sign, no fraction, no exponent), read in base 10 even with
/// leading zeros (CLI11 alone would read "010" as octal 8 and saturate or wrap out-of-range values). The value is
/// rewritten without its leading zeros for CLI11's conversion.
CLI::Validator decimal(std::uint64_t lo, std::uint64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
          return "'" + files::escape_bytes(s) + "' is not a whole decimal number";
        std::uint64_t v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
        if (ec == std::errc::result_out_of_range || v < lo || v > hi || end != s.data() + s.size())
          return s + " is out of range (" + std::to_string(lo) + " to " + std::to_string(hi) + ")";
        s = std::to_string(v);
        return {};
      },
      "INT in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]");
}

/// A --pool value: max, l2, avg, lpP or stochastic (parse_pool's rule).
CLI::Validator pool_choice() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        try {
          parse_pool(s);
          return {};
        } catch (const std::invalid_argument& e) {
          return files::escape_bytes(e.what());
        }
      },
      "POOL");
}

/// A finite decimal number in [lo, hi] (NaN and Inf are refused: CLI11's Range lets NaN through).
CLI::Validator finite_range(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        // Decimal only: strtod would also take leading blanks and hexadecimal floats (0x1p-3).
        if (s.empty() || end != s.c_str() + s.size() || std::isspace(static_cast<unsigned char>(s[0])) ||
            s.find_first_of("xXpP") != std::string::npos)
          return "'" + files::escape_bytes(s) + "' is not a decimal number";
        if (!std::isfinite(v)) return s + " is not a finite number";
        if (v < lo || v > hi) return s + " is out of range (" + fmt::format("{} to {}", lo, hi) + ")";
        return {};
      },
      fmt::format("NUMBER in [{} - {}]", lo, hi));
}

}  // namespace xg::mnist::cli
