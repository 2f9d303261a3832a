#include "models/run.h"

#include <nlohmann/json.hpp>

#include "core/files.h"

namespace xg::mnist {

Run::Run(const RunConfig& c, const data::Dataset& train_data, dist::Communicator& comm)
    : config_(c), rng_(std::make_unique<Rng>(c.trainer.seed)) {
  if (c.batch_size == 0 || c.trainer.eval_batch_size == 0) throw std::invalid_argument("mnist run: batch sizes must be positive");
  model_ = c.factory ? c.factory(*rng_) : std::make_unique<MnistCnn<float>>(c.model, *rng_);
  if (c.optimizer == "sgd")
    optimizer_ = std::make_unique<nn::Sgd<float>>(model_->parameters(),
                                                  nn::SgdOptions{c.lr, c.momentum, 0.0, c.weight_decay, c.nesterov});
  else if (c.optimizer == "adam" || c.optimizer == "adamw")
    optimizer_ = std::make_unique<nn::Adam<float>>(
        model_->parameters(), nn::AdamOptions{c.lr, 0.9, 0.999, 1e-8, c.weight_decay, c.optimizer == "adamw"});
  else
    throw std::invalid_argument("unknown optimizer '" + c.optimizer + "' (valid: sgd, adam, adamw)");
  data::LoaderOptions lo;
  lo.batch_size = c.batch_size;
  lo.shuffle = true;
  lo.rank = comm.rank();
  lo.world = comm.size();
  loader_ = std::make_unique<data::DataLoader>(train_data, lo, rng_.get());
  if (c.augment_shift > 0) loader_->add_transform(std::make_shared<data::RandomShift>(c.augment_shift, c.trainer.seed));
  if (c.augment_rotate > 0) loader_->add_transform(std::make_shared<data::RandomRotation>(c.augment_rotate, c.trainer.seed));
  const std::size_t spe = std::max<std::size_t>(1, loader_->batches());
  if (c.scheduler == "step")
    scheduler_ = std::make_unique<nn::StepLR<float>>(*optimizer_, c.step_size, c.gamma, spe);
  else if (c.scheduler == "cosine")
    scheduler_ = std::make_unique<nn::CosineLR<float>>(*optimizer_, static_cast<double>(c.epochs), spe);
  else if (c.scheduler == "warmup-cosine")
    scheduler_ = std::make_unique<nn::WarmupCosineLR<float>>(*optimizer_, c.warmup, static_cast<double>(c.epochs), spe);
  else if (c.scheduler != "none")
    throw std::invalid_argument("unknown scheduler '" + c.scheduler + "' (valid: none, step, cosine, warmup-cosine)");
  trainer_ = std::make_unique<train::Trainer>(*model_, *optimizer_, *loader_, c.trainer, comm);
  trainer_->set_scheduler(scheduler_.get());
  trainer_->set_run_settings(settings_json());
}

std::string Run::settings_json() const {
  const ModelOptions m = model_->options();
  nlohmann::json run{{"arch", config_.arch},
                     {"pool", pool_name(m.pool.value_or(nn::PoolKind::Max), m.pool_p.value_or(3.0))},
                     {"activation", ops::to_string(m.activation.value_or(ops::Activation::Sigmoid))},
                     {"dropout", m.dropout.value_or(0.0)},
                     {"init", to_string(m.init.value_or(InitScheme::PyTorch))},
                     {"optimizer", config_.optimizer},
                     {"lr", config_.lr},
                     {"momentum", config_.momentum},
                     {"nesterov", config_.nesterov},
                     {"weight_decay", config_.weight_decay},
                     {"batch_size", config_.batch_size},
                     {"test_batch_size", config_.trainer.eval_batch_size},
                     {"seed", config_.trainer.seed},
                     {"augment_shift", config_.augment_shift},
                     {"augment_rotate", config_.augment_rotate},
                     {"scheduler", config_.scheduler},
                     {"step_size", config_.step_size},
                     {"gamma", config_.gamma},
                     {"warmup", config_.warmup},
                     {"clip_grad_norm", config_.trainer.clip_grad_norm},
                     {"dataset", config_.dataset}};
  // Settings whose "none" is no value of their flag are stored only when set (a restored 0 would be refused).
  if (!config_.data_dir.empty()) run["data_dir"] = files::escape_bytes(config_.data_dir);
  if (config_.limit) run["limit"] = config_.limit;
  if (config_.test_limit) run["test_limit"] = config_.test_limit;
  if (config_.validation) run["validation"] = config_.validation;
  if (!config_.train_data.empty()) run["train_data"] = config_.train_data;
  return run.dump();
}

void Run::restore(const nn::Checkpoint& ck) {
  trainer_->restore(ck);
  // The run's own learning rate (the checkpoint's unless the caller chose another: docs/mnist.md, "Resuming").
  if (scheduler_) scheduler_->set_base_lr(config_.lr);
  else optimizer_->set_lr(config_.lr);
}

}  // namespace xg::mnist
