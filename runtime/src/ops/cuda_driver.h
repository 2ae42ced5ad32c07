// Whether this process registers the CUDA kernels: only when the CUDA driver can run the CUDA runtime the library
// was built with. A library built with CUDA 13.0 on a machine whose driver only supports 12.x would otherwise hand
// onnxruntime CUDA kernels that fail every call (cudaErrorInsufficientDriver) on nodes already placed on the GPU;
// registering the CPU kernels only lets onnxruntime run those nodes on the CPU instead.
//
// DecideCudaRegistration is the pure rule (no CUDA, no onnxruntime: the registration test calls it directly);
// ProcessCudaRegistration applies it once per process to the driver that cudaDriverGetVersion reports, or to the
// version in HOLOCRON_SIMULATE_CUDA_DRIVER_VERSION when that is set (tests simulate old and new drivers with it).
#pragma once
#include <string>

struct OrtApi;
struct OrtKernelInfo;

namespace holocron::ops::cuda_driver {

// The environment variable read in place of cudaDriverGetVersion, in that function's encoding
// (1000 * major + 10 * minor: 12080 is CUDA 12.8; 0 is "no driver").
inline constexpr const char* kSimulateEnv = "HOLOCRON_SIMULATE_CUDA_DRIVER_VERSION";

struct Registration {
  bool cuda = false;  // register the CUDA kernels
  bool warn = false;  // the note is a warning (a driver is there but cannot run the kernels), else information
  std::string note;   // what to say once; empty when there is nothing to say
};

// "12.8" for 12080.
inline std::string VersionText(int version) {
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

// runtime_version: CUDART_VERSION of the build (0: built without CUDA kernels). driver_version: what
// cudaDriverGetVersion reported. query_error: empty when the driver version was read, else why it was not.
// The rule is strict: the driver must support the runtime's own major.minor version (it says so in
// cudaDriverGetVersion), so no kernel depends on CUDA's minor-version compatibility.
inline Registration DecideCudaRegistration(int runtime_version, int driver_version, const std::string& query_error) {
  Registration out;
  if (runtime_version <= 0) return out;  // no CUDA kernels in this build: nothing to decide or say
  const std::string cpu_only =
      "; only holocron's CPU kernels are registered, so onnxruntime runs Add2d, Involution2d and Lambda nodes on "
      "the CPU";
  if (!query_error.empty()) {
    out.warn = true;
    out.note = "holocron: the CUDA driver version could not be read (" + query_error + ")" + cpu_only;
  } else if (driver_version <= 0) {
    out.note = "holocron: no CUDA driver found" + cpu_only;
  } else if (driver_version < runtime_version) {
    out.warn = true;
    out.note = "holocron: the CUDA driver supports CUDA " + VersionText(driver_version) +
               ", but holocron's CUDA kernels were built with the CUDA " + VersionText(runtime_version) +
               " runtime and need a driver for CUDA " + VersionText(runtime_version) + " or newer" + cpu_only +
               " (update the driver, or build holocron with an older CUDA toolkit)";
  } else {
    out.cuda = true;
  }
  return out;
}

// The decision for this process, made on the first call (thread-safe) and kept: the CUDA runtime version of the
// build against the driver (or the simulated one). In a build without CUDA kernels: never CUDA, no note.
const Registration& ProcessCudaRegistration();

// Says the process's note once, through the logger of the kernel being created (onnxruntime's session logger, so
// the session's log_severity_level governs it): a warning when a driver cannot run the kernels, information when
// there is no driver at all (not shown at onnxruntime's default level). Never prints anything itself.
void NoteOnce(const OrtApi& api, const OrtKernelInfo* info) noexcept;

}  // namespace holocron::ops::cuda_driver
