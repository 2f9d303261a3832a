#include "train/job.h"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"

namespace xg::train {

int exit_code_of(const std::exception& e) {
  if (dynamic_cast<const UsageError*>(&e)) return kExitUsage;
  if (dynamic_cast<const DataError*>(&e)) return kExitData;
  if (dynamic_cast<const CheckpointError*>(&e) || dynamic_cast<const FileError*>(&e)) return kExitCheckpoint;
  if (dynamic_cast<const NumericError*>(&e)) return kExitNumeric;
  if (const auto* j = dynamic_cast<const JobError*>(&e)) return j->code;
  return 1;
}

std::string job_message(const dist::Outcome& o, const dist::Communicator& world) {
  return (o.rank > 0 ? fmt::format("rank {} of {}: ", o.rank, world.size()) : "") + o.message;
}

void check_same_settings(dist::Communicator& world, const std::string& settings_json) {
  const std::vector<std::string> all = world.all_gather(settings_json);
  const auto first = nlohmann::json::parse(all[0]);
  for (std::size_t r = 1; r < all.size(); ++r) {
    const auto mine = nlohmann::json::parse(all[r]);
    if (first.contains("command") && mine.value("command", "") != first.at("command"))
      throw UsageError(fmt::format("every rank must run the same command: rank {} runs {}, rank 0 runs {}", r,
                                   mine.value("command", "?"), first.at("command").get<std::string>()));
    for (const auto& [key, value] : first.items())
      if (!mine.contains(key) || mine.at(key) != value)
        throw UsageError(fmt::format("every rank must be given the same flags: rank {} has --{} {}, rank 0 has --{} {}", r,
                                     key, mine.contains(key) ? mine.at(key).dump() : "(none)", key, value.dump()));
  }
}

void check_same_data(dist::Communicator& world, const std::string& fingerprint) {
  const std::vector<std::string> all = world.all_gather(fingerprint);
  for (std::size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      throw DataError(fmt::format("every rank must train on the same data: rank {} loaded {}, rank 0 loaded {} (is "
                                  "--data-dir a relative path, or the data different on some machine?)",
                                  r, all[r], all[0]));
}

nn::Checkpoint load_checkpoint_everywhere(dist::Communicator& world, const std::string& path) {
  std::vector<std::uint8_t> bytes;
  on_rank0(world, [&] { bytes = nn::serialize_checkpoint(nn::load_checkpoint(path)); });
  std::uint64_t size = bytes.size();
  world.broadcast(&size, sizeof size, 0);
  bytes.resize(size);
  world.broadcast(bytes.data(), bytes.size(), 0);
  return on_every_rank(world, [&] { return nn::parse_checkpoint(bytes.data(), bytes.size(), path); });
}

}  // namespace xg::train
