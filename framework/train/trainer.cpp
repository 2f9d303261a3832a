#include "train/trainer.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/json_limits.h"
#include "ops/ops.h"
#include "nn/serialize.h"
#include "train/job.h"

namespace xg::train {

namespace {
bool all_finite(const Tensor<float>& t) {
  for (float v : t)
    if (!std::isfinite(v)) return false;
  return true;
}

/// The stochastic layers' generator seed for (seed, epoch, rank).
std::uint64_t noise_seed(std::uint64_t seed, std::size_t epoch, int rank) {
  return splitmix64(splitmix64(splitmix64(seed ^ 0x64726f706f7574ULL) ^ epoch) ^ static_cast<std::uint64_t>(rank));
}

/// A loss value for messages: "nan" for any NaN (std::to_string would print "-nan" for some).
std::string show_loss(double l) { return std::isnan(l) ? "nan" : std::to_string(l); }

/// The index of the largest of n logits (the first on ties).
std::size_t argmax(const float* p, std::size_t n) { return static_cast<std::size_t>(std::max_element(p, p + n) - p); }
}  // namespace

Trainer::Trainer(nn::Layer<float>& model, nn::Optimizer<float>& optimizer, data::DataLoader& train, TrainerOptions o,
                 dist::Communicator& comm)
    : model_(&model), optimizer_(&optimizer), loader_(&train), o_(std::move(o)), comm_(&comm),
      noise_rng_(std::make_unique<Rng>()) {
  if (o_.eval_batch_size == 0) throw std::invalid_argument("Trainer: eval_batch_size must be positive");
  if (train.options().world != comm.size() || train.options().rank != comm.rank())
    throw std::invalid_argument(fmt::format("Trainer: the loader is sharded as rank {} of {}, the communicator is rank {} of {}",
                                            train.options().rank, train.options().world, comm.rank(), comm.size()));
  if (!(o_.clip_grad_norm >= 0 && std::isfinite(o_.clip_grad_norm)))
    throw std::invalid_argument("Trainer: clip_grad_norm must be >= 0 and finite");
  model.set_generator(*noise_rng_);
  if (comm.size() > 1) {
    dist::broadcast_parameters(comm, model.parameters());
    dist::check_replicas(comm, model.parameters(), "after the initial broadcast");
  }
  reducer_ = std::make_unique<dist::GradientReducer<float>>(comm, model.parameters());
}

Trainer::~Trainer() = default;

double Trainer::communication_seconds() const { return reducer_->seconds(); }

void Trainer::set_scheduler(nn::LrScheduler<float>* s) {
  scheduler_ = s;
  if (s) {
    s->set_steps_per_epoch(loader_->batches());
    s->set_step(step_);
  }
}

Variable<float> Trainer::loss_of(const Variable<float>& logits, const Labels& targets) const {
  return o_.loss ? o_.loss(logits, targets) : ops::cross_entropy(logits, targets);
}

EpochStats Trainer::train_epoch(const ProgressFn& progress) {
  if (loader_->batches() == 0)  // an epoch of no step would report loss 0 as if it had trained
    throw std::invalid_argument(fmt::format("Trainer: the training loader gives no batch ({} examples, batch size {}{})",
                                            loader_->dataset().size(), loader_->options().batch_size,
                                            loader_->options().drop_last ? ", drop_last" : ""));
  const auto start = std::chrono::steady_clock::now();
  model_->train();
  noise_rng_->seed(noise_seed(o_.seed, epoch_, comm_->rank()));
  loader_->start_epoch(epoch_);
  EpochStats s;
  double loss_sum = 0;
  auto named = model_->named_parameters();
  data::Batch batch;
  while (loader_->next(batch)) {
    const std::size_t n = batch.global_size, mine = batch.targets.size();
    if (scheduler_) scheduler_->set_step(step_);
    optimizer_->zero_grad();
    double batch_loss = 0;  // Σ over this rank's examples, then over all ranks
    if (mine > 0) {
      Variable<float> loss = loss_of((*model_)(Variable<float>(std::move(batch.inputs))), batch.targets);
      batch_loss = static_cast<double>(loss.item()) * static_cast<double>(mine);
      loss.backward();
    }
    reducer_->reduce(static_cast<double>(mine) / static_cast<double>(n));
    comm_->all_reduce_sum(&batch_loss, 1);
    // Every rank sees the same reduced loss and gradients, so every rank stops here together.
    const std::string where = " at epoch " + std::to_string(epoch_ + 1) + ", step " + std::to_string(step_ + 1);
    const double l = batch_loss / static_cast<double>(n);
    if (!o_.allow_nonfinite && !std::isfinite(l))
      throw NumericError("training: the loss (" + o_.loss_name + ") is " + show_loss(l) + where +
                         "; lower the learning rate, or pass --allow-nonfinite to continue anyway");
    if (!o_.allow_nonfinite)
      for (auto& [name, p] : named)
        if (p.has_grad() && !all_finite(p.grad()))
          throw NumericError("training: non-finite gradient in parameter " + name + where);
    if (o_.clip_grad_norm > 0) nn::clip_grad_norm_(model_->parameters(), o_.clip_grad_norm);
    optimizer_->step();
    ++step_;
    loss_sum += batch_loss;
    s.images += n;
    ++s.steps;
    if (progress) progress(s.images, loader_->examples(), loss_sum / static_cast<double>(s.images));
    if (stop_ && *stop_) throw Interrupted(static_cast<int>(*stop_), epoch_ + 1, step_);
  }
  ++epoch_;
  s.loss = s.images ? loss_sum / static_cast<double>(s.images) : 0.0;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  s.images_per_second = s.seconds > 0 ? static_cast<double>(s.images) / s.seconds : 0.0;
  return s;
}

std::uint64_t metrics_resume_offset(const std::string& path, std::size_t epoch) {
  const auto bytes = files::read_regular_file(path, std::size_t(1) << 30, "metrics");
  std::uint64_t keep = 0;
  for (std::size_t pos = 0; pos < bytes.size();) {
    const auto nl = std::find(bytes.begin() + static_cast<std::ptrdiff_t>(pos), bytes.end(), std::uint8_t('\n'));
    if (nl == bytes.end()) break;  // a torn last line
    const auto end = static_cast<std::size_t>(nl - bytes.begin());
    try {
      const auto j = parse_json_bounded<DataError>(bytes.begin() + static_cast<std::ptrdiff_t>(pos), nl, path, JsonLimits{8, end - pos});
      if (!j.is_object() || !j.contains("epoch") || !j["epoch"].is_number_unsigned() || j["epoch"].get<std::size_t>() > epoch) break;
    } catch (const DataError&) {
      break;
    }
    pos = end + 1;
    keep = pos;
  }
  return keep;
}

EvalStats Trainer::evaluate(const data::Dataset& data) {
  if (data.size() == 0)  // a loss and an accuracy of nothing would read as 0
    throw std::invalid_argument("Trainer: evaluate: the dataset '" + data.name() + "' is empty");
  NoGradGuard no_grad;
  const bool was_training = model_->is_training();
  model_->eval();
  EvalStats e;
  double loss_sum = 0;
  std::vector<std::size_t> idx;
  const auto [lo, hi] = shard(data.size(), comm_->rank(), comm_->size());
  for (std::size_t b = lo; b < hi; b += o_.eval_batch_size) {
    idx.clear();
    for (std::size_t i = b; i < std::min(hi, b + o_.eval_batch_size); ++i) idx.push_back(i);
    data::Batch batch = data.get_batch(idx);
    Variable<float> logits = (*model_)(Variable<float>(std::move(batch.inputs)));
    // The mean loss times the batch: the same sum a Sum reduction gives, for any loss function.
    if (o_.loss)
      loss_sum += static_cast<double>(o_.loss(logits, batch.targets).item()) * static_cast<double>(idx.size());
    else
      loss_sum += static_cast<double>(ops::cross_entropy(logits, batch.targets, ops::Reduction::Sum).item());
    const std::size_t classes = logits.shape().at(1);
    const float* p = logits.value().data();
    for (std::size_t r = 0; r < idx.size(); ++r)
      e.correct += argmax(p + r * classes, classes) == static_cast<std::size_t>(batch.targets[r]);
    e.total += idx.size();
  }
  double sums[3] = {loss_sum, static_cast<double>(e.correct), static_cast<double>(e.total)};
  comm_->all_reduce_sum(sums, 3);
  loss_sum = sums[0];
  e.correct = static_cast<std::size_t>(sums[1]);
  e.total = static_cast<std::size_t>(sums[2]);
  model_->train(was_training);
  e.loss = e.total ? loss_sum / static_cast<double>(e.total) : 0.0;
  e.accuracy = e.total ? static_cast<double>(e.correct) / static_cast<double>(e.total) : 0.0;
  return e;
}

std::vector<std::size_t> Trainer::predict(const data::Dataset& data) {
  NoGradGuard no_grad;
  const bool was_training = model_->is_training();
  model_->eval();
  std::vector<std::size_t> out;
  std::vector<std::size_t> idx;
  for (std::size_t b = 0; b < data.size(); b += o_.eval_batch_size) {
    idx.clear();
    for (std::size_t i = b; i < std::min(data.size(), b + o_.eval_batch_size); ++i) idx.push_back(i);
    Variable<float> logits = (*model_)(Variable<float>(data.get_batch(idx).inputs));
    const std::size_t classes = logits.shape().at(1);
    const float* p = logits.value().data();
    for (std::size_t r = 0; r < idx.size(); ++r) out.push_back(argmax(p + r * classes, classes));
  }
  model_->train(was_training);
  return out;
}

FitResult Trainer::fit(const FitOptions& o) {
  const bool rank0 = comm_->rank() == 0;
  ProgressBar bar(o.progress_bar && rank0);
  FitResult result;
  auto say = [&](const std::string& s) {
    if (rank0 && o.say) o.say(s);
  };
  // A checkpoint that cannot be written fails now, not after the first epoch has trained.
  if (!o.checkpoint_path.empty()) on_rank0(*comm_, [&] { files::check_writable(o.checkpoint_path, "checkpoint"); });
  for (std::size_t epoch = epoch_ + 1; epoch <= o.epochs; ++epoch) {
    if (stop_ && *stop_) throw Interrupted(static_cast<int>(*stop_), epoch, step_);
    const auto start = std::chrono::steady_clock::now();
    EpochReport r;
    r.epoch = epoch;
    r.epochs = o.epochs;
    try {
      r.train = train_epoch([&](std::size_t done, std::size_t total, double loss) {
        bar.update(epoch, o.epochs, done, total, loss,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      });
    } catch (...) {
      bar.clear();
      throw;
    }
    bar.clear();
    if (comm_->size() > 1)
      on_every_rank(*comm_, [&] { dist::check_replicas(*comm_, model_->parameters(), fmt::format("after epoch {}", epoch)); });
    r.lr = optimizer_->lr();
    if (o.test) {
      r.test = evaluate(*o.test);
      r.has_test = true;
      result.final_accuracy = r.test.accuracy;
      if (r.test.accuracy > result.best_accuracy) {
        result.best_accuracy = r.test.accuracy;
        result.best_epoch = epoch;
      }
    }
    if (o.validation) {
      r.validation = evaluate(*o.validation);
      r.has_validation = true;
    }
    ++result.epochs_run;
    say(fmt::format("epoch {:>2}/{}  train loss {:.4f}{}{}  {:.1f} s  {:.0f} img/s", epoch, o.epochs, r.train.loss,
                    r.has_test ? fmt::format("  {} loss {:.4f}  accuracy {:.2f}%", o.test_label, r.test.loss,
                                             100 * r.test.accuracy)
                               : "",
                    r.has_validation ? fmt::format("  validation {:.2f}%", 100 * r.validation.accuracy) : "",
                    r.train.seconds, r.train.images_per_second));
    const nn::Checkpoint ck = o.checkpoint_path.empty() ? nn::Checkpoint{} : checkpoint();
    on_rank0(*comm_, [&] {
      // The epoch's metrics line, then its checkpoint. A failed metrics write leaves no torn line (AppendFile rolls
      // back) and no checkpoint of this epoch; a failed save leaves a line for an epoch that a resume trains again,
      // which resuming cuts off first (metrics_resume_offset). Either way the file never lists an epoch twice.
      if (o.metrics && o.metrics->is_open()) {
        nlohmann::json m{{"epoch", epoch},
                         {"train_loss", r.train.loss},
                         {"lr", r.lr},
                         {"batch_size", loader_->options().batch_size},
                         {"epoch_seconds", r.train.seconds},
                         {"train_images_per_second", r.train.images_per_second},
                         {"ranks", comm_->size()}};
        if (r.has_test) {
          m["heldout_loss"] = r.test.loss;
          m["heldout_accuracy"] = r.test.accuracy;
        }
        if (r.has_validation) {
          m["validation_loss"] = r.validation.loss;
          m["validation_accuracy"] = r.validation.accuracy;
        }
        o.metrics->write(m.dump() + "\n");  // a non-finite value is written as null
      }
      if (!o.checkpoint_path.empty()) nn::save_checkpoint(o.checkpoint_path, ck);
    });
    if (!o.checkpoint_path.empty())
      last_checkpoint_ = fmt::format("{} (epoch {})", files::escape_bytes(o.checkpoint_path), epoch);
    if (o.on_epoch_end) o.on_epoch_end(r);
  }
  return result;
}

nn::Checkpoint Trainer::checkpoint() const {
  nn::Checkpoint ck;
  ck.arch = model_->architecture();
  nn::add_module(ck, *model_);
  nlohmann::json meta;
  meta["epoch"] = epoch_;
  meta["step"] = step_;
  const Rng& g = loader_->generator();
  const auto r = g.state();
  meta["rng"] = {r[0], r[1], r[2], r[3]};
  meta["rng_has_spare"] = g.has_spare();
  meta["rng_spare"] = g.spare();
  meta["optimizer"] = optimizer_->name();
  meta["optimizer_scalars"] = nn::add_optimizer_state(ck, *optimizer_, *model_);
  if (scheduler_) {
    meta["scheduler"] = scheduler_->describe();
    meta["scheduler_state"] = scheduler_->state();
  }
  meta["batch_size"] = loader_->options().batch_size;
  meta["seed"] = o_.seed;
  if (!run_settings_.empty()) {
    meta["run"] = nlohmann::json::parse(run_settings_);
    if (meta["run"].contains("arch")) meta["arch"] = meta["run"]["arch"];  // where earlier readers look for it
  }
  ck.meta_json = meta.dump();
  return ck;
}

void Trainer::restore(const nn::Checkpoint& ck) {
  nn::check_matches(ck, *model_);
  nlohmann::json meta;
  std::map<std::string, double> scalars, sched_state;
  Rng::State r{};
  std::size_t epoch = 0, step = 0;
  std::uint64_t seed = 0;
  bool has_spare = false, has_sched = false;
  double spare = 0;
  try {
    meta = nlohmann::json::parse(ck.meta_json);
    if (!meta.is_object()) throw CheckpointError("checkpoint: the training state is not a JSON object");
    const auto optimizer = json_get<std::string, CheckpointError>(meta.at("optimizer"), "checkpoint: the optimizer");
    if (optimizer != optimizer_->name())
      throw CheckpointError("checkpoint was trained with optimizer '" + files::escape_bytes(optimizer) +
                            "', this run uses '" + optimizer_->name() + "'");
    for (const auto& [k, v] : meta.at("optimizer_scalars").items())
      scalars[k] = json_get<double, CheckpointError>(v, "checkpoint: optimizer scalar " + files::escape_bytes(k));
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
    seed = meta.contains("seed") ? whole("seed") : o_.seed;
    has_spare = meta.contains("rng_has_spare") && json_get<bool, CheckpointError>(meta["rng_has_spare"], "checkpoint: rng_has_spare");
    spare = meta.contains("rng_spare") ? json_get<double, CheckpointError>(meta["rng_spare"], "checkpoint: rng_spare") : 0.0;
    if (!std::isfinite(spare)) throw CheckpointError("checkpoint: the generator's spare normal draw is not finite");
    if (scheduler_ && meta.contains("scheduler_state")) {
      has_sched = true;
      for (const auto& [k, v] : meta.at("scheduler_state").items())
        sched_state[k] = json_get<double, CheckpointError>(v, "checkpoint: scheduler value " + files::escape_bytes(k));
    }
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(std::string("checkpoint: malformed training state: ") + json_reason(e));
  }
  // Validate everything before changing anything: the optimizer validates its state before it changes, the scheduler
  // likewise (the optimizer is put back if the scheduler refuses), the model cannot fail after module_mismatch.
  const nn::OptimizerState<float> previous = optimizer_->state();
  optimizer_->load_state(nn::optimizer_state_from(ck, scalars, *optimizer_, *model_));
  if (scheduler_) {
    try {
      if (has_sched) scheduler_->load_state(sched_state);
      scheduler_->set_step(step);
    } catch (...) {
      optimizer_->load_state(previous);
      throw;
    }
  }
  nn::load_module(*model_, ck);
  loader_->generator().set_state(r, has_spare, spare);
  epoch_ = epoch;
  step_ = step;
  o_.seed = seed;  // the stochastic layers' generators derive from the checkpointed run's seed
}

void ProgressBar::update(std::size_t epoch, std::size_t epochs, std::size_t done, std::size_t total, double loss,
                         double seconds) {
  if (!enabled_ || total == 0) return;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * done / total);
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0.0;
  fmt::print(stderr, "\repoch {}/{} [{}{}] {}/{} {:.0f} img/s loss {:.4f} ETA {:.0f}s   ", epoch, epochs,
             std::string(static_cast<std::size_t>(filled), '#'), std::string(static_cast<std::size_t>(kWidth - filled), '.'),
             done, total, rate, loss, eta);
  std::fflush(stderr);
}

void ProgressBar::clear() {
  if (enabled_) fmt::print(stderr, "\r{}\r", std::string(100, ' '));
}

}  // namespace xg::train
