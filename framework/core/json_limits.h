#pragma once
/// \file json_limits.h
/// Parsing JSON that comes from outside (checkpoint headers, npm digit files, metrics files) with bounded nesting
/// and size. nlohmann::json parses iteratively, but serialising (dump) and comparing values recurse once per level:
/// a 200,000-deep array in a file with valid checksums overflowed the stack. Every untrusted document goes through
/// parse_json_bounded, which stops at the first value nested deeper than the limit.
/// Needs nlohmann_json on the include path (a header-only helper: xgrad_core does not depend on it).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

namespace xg {

/// Limits for untrusted JSON: nesting depth (objects and arrays) and bytes.
struct JsonLimits {
  std::size_t max_depth = 64;
  std::size_t max_bytes = std::size_t(1) << 26;  ///< 64 MiB
};

/// nlohmann's message without its "[json.exception.type_error.302] " prefix, for users' eyes.
inline std::string json_reason(const nlohmann::json::exception& e) {
  std::string w = e.what();
  if (w.rfind("[json.exception.", 0) == 0) {
    const auto close = w.find("] ");
    if (close != std::string::npos) w.erase(0, close + 2);
  }
  return w;
}

/// Parses [first, last) as JSON within `limits`; any failure (syntax, a number out of range, too deep, too large)
/// throws Error(source + ": " + reason) — pass the error type the caller's users expect (DataError,
/// CheckpointError…).
template <class Error, class It>
nlohmann::json parse_json_bounded(It first, It last, const std::string& source, const JsonLimits& limits = {}) {
  const auto size = static_cast<std::size_t>(last - first);
  if (size > limits.max_bytes)
    throw Error(source + ": JSON of " + std::to_string(size) + " bytes is larger than the limit of " +
                std::to_string(limits.max_bytes));
  // Depth first, by one linear scan (strings skipped): nlohmann's parser callback could bound it too, but its callback
  // parser is quadratic in the number of objects (80,000 `{}` took 4 s; a 64 MiB file, hours).
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (It it = first; it != last; ++it) {
    const char c = static_cast<char>(*it);
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limits.max_depth)
        throw Error(source + ": JSON nested deeper than " + std::to_string(limits.max_depth) + " levels");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  try {
    return nlohmann::json::parse(first, last);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(source + ": byte offset " + std::to_string(e.byte) + ": invalid JSON: " + json_reason(e));
  } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
    throw Error(source + ": invalid JSON: " + json_reason(e));
  }
}

/// `j` as V, strictly: an unsigned integer type takes only a JSON unsigned integer that fits, a signed one only an
/// integer that fits, a floating type any number, bool only true/false, std::string only a string. nlohmann's get<>
/// would convert 1e300 or -1 to an integer silently (undefined behaviour for the float; found by fuzzing).
/// Anything else throws Error(what + " is " + j.dump() + ", not …").
template <class V, class Error>
V json_get(const nlohmann::json& j, const std::string& what) {
  auto refuse = [&](const char* expected) {
    std::string shown = j.dump();
    if (shown.size() > 64) shown = shown.substr(0, 61) + "...";
    return Error(what + " is " + shown + ", not " + expected);
  };
  if constexpr (std::is_same_v<V, bool>) {
    if (!j.is_boolean()) throw refuse("true or false");
    return j.get<bool>();
  } else if constexpr (std::is_integral_v<V> && std::is_unsigned_v<V>) {
    if (!j.is_number_unsigned() || j.get<std::uint64_t>() > std::numeric_limits<V>::max())
      throw refuse("a whole number >= 0");
    return static_cast<V>(j.get<std::uint64_t>());
  } else if constexpr (std::is_integral_v<V>) {
    if (!j.is_number_integer()) throw refuse("a whole number");
    const std::int64_t v = j.is_number_unsigned() && j.get<std::uint64_t>() > std::uint64_t(INT64_MAX)
                               ? throw refuse("a whole number in range")
                               : j.get<std::int64_t>();
    if (v < std::numeric_limits<V>::min() || v > std::numeric_limits<V>::max()) throw refuse("a whole number in range");
    return static_cast<V>(v);
  } else if constexpr (std::is_floating_point_v<V>) {
    if (!j.is_number()) throw refuse("a number");
    return j.get<V>();
  } else {
    static_assert(std::is_same_v<V, std::string>, "json_get: bool, integers, floating point or std::string");
    if (!j.is_string()) throw refuse("a string");
    return j.get<std::string>();
  }
}

}  // namespace xg
