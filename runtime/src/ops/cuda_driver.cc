#include "ops/cuda_driver.h"

#include <cstdlib>
#include <mutex>
#include <string>

#include "ops/glue.h"

#if HOLOCRON_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace holocron::ops::cuda_driver {
namespace {

#if HOLOCRON_WITH_CUDA
// The driver's CUDA version: simulated when the environment says so (read nowhere else), else asked of the driver.
void ReadDriverVersion(int& version, std::string& error) {
  if (const char* simulated = std::getenv(kSimulateEnv); simulated != nullptr) {
    char* end = nullptr;
    const long value = std::strtol(simulated, &end, 10);
    if (end == simulated || *end != '\0' || value < 0 || value > 1000000) {
      error = std::string(kSimulateEnv) + "='" + simulated +
              "' is not a CUDA driver version (an integer such as 12080)";
      return;
    }
    version = static_cast<int>(value);
    return;
  }
  const cudaError_t status = cudaDriverGetVersion(&version);
  if (status != cudaSuccess) {
    error = std::string("cudaDriverGetVersion: ") + cudaGetErrorName(status);
    cudaGetLastError();  // leave no error behind for onnxruntime's own CUDA calls
  }
}
#endif

Registration Decide() {
#if HOLOCRON_WITH_CUDA
  int driver = 0;
  std::string error;
  ReadDriverVersion(driver, error);
  return DecideCudaRegistration(CUDART_VERSION, driver, error);
#else
  return DecideCudaRegistration(0, 0, "");
#endif
}

}  // namespace

const Registration& ProcessCudaRegistration() {
  static const Registration decision = Decide();
  return decision;
}

void NoteOnce(const OrtApi& api, const OrtKernelInfo* info) noexcept {
  const Registration& decision = ProcessCudaRegistration();
  if (decision.note.empty()) return;
  static std::once_flag said;
  std::call_once(said, [&] {
    const OrtLogger* logger = nullptr;
    if (OrtStatus* status = api.KernelInfo_GetLogger(info, &logger); status != nullptr) {
      api.ReleaseStatus(status);
      return;
    }
    const OrtLoggingLevel level = decision.warn ? ORT_LOGGING_LEVEL_WARNING : ORT_LOGGING_LEVEL_INFO;
    if (OrtStatus* status = api.Logger_LogMessage(logger, level, decision.note.c_str(), ORT_FILE, __LINE__,
                                                  "holocron::ops::cuda_driver::NoteOnce");
        status != nullptr) {
      api.ReleaseStatus(status);
    }
  });
}

}  // namespace holocron::ops::cuda_driver
