#pragma once
// Internal: the MPI communicator behind dist::Environment (compiled only with XGRAD_HAVE_MPI).
#include <memory>

#include "dist/communicator.h"

namespace xg::dist::detail {
/// MPI_Init_thread (FUNNELED), errors returned rather than fatal, and a communicator over MPI_COMM_WORLD.
std::unique_ptr<Communicator> init_mpi_world(int& argc, char**& argv);
void finalize_mpi();
}  // namespace xg::dist::detail
