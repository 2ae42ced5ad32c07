// The ops registered for the CUDAExecutionProvider (built when runtime/cuda.cmake enables CUDA).
#include "ops/ops.h"

namespace holocron::ops {

std::shared_ptr<OrtCustomOp> MakeAdd2dCudaOp();
std::shared_ptr<OrtCustomOp> MakeInvolution2dCudaOp();
std::shared_ptr<OrtCustomOp> MakeLambdaCudaOp();

std::vector<std::shared_ptr<OrtCustomOp>> MakeCudaOps() {
  return {MakeAdd2dCudaOp(), MakeInvolution2dCudaOp(), MakeLambdaCudaOp()};
}

}  // namespace holocron::ops
