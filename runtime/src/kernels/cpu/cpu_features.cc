#include "kernels/cpu/cpu_features.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "kernels/cpu/simd.h"

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

struct NamedIsa {
  const char* name;
  Isa isa;
};
constexpr NamedIsa kIsaNames[] = {{"baseline", Isa::kBaseline}, {"avx2", Isa::kAvx2}, {"avx512", Isa::kAvx512}};

// The cap HOLOCRON_CPU_ISA names; false when it is unset or names no instruction set.
bool IsaFromEnvironment(Isa& cap) {
  const char* name = std::getenv("HOLOCRON_CPU_ISA");
  if (name == nullptr) return false;
  for (const NamedIsa& entry : kIsaNames) {
    if (std::strcmp(name, entry.name) == 0) {
      cap = entry.isa;
      return true;
    }
  }
  return false;
}

Isa CapFromEnvironment(Isa detected) {
  Isa cap = detected;
  if (!IsaFromEnvironment(cap)) return detected;
  return static_cast<int>(cap) < static_cast<int>(detected) ? cap : detected;
}

}  // namespace

bool IsaOverrideIsValid() {
  Isa cap = Isa::kBaseline;
  return std::getenv("HOLOCRON_CPU_ISA") == nullptr || IsaFromEnvironment(cap);
}

const char* IsaName(Isa isa) {
  for (const NamedIsa& entry : kIsaNames) {
    if (entry.isa == isa) return entry.name;
  }
  return "unknown";
}

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
