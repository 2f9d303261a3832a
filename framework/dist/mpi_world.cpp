// The MPI communicator: MPI_COMM_WORLD with MPI_ERRORS_RETURN, so a failed call becomes an exception naming it.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstdint>
#include <stdexcept>

#include "dist/mpi_world.h"

namespace xg::dist::detail {

namespace {

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw std::runtime_error(std::string("distributed: ") + call + " failed: " + std::string(text, static_cast<std::size_t>(len)));
}

// MPI counts are ints: long buffers go in slices of at most this many elements.
constexpr std::size_t kMaxCount = std::size_t(1) << 30;

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    MPI_Comm node;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
    check(MPI_Comm_size(node, &local_size_), "MPI_Comm_size");
    MPI_Comm_free(&node);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }
  std::string backend() const override { return "mpi"; }

  void all_reduce_sum(float* data, std::size_t n) override { reduce(data, n, MPI_FLOAT); }
  void all_reduce_sum(double* data, std::size_t n) override { reduce(data, n, MPI_DOUBLE); }

  void broadcast(void* data, std::size_t bytes, int root) override {
    auto* p = static_cast<std::uint8_t*>(data);
    for (std::size_t off = 0; off < bytes; off += kMaxCount) {
      const std::size_t n = std::min(kMaxCount, bytes - off);
      check(MPI_Bcast(p + off, static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
  }

  std::vector<std::string> all_gather(const std::string& s) override {
    if (s.size() > kMaxCount) throw std::invalid_argument("distributed: all_gather of more than 1 GiB");
    const int len = static_cast<int>(s.size());
    std::vector<int> lens(static_cast<std::size_t>(size_)), offsets(static_cast<std::size_t>(size_));
    check(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
    std::size_t total = 0;
    for (std::size_t r = 0; r < lens.size(); ++r) {
      offsets[r] = static_cast<int>(total);
      total += static_cast<std::size_t>(lens[r]);
      if (total > INT_MAX) throw std::invalid_argument("distributed: all_gather of more than 2 GiB in total");
    }
    std::string all(total, '\0');
    check(MPI_Allgatherv(s.data(), len, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR, MPI_COMM_WORLD),
          "MPI_Allgatherv");
    std::vector<std::string> out;
    for (std::size_t r = 0; r < lens.size(); ++r)
      out.push_back(all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(lens[r])));
    return out;
  }

  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  template <class T>
  void reduce(T* data, std::size_t n, MPI_Datatype type) {
    for (std::size_t off = 0; off < n; off += kMaxCount) {
      const std::size_t k = std::min(kMaxCount, n - off);
      check(MPI_Allreduce(MPI_IN_PLACE, data + off, static_cast<int>(k), type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    }
  }
  int rank_ = 0, size_ = 1, local_size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> init_mpi_world(int& argc, char**& argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    if (provided < MPI_THREAD_FUNNELED)
      throw std::runtime_error("distributed: this MPI does not provide MPI_THREAD_FUNNELED");
  }
  check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  return std::make_unique<MpiCommunicator>();
}

void finalize_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace xg::dist::detail
