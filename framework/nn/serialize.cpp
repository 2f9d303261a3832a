#include "nn/serialize.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/files.h"
#include "core/json_limits.h"

namespace xg::nn {

namespace {
/// The model's name of each of the optimizer's parameters, in the optimizer's order.
template <class T>
std::vector<std::string> parameter_names(const Optimizer<T>& opt, Module<T>& model) {
  const auto named = model.named_parameters();
  std::vector<std::string> out;
  for (std::size_t i = 0; i < opt.params().size(); ++i) {
    const void* id = opt.params()[i].id();
    const auto it = std::find_if(named.begin(), named.end(), [&](const auto& np) { return np.second.id() == id; });
    if (it == named.end())
      throw std::invalid_argument("checkpoint: parameter " + std::to_string(i) + " of the optimizer (shape " +
                                  shape_str(opt.params()[i].shape()) + ") is not a parameter of the model " +
                                  model.type_name());
    out.push_back(it->first);
  }
  return out;
}

/// "kind.<index>" → "kind.<parameter name>"; other keys ("lr", an optimizer's own names) are kept.
std::string by_name(const std::string& key, const std::vector<std::string>& names) {
  const auto dot = key.find('.');
  if (dot == std::string::npos) return key;
  const std::string ref = key.substr(dot + 1);
  if (ref.empty() || ref.size() > 9 || ref.find_first_not_of("0123456789") != std::string::npos) return key;
  const std::size_t i = std::stoul(ref);
  return i < names.size() ? key.substr(0, dot + 1) + names[i] : key;
}

/// The reverse: "kind.<parameter name>" → "kind.<index>". Other keys — the positional keys of checkpoints written
/// before states were keyed by name (optim.momentum_buffer.3), "lr" — are kept, and the optimizer checks them.
std::string by_index(const std::string& key, const std::vector<std::string>& names) {
  const auto dot = key.find('.');
  if (dot == std::string::npos) return key;
  const auto it = std::find(names.begin(), names.end(), key.substr(dot + 1));
  return it == names.end() ? key : key.substr(0, dot + 1) + std::to_string(it - names.begin());
}
}  // namespace

template <class T>
std::map<std::string, double> add_optimizer_state(Checkpoint& ck, const Optimizer<T>& opt, Module<T>& model) {
  const auto names = parameter_names(opt, model);
  const OptimizerState<T> st = opt.state();
  for (const auto& [key, t] : st.tensors) ck.add("optim." + by_name(key, names), t);
  std::map<std::string, double> scalars;
  for (const auto& [key, v] : st.scalars) scalars[by_name(key, names)] = v;
  return scalars;
}

template <class T>
OptimizerState<T> optimizer_state_from(const Checkpoint& ck, const std::map<std::string, double>& scalars,
                                       const Optimizer<T>& opt, Module<T>& model) {
  std::vector<std::string> names;
  try {
    names = parameter_names(opt, model);
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(e.what());
  }
  // Every per-parameter entry ("kind.<name>", or "kind.<index>" from older checkpoints) must belong to one of the
  // optimizer's parameters: state for a parameter this optimizer does not update (an optimizer over a subset of the
  // model) would otherwise be dropped without a word.
  const auto checked_index = [&](const std::string& key) {
    const std::string k = by_index(key, names);
    const auto dot = k.find('.');
    if (dot == std::string::npos) return k;
    const std::string ref = k.substr(dot + 1);
    const bool positional = !ref.empty() && ref.size() <= 9 && ref.find_first_not_of("0123456789") == std::string::npos;
    if (!positional || std::stoul(ref) >= names.size())
      throw CheckpointError("checkpoint: the optimizer state '" + files::escape_bytes(key) + "' belongs to no parameter of this " +
                            opt.name() + " optimizer (it updates " + std::to_string(names.size()) +
                            " parameters): was the checkpoint's optimizer over other parameters?");
    return k;
  };
  OptimizerState<T> st;
  for (const auto& t : ck.tensors)
    if (t.name.rfind("optim.", 0) == 0) st.tensors.emplace_back(checked_index(t.name.substr(6)), ck.get<T>(t.name));
  for (const auto& [key, v] : scalars) st.scalars[checked_index(key)] = v;
  return st;
}

template std::map<std::string, double> add_optimizer_state(Checkpoint&, const Optimizer<float>&, Module<float>&);
template std::map<std::string, double> add_optimizer_state(Checkpoint&, const Optimizer<double>&, Module<double>&);
template OptimizerState<float> optimizer_state_from(const Checkpoint&, const std::map<std::string, double>&,
                                                    const Optimizer<float>&, Module<float>&);
template OptimizerState<double> optimizer_state_from(const Checkpoint&, const std::map<std::string, double>&,
                                                     const Optimizer<double>&, Module<double>&);

}  // namespace xg::nn

namespace xg {

namespace {
template <class T>
void save_impl(const std::string& path, nn::Module<T>& model, const nn::Optimizer<T>* opt,
               const nn::LrScheduler<T>* sched) {
  nn::Checkpoint ck;
  ck.arch = model.architecture();
  nn::add_module(ck, model);
  nlohmann::json meta = nlohmann::json::object();
  if (opt) {
    meta["optimizer"] = opt->name();
    meta["optimizer_scalars"] = nn::add_optimizer_state(ck, *opt, model);
  }
  if (sched) {
    meta["scheduler"] = sched->describe();
    meta["scheduler_state"] = sched->state();
  }
  ck.meta_json = meta.dump();
  nn::save_checkpoint(path, ck);
}

template <class T>
void load_impl(const std::string& path, nn::Module<T>& model, nn::Optimizer<T>* opt, nn::LrScheduler<T>* sched) {
  const nn::Checkpoint ck = nn::load_checkpoint(path);
  const std::string where = files::escape_bytes(path) + ": ";
  // The model first, without changing it: its architecture and every tensor.
  nn::check_matches(ck, model, where);
  nlohmann::json meta;
  std::map<std::string, double> scalars, sched_state;
  try {
    meta = nlohmann::json::parse(ck.meta_json);
    if (!meta.is_object()) throw CheckpointError(where + "the metadata is not a JSON object");
    if (opt) {
      if (!meta.contains("optimizer"))
        throw CheckpointError(where + "holds no optimizer state (it was saved without an optimizer)");
      const auto type = json_get<std::string, CheckpointError>(meta.at("optimizer"), where + "the optimizer type");
      if (type != opt->name())
        throw CheckpointError(where + "holds the state of optimizer '" + files::escape_bytes(type) + "', not '" +
                              opt->name() + "'");
      for (const auto& [k, v] : meta.at("optimizer_scalars").items())
        scalars[k] = json_get<double, CheckpointError>(v, where + "optimizer scalar " + files::escape_bytes(k));
    }
    if (sched) {
      if (!meta.contains("scheduler_state"))
        throw CheckpointError(where + "holds no scheduler state (it was saved without a scheduler)");
      const auto type = json_get<std::string, CheckpointError>(meta.at("scheduler"), where + "the scheduler");
      if (type != sched->describe())
        throw CheckpointError(where + "holds the state of scheduler " + files::escape_bytes(type) + ", not " +
                              sched->describe());
      for (const auto& [k, v] : meta.at("scheduler_state").items())
        sched_state[k] = json_get<double, CheckpointError>(v, where + "scheduler value " + files::escape_bytes(k));
    }
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(where + "malformed metadata: " + json_reason(e));
  }
  // Then the optimizer and scheduler (each validates before it changes), undoing the optimizer if the scheduler fails;
  // the model last (nothing can fail any more).
  std::optional<nn::OptimizerState<T>> previous;
  if (opt) {
    previous = opt->state();
    opt->load_state(nn::optimizer_state_from(ck, scalars, *opt, model));
  }
  if (sched) {
    try {
      sched->load_state(sched_state);
    } catch (...) {
      if (opt) opt->load_state(*previous);
      throw;
    }
  }
  nn::load_module(model, ck);
}
}  // namespace

template <class T>
void save(const std::string& path, nn::Module<T>& model) {
  save_impl<T>(path, model, nullptr, nullptr);
}
template <class T>
void save(const std::string& path, nn::Module<T>& model, const nn::Optimizer<T>& optimizer) {
  save_impl<T>(path, model, &optimizer, nullptr);
}
template <class T>
void save(const std::string& path, nn::Module<T>& model, const nn::Optimizer<T>& optimizer,
          const nn::LrScheduler<T>& scheduler) {
  save_impl<T>(path, model, &optimizer, &scheduler);
}
template <class T>
void load(const std::string& path, nn::Module<T>& model) {
  load_impl<T>(path, model, nullptr, nullptr);
}
template <class T>
void load(const std::string& path, nn::Module<T>& model, nn::Optimizer<T>& optimizer) {
  load_impl<T>(path, model, &optimizer, nullptr);
}
template <class T>
void load(const std::string& path, nn::Module<T>& model, nn::Optimizer<T>& optimizer, nn::LrScheduler<T>& scheduler) {
  load_impl<T>(path, model, &optimizer, &scheduler);
}

#define XG_INSTANTIATE(T)                                                                                      \
  template void save(const std::string&, nn::Module<T>&);                                                      \
  template void save(const std::string&, nn::Module<T>&, const nn::Optimizer<T>&);                             \
  template void save(const std::string&, nn::Module<T>&, const nn::Optimizer<T>&, const nn::LrScheduler<T>&);  \
  template void load(const std::string&, nn::Module<T>&);                                                      \
  template void load(const std::string&, nn::Module<T>&, nn::Optimizer<T>&);                                   \
  template void load(const std::string&, nn::Module<T>&, nn::Optimizer<T>&, nn::LrScheduler<T>&);
XG_INSTANTIATE(float)
XG_INSTANTIATE(double)
#undef XG_INSTANTIATE

}  // namespace xg
