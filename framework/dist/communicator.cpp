#include "dist/communicator.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "dist/mpi_world.h"

namespace xg::dist {

void LocalCommunicator::abort(int code) { std::_Exit(code); }

Communicator& local_communicator() {
  static LocalCommunicator local;
  return local;
}

bool mpi_compiled() {
#ifdef XGRAD_HAVE_MPI
  return true;
#else
  return false;
#endif
}

namespace {
long env_long(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : -1;
}
}  // namespace

bool launched_by_mpi() {
  return env_long("OMPI_COMM_WORLD_SIZE") >= 1 || std::getenv("PMIX_RANK") != nullptr || env_long("PMI_SIZE") >= 1;
}

Environment::Environment(int& argc, char**& argv) {
  if (launched_by_mpi()) {
#ifdef XGRAD_HAVE_MPI
    world_ = detail::init_mpi_world(argc, argv);
    return;
#else
    const long size = std::max(env_long("OMPI_COMM_WORLD_SIZE"), env_long("PMI_SIZE"));
    if (size > 1)
      throw std::runtime_error("distributed: launched as one of " + std::to_string(size) +
                               " MPI processes, but xgrad was built without MPI; install libopenmpi-dev and "
                               "rebuild (CMake option XGRAD_MPI)");
#endif
  }
  (void)argc;
  (void)argv;
  world_ = std::make_unique<LocalCommunicator>();
}

Environment::~Environment() {
#ifdef XGRAD_HAVE_MPI
  if (world_ && world_->backend() == "mpi") {
    world_.reset();
    detail::finalize_mpi();
  }
#endif
}

}  // namespace xg::dist
