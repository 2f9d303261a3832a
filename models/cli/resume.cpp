#include <algorithm>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "core/json_limits.h"
#include "models/cli/cli.h"
#include "models/cli/flags.h"
#include "models/registry.h"

namespace xg::mnist::cli {

/// --resume continues the checkpoint's run with the checkpoint's settings (docs/mnist.md, "Resuming"). A flag given on
/// the command line wins for what a run may change midway — --lr, --momentum, --nesterov, --weight-decay,
/// --batch-size, --test-batch-size — and the banner and metrics show the value in use. Flags that define the model,
/// the optimizer or the random streams — --arch, --pool, --activation, --dropout, --init, --optimizer, --seed — must
/// equal the checkpoint's: a different value is refused (UsageError, exit 2) naming the flag and both values.
void adopt_checkpoint_settings(Options& o, const nn::Checkpoint& ck, const FlagTable& flags) {
  nlohmann::json meta, run;
  try {
    meta = nlohmann::json::parse(ck.meta_json);  // bounded already: it came from a verified header
    run = meta.value("run", nlohmann::json::object());
    // Checkpoints written before "run" existed hold some settings at the top level.
    for (const char* k : {"arch", "optimizer", "batch_size", "seed"})
      if (!run.contains(k) && meta.contains(k)) run[k] = meta[k];
    if (!run.contains("lr") && meta.contains("optimizer_scalars") && meta["optimizer_scalars"].contains("lr"))
      run["lr"] = meta["optimizer_scalars"]["lr"];
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(std::string("checkpoint: malformed run settings: ") + json_reason(e));
  }
  flags.restore(run, o.given);
  // Combinations the flags refuse are crafted too when the checkpoint supplied every value involved.
  const auto given_any = [&](std::initializer_list<const char*> flags) {
    return std::any_of(flags.begin(), flags.end(), [&](const char* f) { return o.given.count(f) > 0; });
  };
  const RunConfig& c = o.run;
  if (c.nesterov && !(c.momentum > 0) && !given_any({"--nesterov", "--momentum"}))
    throw CheckpointError("checkpoint: the run settings have Nesterov momentum without a momentum");
  if ((c.momentum > 0 || c.nesterov) && c.optimizer != "sgd" && !given_any({"--momentum", "--nesterov", "--optimizer"}))
    throw CheckpointError("checkpoint: the run settings have momentum with optimizer " + files::escape_bytes(c.optimizer));
  if (o.dropout > 0 && !find_model(c.arch).has_hidden_layers && !given_any({"--dropout", "--arch"}))
    throw CheckpointError("checkpoint: the run settings have dropout on the " + c.arch + " network, which has no hidden layer");
}

/// --resume: the training (and validation) data must be the checkpoint's run's, whatever flags named it: a changed
/// --data-dir that holds the same images is fine, a changed --limit or other images are refused (exit 2). Checkpoints
/// written before the fingerprint was stored are not checked.
void check_resumed_data(const nn::Checkpoint& ck, const std::string& train_data, const std::set<std::string>& given) {
  std::string stored;
  try {
    const auto meta = nlohmann::json::parse(ck.meta_json);
    if (!meta.contains("run") || !meta["run"].contains("train_data")) return;
    stored = json_get<std::string, CheckpointError>(meta["run"]["train_data"], "checkpoint: the run setting 'train_data'");
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(std::string("checkpoint: malformed run settings: ") + json_reason(e));
  }
  if (stored == train_data) return;
  std::string flags;
  for (const char* f : {"--dataset", "--data-dir", "--limit", "--validation"})
    if (given.count(f)) flags += (flags.empty() ? "" : ", ") + std::string(f);
  throw UsageError("--resume: this run's training data (" + train_data + ") is not the checkpoint's (" +
                   files::printable(stored) + ")" + (flags.empty() ? "" : "; check " + flags) +
                   ": a resumed run continues on the data it started with");
}

/// "name: N of M values are NaN or Inf" for the first parameter that is not finite; empty when all are.
std::string first_nonfinite(nn::Module<float>& model) {
  for (auto& [name, p] : model.named_parameters()) {
    std::size_t bad = 0;
    for (float v : p.value()) bad += !std::isfinite(v);
    if (bad) return fmt::format("{}: {} of {} values are NaN or Inf", name, bad, p.numel());
  }
  return {};
}

/// Epochs a checkpoint's run had completed (its metadata), 0 when it does not say.
std::size_t checkpoint_epoch(const nn::Checkpoint& ck) {
  try {
    const auto meta = nlohmann::json::parse(ck.meta_json);
    if (meta.contains("epoch") && meta["epoch"].is_number_unsigned()) return meta["epoch"].get<std::size_t>();
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}

/// Copies a checkpoint's weights into `model`, built from --arch `arch`: refused (naming the file, every difference
/// and the flag) when the checkpoint is of another architecture.
void check_previous_release_identity(const ImageClassifier<float>& model, const nn::Checkpoint& ck, const std::string& path,
                                     const std::string& arch) {
  // A record is checked by nn::check_matches; a display string (the releases before it) against the one this model
  // had then. Empty: no identity was stored.
  if (ck.arch.empty() || ck.arch.front() == '{' || ck.arch == model.previous_release_description()) return;
  throw CheckpointError(files::escape_bytes(path) + ": architecture '" + files::escape_bytes(ck.arch) + "' does not match --arch " +
                        arch + " with the given flags ('" + model.previous_release_description() + "')");
}

void load_weights(ImageClassifier<float>& model, const nn::Checkpoint& ck, const std::string& path, const std::string& arch) {
  check_previous_release_identity(model, ck, path, arch);
  try {
    nn::check_matches(ck, model, files::escape_bytes(path) + ": ");
  } catch (const CheckpointError& e) {
    throw CheckpointError(std::string(e.what()) + " (the model is --arch " + arch + " with the given flags)");
  }
  nn::load_module(model, ck);
}

}  // namespace xg::mnist::cli
