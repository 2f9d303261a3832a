#include "models/trainer.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "core/json_limits.h"

namespace xg::mnist {

namespace {
bool all_finite(const Tensor<float>& t) {
  for (float v : t)
    if (!std::isfinite(v)) return false;
  return true;
}

/// The dropout generator's seed for (seed, epoch, rank).
std::uint64_t dropout_seed(std::uint64_t seed, std::size_t epoch, int rank) {
  return splitmix64(splitmix64(splitmix64(seed ^ 0x64726f706f7574ULL) ^ epoch) ^ static_cast<std::uint64_t>(rank));
}
}  // namespace

Trainer::Trainer(const RunConfig& c, dist::Communicator& comm)
    : config_(c), comm_(&comm), rng_(std::make_unique<Rng>(c.seed)), dropout_rng_(std::make_unique<Rng>()) {
  if (c.batch_size == 0 || c.test_batch_size == 0) throw std::invalid_argument("trainer: batch sizes must be positive");
  model_ = std::make_unique<MnistCnn<float>>(c.model, *rng_);
  model_->set_dropout_rng(*dropout_rng_);
  if (comm.size() > 1) {
    dist::broadcast_parameters(comm, model_->parameters());
    dist::check_replicas(comm, model_->parameters(), "after the initial broadcast");
  }
  reducer_ = std::make_unique<dist::GradientReducer<float>>(comm, model_->parameters());
  if (c.optimizer == "sgd")
    optimizer_ = std::make_unique<nn::Sgd<float>>(
        model_->parameters(), nn::SgdOptions{c.lr, c.momentum, 0.0, c.weight_decay, c.nesterov});
  else if (c.optimizer == "adam")
    optimizer_ = std::make_unique<nn::Adam<float>>(model_->parameters(),
                                                   nn::AdamOptions{c.lr, 0.9, 0.999, 1e-8, c.weight_decay, false});
  else
    throw std::invalid_argument("unknown optimizer '" + c.optimizer + "' (valid: sgd, adam)");
}

EpochStats Trainer::train_epoch(const Dataset& data, const ProgressFn& progress) {
  const auto start = std::chrono::steady_clock::now();
  model_->train();
  dropout_rng_->seed(dropout_seed(config_.seed, epoch_, comm_->rank()));
  const std::vector<std::size_t> order = shuffled_indices(data.size(), *rng_);
  EpochStats s;
  double loss_sum = 0;
  auto named = model_->named_parameters();
  for (std::size_t b = 0; b < order.size(); b += config_.batch_size) {
    // The global mini-batch order[b, b + n), and this rank's share of it.
    const std::size_t n = std::min(order.size(), b + config_.batch_size) - b;
    const auto [lo, hi] = dist::shard(n, comm_->rank(), comm_->size());
    const std::vector<std::size_t> idx(order.begin() + static_cast<std::ptrdiff_t>(b + lo),
                                       order.begin() + static_cast<std::ptrdiff_t>(b + hi));
    optimizer_->zero_grad();
    double batch_loss = 0;  // Σ over this rank's images, then over all ranks
    if (!idx.empty()) {
      Variable<float> loss = ops::cross_entropy(model_->forward(Variable<float>(data.images<float>(idx))), data.labels_of(idx));
      batch_loss = static_cast<double>(loss.item()) * static_cast<double>(idx.size());
      loss.backward();
    }
    reducer_->reduce(static_cast<double>(idx.size()) / static_cast<double>(n));
    comm_->all_reduce_sum(&batch_loss, 1);
    // Every rank sees the same reduced loss and gradients, so every rank stops here together.
    const std::string where = " at epoch " + std::to_string(epoch_ + 1) + ", step " + std::to_string(step_ + 1);
    const double l = batch_loss / static_cast<double>(n);
    if (!config_.allow_nonfinite && !std::isfinite(l))
      throw NumericError("training: the loss (cross_entropy) is " + std::to_string(l) + where +
                         "; lower the learning rate, or pass --allow-nonfinite to continue anyway");
    if (!config_.allow_nonfinite)
      for (auto& [name, p] : named)
        if (p.has_grad() && !all_finite(p.grad()))
          throw NumericError("training: non-finite gradient in parameter " + name + where);
    optimizer_->step();
    ++step_;
    loss_sum += batch_loss;
    s.images += n;
    ++s.steps;
    if (progress) progress(s.images, data.size(), loss_sum / static_cast<double>(s.images));
    if (stop_ && *stop_) throw Interrupted(static_cast<int>(*stop_), epoch_ + 1, step_);
  }
  ++epoch_;
  s.loss = s.images ? loss_sum / static_cast<double>(s.images) : 0.0;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  s.images_per_second = s.seconds > 0 ? static_cast<double>(s.images) / s.seconds : 0.0;
  return s;
}

EvalStats Trainer::evaluate(const Dataset& data) {
  NoGradGuard no_grad;
  model_->eval();
  EvalStats e;
  double loss_sum = 0;
  std::vector<std::size_t> idx;
  const auto [lo, hi] = dist::shard(data.size(), comm_->rank(), comm_->size());
  for (std::size_t b = lo; b < hi; b += config_.test_batch_size) {
    idx.clear();
    for (std::size_t i = b; i < std::min(hi, b + config_.test_batch_size); ++i) idx.push_back(i);
    const auto labels = data.labels_of(idx);
    Variable<float> logits = model_->forward(Variable<float>(data.images<float>(idx)));
    loss_sum += static_cast<double>(ops::cross_entropy(logits, labels, ops::Reduction::Sum).item());
    const float* p = logits.value().data();
    for (std::size_t r = 0; r < idx.size(); ++r) {
      const std::size_t best = static_cast<std::size_t>(std::max_element(p + r * 10, p + r * 10 + 10) - (p + r * 10));
      e.correct += best == static_cast<std::size_t>(labels[r]);
    }
    e.total += idx.size();
  }
  double sums[3] = {loss_sum, static_cast<double>(e.correct), static_cast<double>(e.total)};
  comm_->all_reduce_sum(sums, 3);
  loss_sum = sums[0];
  e.correct = static_cast<std::size_t>(sums[1]);
  e.total = static_cast<std::size_t>(sums[2]);
  model_->train();
  e.loss = e.total ? loss_sum / static_cast<double>(e.total) : 0.0;
  e.accuracy = e.total ? static_cast<double>(e.correct) / static_cast<double>(e.total) : 0.0;
  return e;
}

std::vector<std::size_t> Trainer::predict(const Dataset& data) {
  NoGradGuard no_grad;
  model_->eval();
  std::vector<std::size_t> out;
  std::vector<std::size_t> idx;
  for (std::size_t b = 0; b < data.size(); b += config_.test_batch_size) {
    idx.clear();
    for (std::size_t i = b; i < std::min(data.size(), b + config_.test_batch_size); ++i) idx.push_back(i);
    Variable<float> logits = model_->forward(Variable<float>(data.images<float>(idx)));
    const float* p = logits.value().data();
    for (std::size_t r = 0; r < idx.size(); ++r)
      out.push_back(static_cast<std::size_t>(std::max_element(p + r * 10, p + r * 10 + 10) - (p + r * 10)));
  }
  model_->train();
  return out;
}

nn::Checkpoint Trainer::checkpoint() const {
  nn::Checkpoint ck;
  ck.arch = model_->describe();
  nn::add_module(ck, *model_);
  const auto st = optimizer_->state();
  for (const auto& [name, t] : st.tensors) ck.add("optim." + name, t);
  nlohmann::json meta;
  meta["epoch"] = epoch_;
  meta["step"] = step_;
  const auto r = rng_->state();
  meta["rng"] = {r[0], r[1], r[2], r[3]};
  meta["rng_has_spare"] = rng_->has_spare();
  meta["rng_spare"] = rng_->spare();
  meta["optimizer"] = config_.optimizer;
  meta["optimizer_scalars"] = st.scalars;
  meta["arch"] = config_.arch;
  meta["batch_size"] = config_.batch_size;
  meta["seed"] = config_.seed;
  // Every setting of the run, so that a resumed run continues with them (docs/mnist.md, "Resuming").
  const auto& m = config_.model;
  meta["run"] = {{"arch", config_.arch},
                 {"pool", to_string(m.stages.empty() ? nn::PoolKind::Max : m.stages[0].pool)},
                 {"activation", to_string(m.activation)},
                 {"dropout", m.dropout},
                 {"init", m.init == InitScheme::PyTorch ? "pytorch" : "network3"},
                 {"optimizer", config_.optimizer},
                 {"lr", optimizer_->lr()},
                 {"momentum", config_.momentum},
                 {"nesterov", config_.nesterov},
                 {"weight_decay", config_.weight_decay},
                 {"batch_size", config_.batch_size},
                 {"test_batch_size", config_.test_batch_size},
                 {"seed", config_.seed}};
  ck.meta_json = meta.dump();
  return ck;
}

void Trainer::restore(const nn::Checkpoint& ck) {
  if (ck.arch != model_->describe()) {
    const std::string diff = nn::module_mismatch(*model_, ck);
    throw CheckpointError("checkpoint architecture '" + ck.arch + "' does not match this model '" +
                          model_->describe() + "'" + (diff.empty() ? "" : ": " + diff));
  }
  nlohmann::json meta;
  nn::OptimizerState<float> st;
  Rng::State r{};
  std::size_t epoch = 0, step = 0;
  std::uint64_t seed = 0;
  bool has_spare = false;
  double spare = 0;
  try {
    meta = nlohmann::json::parse(ck.meta_json);
    if (!meta.is_object()) throw CheckpointError("checkpoint: the training state is not a JSON object");
    const auto optimizer = json_get<std::string, CheckpointError>(meta.at("optimizer"), "checkpoint: the optimizer");
    if (optimizer != config_.optimizer)
      throw CheckpointError("checkpoint was trained with optimizer '" + files::escape_bytes(optimizer) +
                            "', this run uses '" + config_.optimizer + "'");
    for (const auto& t : ck.tensors)
      if (t.name.rfind("optim.", 0) == 0) st.tensors.emplace_back(t.name.substr(6), ck.get<float>(t.name));
    st.scalars = meta.at("optimizer_scalars").get<std::map<std::string, double>>();
    // Crafted values are refused here, not trusted: nlohmann would convert -1 or 1.5 to a size_t silently.
    // Counts are bounded (2^53) so that the next epoch or step cannot wrap around.
    auto whole = [&](const char* key) {
      const auto v = json_get<std::uint64_t, CheckpointError>(meta.at(key), std::string("checkpoint: the training state's ") + key);
      if (v > (std::uint64_t(1) << 53))
        throw CheckpointError(std::string("checkpoint: the training state's ") + key + " is " + std::to_string(v) +
                              ", more than any run makes");
      return v;
    };
    const auto& rv = meta.at("rng");
    if (!rv.is_array() || rv.size() != 4) throw CheckpointError("checkpoint: the generator state must have 4 words");
    for (std::size_t i = 0; i < 4; ++i) {
      if (!rv[i].is_number_unsigned()) throw CheckpointError("checkpoint: generator word " + std::to_string(i) + " is " + rv[i].dump());
      r[i] = rv[i].get<std::uint64_t>();
    }
    if ((r[0] | r[1] | r[2] | r[3]) == 0)
      throw CheckpointError("checkpoint: the generator state is all zero (xoshiro256 would only ever draw zeros)");
    epoch = whole("epoch");
    step = whole("step");
    seed = meta.contains("seed") ? whole("seed") : config_.seed;
    has_spare = meta.contains("rng_has_spare") && json_get<bool, CheckpointError>(meta["rng_has_spare"], "checkpoint: rng_has_spare");
    spare = meta.contains("rng_spare") ? json_get<double, CheckpointError>(meta["rng_spare"], "checkpoint: rng_spare") : 0.0;
    if (!std::isfinite(spare)) throw CheckpointError("checkpoint: the generator's spare normal draw is not finite");
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(std::string("checkpoint: malformed training state: ") + json_reason(e));
  }
  // Validate everything before changing anything: the optimizer state against a scratch optimizer first.
  if (config_.optimizer == "sgd") nn::Sgd<float>(model_->parameters(), nn::SgdOptions{}).load_state(st);
  else nn::Adam<float>(model_->parameters(), nn::AdamOptions{}).load_state(st);
  nn::load_module(*model_, ck);
  optimizer_->load_state(st);
  // The run's own learning rate (the checkpoint's unless the caller chose another: docs/mnist.md, "Resuming").
  optimizer_->set_lr(config_.lr);
  rng_->set_state(r, has_spare, spare);
  epoch_ = epoch;
  step_ = step;
  config_.seed = seed;  // dropout masks derive from the checkpointed run's seed
}

}  // namespace xg::mnist
