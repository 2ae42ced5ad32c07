// The custom ops this library registers, one factory per op and device.
#pragma once
#include <memory>
#include <vector>

#include "ops/ort_api.h"

namespace holocron::ops {

std::shared_ptr<OrtCustomOp> MakeAdd2dCpuOp();
std::shared_ptr<OrtCustomOp> MakeInvolution2dCpuOp();
std::shared_ptr<OrtCustomOp> MakeLambdaCpuOp();

#if HOLOCRON_WITH_CUDA
// The same ops on the CUDAExecutionProvider.
std::vector<std::shared_ptr<OrtCustomOp>> MakeCudaOps();
#endif

}  // namespace holocron::ops
