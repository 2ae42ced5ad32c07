#include "kernels/cpu_features.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "kernels/simd.h"

namespace holocron::kernels {
namespace {

Isa DetectIsa() {
#if HOLOCRON_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq")) {
    return Isa::kAvx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
#endif
  return Isa::kBaseline;
}

Isa CapFromEnvironment(Isa detected) {
  const char* cap = std::getenv("HOLOCRON_CPU_ISA");
  if (cap == nullptr) return detected;
  Isa wanted = detected;
  if (std::strcmp(cap, "baseline") == 0) wanted = Isa::kBaseline;
  if (std::strcmp(cap, "avx2") == 0) wanted = Isa::kAvx2;
  if (std::strcmp(cap, "avx512") == 0) wanted = Isa::kAvx512;
  return static_cast<int>(wanted) < static_cast<int>(detected) ? wanted : detected;
}

}  // namespace

Isa ActiveIsa() {
  static const Isa isa = CapFromEnvironment(DetectIsa());
  return isa;
}

int64_t TaskCountHint() {
  static const int64_t hint = [] {
    const int64_t threads = static_cast<int64_t>(std::thread::hardware_concurrency());
    return std::clamp<int64_t>(4 * threads, 8, 64);
  }();
  return hint;
}

}  // namespace holocron::kernels
