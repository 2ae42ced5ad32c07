// Which instruction set the CPU kernels use, detected once per process.
#pragma once

namespace holocron::kernels {

enum class Isa { kBaseline, kAvx2, kAvx512 };

// The widest instruction set both the CPU and this build support. The environment variable HOLOCRON_CPU_ISA
// ("baseline", "avx2" or "avx512") caps it, so tests can exercise every code path on one machine.
Isa ActiveIsa();

const char* IsaName(Isa isa);

}  // namespace holocron::kernels
