// Which instruction set the CPU kernels use, detected once per process.
#pragma once
#include <cstdint>

namespace holocron::kernels {

enum class Isa { kBaseline, kAvx2, kAvx512 };

// The widest instruction set both the CPU and this build support. The environment variable HOLOCRON_CPU_ISA
// ("baseline", "avx2" or "avx512") caps it, so tests can exercise every code path on one machine.
Isa ActiveIsa();

// Whether HOLOCRON_CPU_ISA, when set, names an instruction set; registration refuses a misspelled cap rather than
// silently running the widest kernels.
bool IsaOverrideIsValid();

// The name HOLOCRON_CPU_ISA gives `isa`: "baseline", "avx2" or "avx512".
const char* IsaName(Isa isa);

// How many tasks a kernel should split its work into when it can choose: enough for every hardware thread to get a
// few (load balance), few enough that per-task overheads (packing, halos) stay small. 4 per hardware thread,
// within [8, 64].
int64_t TaskCountHint();

}  // namespace holocron::kernels
