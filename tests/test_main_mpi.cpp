// The doctest main of the train and models test binaries. It owns the MPI process group: run alone, the
// world is this process; under `mpirun -np K xgrad_tests_models --test-suite=distributed` every rank runs the distributed
// suite in the same order (ctest does both, see tests/CMakeLists.txt).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "dist/communicator.h"

namespace {
xg::dist::Communicator* g_world = nullptr;
}

namespace xgt {
xg::dist::Communicator& world() { return *g_world; }
}  // namespace xgt

int main(int argc, char** argv) {
  xg::dist::Environment env(argc, argv);
  g_world = &env.world();
  doctest::Context context(argc, argv);
  if (env.world().rank() != 0) context.setOption("minimal", true);  // rank 0 prints the summary; the others failures
  return context.run();
}
