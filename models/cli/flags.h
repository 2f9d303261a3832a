#pragma once
/// \file flags.h
/// The mnist CLI's flag table and validators (internal to models/cli/).

#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/files.h"
#include "core/json_limits.h"

namespace xg::mnist::cli {

/// The string a setting is shown as in messages.
inline std::string show(const std::string& v) { return files::escape_bytes(v); }
inline std::string show(double v) { return fmt::format("{}", v); }
inline std::string show(bool v) { return v ? "on" : "off"; }
inline std::string show(std::uint64_t v) { return std::to_string(v); }

/// What --resume does with a flag (docs/mnist.md, "Resuming"): `Keep` — it defines what the checkpoint is (the model,
/// the optimizer, the random streams), so a given value must equal the stored one; `Change` — a resumed run may change
/// it midway, a given value wins; `None` — not a run setting.
enum class Resume { None, Keep, Change };

/// The CLI's flags, each declared once, with its validator and its resume role: `option`/`flag` registers it with
/// CLI11 and remembers how to read, compare and restore its value. So the check that every rank of a distributed job
/// was given the same flags, and --resume's rule for every stored setting, cover each flag without a list of their
/// own. Paths are bytes: they go in escaped (files::escape_bytes, reversible), so any bytes compare exactly and JSON
/// never meets invalid UTF-8.
struct FlagRole {
  Resume resume = Resume::None;
  bool same_on_every_rank = true;  ///< all but --threads, which changes no result
};

class FlagTable {
 public:
  using Role = FlagRole;
  explicit FlagTable(CLI::App& app) : app_(&app) {}

  /// An option; `validator` (optional) checks — and may rewrite — its text, on the command line and in checkpoints.
  template <class V>
  CLI::Option* option(const std::string& name, V& value, const std::string& help,
                      std::optional<CLI::Validator> validator = std::nullopt, Role role = {}) {
    add(name, value, validator, role);
    CLI::Option* o = app_->add_option(name, value, help);
    if (validator) o->transform(*validator);
    return o;
  }
  CLI::Option* flag(const std::string& name, bool& value, const std::string& help, Role role = {}) {
    add(name, value, std::nullopt, role);
    return app_->add_flag(name, value, help);
  }
  /// Every recorded flag's value, and the command.
  std::string json(const std::string& command) const {
    nlohmann::json j{{"command", "mnist " + command}};
    for (const auto& e : entries_)
      if (e.same_on_every_rank) j[e.key] = e.get();
    return j.dump();
  }
  /// --resume: every flag with a resume role takes the checkpoint's setting `run[key]` unless it was given; a given
  /// `Keep` flag must equal it (UsageError naming both). A stored value the flag itself would refuse is a crafted
  /// checkpoint (CheckpointError, exit 4), not a usage error about a flag that was never given.
  void restore(const nlohmann::json& run, const std::set<std::string>& given) const {
    for (const auto& e : entries_)
      if (e.restore && run.contains(e.setting)) e.restore(run.at(e.setting), given);
  }

 private:
  struct Entry {
    std::string key;      ///< the flag without its dashes ("augment-shift")
    std::string setting;  ///< its name in a checkpoint's run settings ("augment_shift")
    bool same_on_every_rank;
    std::function<nlohmann::json()> get;
    std::function<void(const nlohmann::json&, const std::set<std::string>&)> restore;
  };
  template <class V>
  void add(const std::string& name, V& value, std::optional<CLI::Validator> validator, Role role) {
    Entry e{name.substr(2), name.substr(2), role.same_on_every_rank, [&value] { return json_of(value); }, {}};
    std::replace(e.setting.begin(), e.setting.end(), '-', '_');
    if (role.resume != Resume::None)
      e.restore = [&value, name, setting = e.setting, validator, keep = role.resume == Resume::Keep](
                      const nlohmann::json& stored_json, const std::set<std::string>& given) {
        const std::string what = "checkpoint: the run setting '" + setting + "'";
        V stored = json_get<V, CheckpointError>(stored_json, what);
        if constexpr (std::is_same_v<V, std::string>) {  // stored escaped (json_of): back to the bytes
          try {
            stored = files::unescape_bytes(stored);
          } catch (const FileError& e) {
            throw CheckpointError(what + ": " + e.what());
          }
        }
        std::string text = stored_json.is_string() ? stored_json.get<std::string>() : stored_json.dump();
        if (validator && !(*validator)(text).empty())
          throw CheckpointError(what + " is " + stored_json.dump() + ", which " + name + " does not accept");
        if (!given.count(name)) {
          value = stored;
        } else if (keep && !(stored == value)) {
          throw UsageError(fmt::format("{} {} differs from the checkpoint's {} {}: a resumed run keeps the model, "
                                       "optimizer and seed it started with (leave {} out, or start a new run without "
                                       "--resume)", name, show(value), name, show(stored), name));
        }
      };
    entries_.push_back(std::move(e));
  }
  template <class V>
  static nlohmann::json json_of(const V& v) {
    if constexpr (std::is_same_v<V, std::string>) return files::escape_bytes(v);
    else return v;
  }
  CLI::App* app_;
  std::vector<Entry> entries_;
};

inline const std::vector<std::string> kOptimizerNames{"sgd", "adam", "adamw"};
inline const std::vector<std::string> kSchedulerNames{"none", "step", "cosine", "warmup-cosine"};

/// "a, b or c" for help texts.
std::string choices(const std::vector<std::string>& names);
/// A whole decimal number in [lo, hi]: digits only, read in base 10 even with leading zeros.
CLI::Validator decimal(std::uint64_t lo, std::uint64_t hi);
/// A --pool value: max, l2, avg, lpP or stochastic.
CLI::Validator pool_choice();
/// A finite decimal number in [lo, hi] (NaN and Inf are refused).
CLI::Validator finite_range(double lo, double hi);

}  // namespace xg::mnist::cli
