#pragma once
/// \file json_limits.h
/// Parsing JSON that comes from outside (checkpoint headers, npm digit files, metrics files) with bounded nesting
/// and size. nlohmann::json parses iteratively, but serialising (dump) and comparing values recurse once per level:
/// a 200,000-deep array in a file with valid checksums overflowed the stack. Every untrusted document goes through
/// parse_json_bounded, which stops at the first value nested deeper than the limit.
/// Needs nlohmann_json on the include path (a header-only helper: xgrad_core does not depend on it).

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace xg {

/// Limits for untrusted JSON: nesting depth (objects and arrays) and bytes.
struct JsonLimits {
  std::size_t max_depth = 64;
  std::size_t max_bytes = std::size_t(1) << 26;  ///< 64 MiB
};

/// Parses [first, last) as JSON within `limits`; any failure (syntax, a number out of range, too deep, too large)
/// throws Error(source + ": " + reason) — pass the error type the caller's users expect (DataError,
/// CheckpointError…).
template <class Error, class It>
nlohmann::json parse_json_bounded(It first, It last, const std::string& source, const JsonLimits& limits = {}) {
  const auto size = static_cast<std::size_t>(last - first);
  if (size > limits.max_bytes)
    throw Error(source + ": JSON of " + std::to_string(size) + " bytes is larger than the limit of " +
                std::to_string(limits.max_bytes));
  struct TooDeep {};
  const nlohmann::json::parser_callback_t within_depth = [&](int depth, nlohmann::json::parse_event_t event,
                                                             nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        static_cast<std::size_t>(depth) >= limits.max_depth)
      throw TooDeep{};
    return true;
  };
  try {
    return nlohmann::json::parse(first, last, within_depth);
  } catch (const TooDeep&) {
    throw Error(source + ": JSON nested deeper than " + std::to_string(limits.max_depth) + " levels");
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(source + ": byte offset " + std::to_string(e.byte) + ": invalid JSON: " + e.what());
  } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
    throw Error(source + ": invalid JSON: " + e.what());
  }
}

}  // namespace xg
