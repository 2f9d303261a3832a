#include "data/loader.h"

#include <stdexcept>
#include <string>

#include "core/parallel.h"
#include "data/mnist.h"

namespace xg::data {

DataLoader::DataLoader(const Dataset& data, LoaderOptions options, Rng* generator)
    : data_(&data), o_(options), gen_(generator) {
  if (o_.batch_size == 0) throw std::invalid_argument("DataLoader: batch_size must be positive");
  if (o_.world < 1 || o_.rank < 0 || o_.rank >= o_.world)
    throw std::invalid_argument("DataLoader: rank " + std::to_string(o_.rank) + " is not in a world of " +
                                std::to_string(o_.world));
  if (!gen_) {
    own_ = std::make_unique<Rng>(o_.seed);
    gen_ = own_.get();
  }
}

void DataLoader::set_batch_size(std::size_t n) {
  if (n == 0) throw std::invalid_argument("DataLoader: batch_size must be positive");
  o_.batch_size = n;
}

std::size_t DataLoader::examples() const {
  const std::size_t n = data_->size();
  return o_.drop_last ? n / o_.batch_size * o_.batch_size : n;
}

std::size_t DataLoader::batches() const {
  const std::size_t n = examples();  // ⌈n / batch⌉ without forming n + batch − 1 (batch SIZE_MAX wrapped to 0 batches)
  return n == 0 ? 0 : (n - 1) / o_.batch_size + 1;
}

void DataLoader::start_epoch(std::size_t epoch) {
  epoch_ = epoch;
  cursor_ = 0;
  if (o_.shuffle) {
    order_ = shuffled_indices(data_->size(), *gen_);
  } else {
    order_.resize(data_->size());
    for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = i;
  }
  order_.resize(examples());
}

bool DataLoader::next(Batch& out) {
  if (cursor_ >= order_.size()) return false;
  const std::size_t n = std::min(order_.size() - cursor_, o_.batch_size);
  const auto [lo, hi] = shard(n, o_.rank, o_.world);
  const std::vector<std::size_t> idx(order_.begin() + static_cast<std::ptrdiff_t>(cursor_ + lo),
                                     order_.begin() + static_cast<std::ptrdiff_t>(cursor_ + hi));
  cursor_ += n;
  out = data_->get_batch(idx);
  out.indices = idx;
  out.global_size = n;
  for (const auto& t : transforms_) t->apply(out.inputs, out.indices, epoch_);
  return true;
}

}  // namespace xg::data
