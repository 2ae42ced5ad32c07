// CPU emulation of the few CUDA features the holocron kernels use, so that their indexing, tiling and
// synchronization can be exercised on a machine without a GPU (run_check.sh --emulate). Force-included (g++
// -include) ahead of the kernel sources, whose <<<...>>> launches rewrite_launches.py turns into emu::launch calls.
// Each block runs as blockDim.x OS threads: __syncthreads is a barrier over them, a warp shuffle a barrier over the
// 32 threads of a warp, __shared__ a static variable (blocks run one after another). Grids are capped to a few
// blocks so the kernels' grid-stride loops run too. Says nothing about performance or the GPU memory model.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <functional>

#undef __shared__
#define __shared__ static
#define __launch_bounds__(...)

extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;

namespace emu {
// Runs `kernel` once per thread of the (capped) grid.
void launch(dim3 grid, dim3 block, const std::function<void()>& kernel);
}  // namespace emu

void __syncthreads();
float __shfl_xor_sync(unsigned int mask, float value, int lane_mask);

template <typename T>
T __ldg(const T* ptr) {
  return *ptr;
}
