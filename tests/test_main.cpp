// The doctest main of the library layers' test binaries (ops, nn, data): one process, no MPI. The train and models
// binaries use test_main_mpi.cpp, which owns the MPI process group.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
