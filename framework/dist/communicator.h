#pragma once
/// \file communicator.h
/// The processes that train one model together, and the few collective operations data-parallel training needs.
///
/// `Environment` starts MPI when the program was launched by an MPI launcher (`mpirun`, `mpiexec`, Slurm's `srun`)
/// and xgrad was built with MPI (`XGRAD_MPI`, on when CMake finds MPI); otherwise the world is this one process
/// (`LocalCommunicator`, size 1, every collective a no-op), so the same program runs unchanged on a laptop.
/// Collectives are called from the main thread only (MPI_THREAD_FUNNELED); kernels keep their TBB threads.
///
///     int main(int argc, char** argv) {
///       xg::dist::Environment env(argc, argv);
///       xg::dist::Communicator& world = env.world();   // world.rank(), world.size()
///       ...
///     }

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace xg::dist {

/// A group of processes (ranks 0 … size−1). Every collective must be called by every rank, in the same order.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Ranks of this group on this machine (they share its cores).
  virtual int local_size() const = 0;
  /// "local" or "mpi".
  virtual std::string backend() const = 0;

  /// In place: `data[i]` becomes the sum over ranks of `data[i]`, the same bits on every rank (MPI_Allreduce).
  virtual void all_reduce_sum(float* data, std::size_t n) = 0;
  virtual void all_reduce_sum(double* data, std::size_t n) = 0;
  /// Copies `bytes` bytes at `data` from rank `root` to every other rank (MPI_Bcast).
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  /// Every rank's string, in rank order (MPI_Allgather of the lengths, then MPI_Allgatherv).
  virtual std::vector<std::string> all_gather(const std::string& s) = 0;
  virtual void barrier() = 0;
  /// Ends every process of the job with exit code `code` (MPI_Abort); for a failure only this rank has seen.
  [[noreturn]] virtual void abort(int code) = 0;
};

/// One process alone: size 1; reductions, broadcasts and barriers leave the data as it is.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void all_reduce_sum(float*, std::size_t) override {}
  void all_reduce_sum(double*, std::size_t) override {}
  void broadcast(void*, std::size_t, int) override {}
  std::vector<std::string> all_gather(const std::string& s) override { return {s}; }
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

/// A process-wide LocalCommunicator, the default of APIs that take a communicator.
Communicator& local_communicator();

/// True when xgrad was built with MPI.
bool mpi_compiled();
/// True when an MPI launcher started this process: OpenMPI's mpirun (OMPI_COMM_WORLD_SIZE), PMIx (PMIX_RANK; srun
/// --mpi=pmix, OpenMPI 5) or PMI (PMI_SIZE; MPICH's Hydra, srun --mpi=pmi2).
bool launched_by_mpi();

/// Owns the process group for the program's lifetime: starts MPI (MPI_Init_thread, FUNNELED) when launched by an
/// MPI launcher, finalises it on destruction. Construct one, first thing in main. Throws std::runtime_error when
/// launched by an MPI launcher with more than one rank but built without MPI (each process would otherwise train
/// alone and write the same files).
class Environment {
 public:
  Environment(int& argc, char**& argv);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  Communicator& world() { return *world_; }
  /// More than one process.
  bool distributed() const { return world_->size() > 1; }

 private:
  std::unique_ptr<Communicator> world_;
};

}  // namespace xg::dist
