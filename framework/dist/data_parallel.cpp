#include "dist/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "core/errors.h"
#include "core/profiler.h"

namespace xg::dist {

template <class T>
void broadcast_parameters(Communicator& comm, const std::vector<Variable<T>>& params, int root) {
  for (auto p : params) {
    comm.broadcast(p.value().data(), p.numel() * sizeof(T), root);
    p.bump_version();
  }
}

template <class T>
std::uint64_t parameter_checksum(const std::vector<Variable<T>>& params) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  };
  for (const auto& p : params) {
    for (const std::size_t d : p.value().shape()) mix(&d, sizeof d);
    mix(p.value().data(), p.numel() * sizeof(T));
  }
  return h;
}

template <class T>
std::uint64_t check_replicas(Communicator& comm, const std::vector<Variable<T>>& params, const std::string& when) {
  const std::uint64_t mine = parameter_checksum(params);
  const std::vector<std::string> all = comm.all_gather(std::to_string(mine));
  for (std::size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      throw std::runtime_error("distributed: the parameters of rank " + std::to_string(r) + " differ from rank 0's " +
                               when + " (checksums " + all[r] + " and " + all[0] + ")");
  return mine;
}

template <class T>
GradientReducer<T>::GradientReducer(Communicator& comm, std::vector<Variable<T>> params, std::size_t bucket_bytes)
    : comm_(&comm), params_(std::move(params)) {
  if (bucket_bytes < sizeof(T)) throw std::invalid_argument("GradientReducer: the bucket size must hold one element");
  const std::size_t cap = bucket_bytes / sizeof(T);
  std::size_t largest = 0;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const std::size_t n = params_[i].numel();
    // A parameter larger than the cap gets a bucket of its own.
    if (buckets_.empty() || (buckets_.back().elements > 0 && buckets_.back().elements + n > cap))
      buckets_.push_back(Bucket{i, i, 0});
    buckets_.back().last = i + 1;
    buckets_.back().elements += n;
    largest = std::max(largest, buckets_.back().elements);
  }
  buffer_.resize(largest);
}

template <class T>
void GradientReducer<T>::reduce(double weight) {
  if (comm_->size() == 1 && weight == 1.0) {  // nothing to sum: keep the gradients' bits
    for (auto& p : params_)
      if (!p.has_grad()) p.set_grad(zeros<T>(p.shape()));
    return;
  }
  profiler::ScopedForward profile("all_reduce (gradients)");
  const auto start = std::chrono::steady_clock::now();
  const T w = static_cast<T>(weight);
  for (const Bucket& b : buckets_) {
    T* out = buffer_.data();
    for (std::size_t i = b.first; i < b.last; ++i) {
      Variable<T>& p = params_[i];
      const std::size_t n = p.numel();
      if (p.has_grad()) {
        const T* g = p.grad().data();
        for (std::size_t j = 0; j < n; ++j) out[j] = w * g[j];
      } else {
        std::fill(out, out + n, T(0));
      }
      out += n;
    }
    comm_->all_reduce_sum(buffer_.data(), b.elements);
    const T* in = buffer_.data();
    for (std::size_t i = b.first; i < b.last; ++i) {
      Variable<T>& p = params_[i];
      const std::size_t n = p.numel();
      if (!p.has_grad()) p.set_grad(xg::empty<T>(p.shape()));
      std::memcpy(p.grad().data(), in, n * sizeof(T));
      in += n;
    }
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Outcome agree(Communicator& comm, int code, const std::string& message) {
  const std::vector<std::string> all = comm.all_gather(code == 0 ? std::string() : std::to_string(code) + "\n" + message);
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (all[r].empty()) continue;
    const std::size_t nl = all[r].find('\n');
    return Outcome{static_cast<int>(r), std::stoi(all[r].substr(0, nl)), all[r].substr(nl + 1)};
  }
  return Outcome{};
}

template void broadcast_parameters(Communicator&, const std::vector<Variable<float>>&, int);
template void broadcast_parameters(Communicator&, const std::vector<Variable<double>>&, int);
template std::uint64_t parameter_checksum(const std::vector<Variable<float>>&);
template std::uint64_t parameter_checksum(const std::vector<Variable<double>>&);
template std::uint64_t check_replicas(Communicator&, const std::vector<Variable<float>>&, const std::string&);
template std::uint64_t check_replicas(Communicator&, const std::vector<Variable<double>>&, const std::string&);
template class GradientReducer<float>;
template class GradientReducer<double>;

}  // namespace xg::dist
