#pragma once
/// \file cpu.h
/// The instruction-set level this process runs xgrad's kernels at, from the CPU's features (cpuid, and xgetbv for the
/// operating system's support of the AVX/AVX-512 register state) — never from a table of CPU models.
///
/// Levels: `avx512` (AVX-512 F, BW, DQ and VL), `avx2` (AVX2 and FMA), `baseline` (x86-64 SSE2). The environment
/// variable `XGRAD_ISA=avx512|avx2|baseline` lowers the level for testing and comparison (a level the CPU lacks is
/// never used: asking for more than the CPU has gives what it has).

#include <string>

namespace xg {

enum class Isa { Baseline = 0, Avx2 = 1, Avx512 = 2 };

/// The highest level the CPU (and the OS) supports.
Isa detected_isa();
/// The level in use: detected_isa(), lowered by XGRAD_ISA when set. Read once.
Isa active_isa();
/// "avx512", "avx2" or "baseline".
const char* to_string(Isa isa);
/// The CPU's model name (from /proc/cpuinfo), or "unknown CPU".
std::string cpu_model_name();

}  // namespace xg
