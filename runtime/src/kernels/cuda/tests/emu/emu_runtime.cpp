// Host implementations behind emu.h: the block/warp emulation and the handful of CUDA runtime calls the launchers
// and the check harness make, backed by host memory.
#include <algorithm>
#include <barrier>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "emu.h"

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

namespace {

constexpr unsigned int kWarp = 32;
constexpr unsigned int kMaxGridX = 3;  // small caps: blocks must loop over the remaining work
constexpr unsigned int kMaxGridY = 2;

struct Block {
  explicit Block(unsigned int threads) : sync(threads), shuffle(threads) {
    for (unsigned int first = 0; first < threads; first += kWarp) {
      warps.push_back(std::make_unique<std::barrier<>>(std::min(kWarp, threads - first)));
    }
  }
  std::barrier<> sync;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  std::vector<float> shuffle;  // one exchange slot per thread
};

thread_local Block* current_block = nullptr;

}  // namespace

void __syncthreads() { current_block->sync.arrive_and_wait(); }

float __shfl_xor_sync(unsigned int /*mask*/, float value, int lane_mask) {
  const unsigned int t = threadIdx.x;
  std::barrier<>& warp = *current_block->warps[t / kWarp];
  current_block->shuffle[t] = value;
  warp.arrive_and_wait();
  const unsigned int source = (t / kWarp) * kWarp + ((t % kWarp) ^ static_cast<unsigned int>(lane_mask));
  const float other = current_block->shuffle[source];
  warp.arrive_and_wait();
  return other;
}

namespace emu {

void launch(dim3 grid, dim3 block, const std::function<void()>& kernel) {
  grid.x = std::min(grid.x, kMaxGridX);
  grid.y = std::min(grid.y, kMaxGridY);
  if (block.y != 1 || block.z != 1 || grid.z != 1) std::abort();  // the kernels use 1-D blocks, 2-D grids
  for (unsigned int by = 0; by < grid.y; ++by) {
    for (unsigned int bx = 0; bx < grid.x; ++bx) {
      Block state(block.x);
      std::vector<std::thread> threads;
      for (unsigned int t = 0; t < block.x; ++t) {
        threads.emplace_back([&, t] {
          threadIdx = uint3{t, 0, 0};
          blockIdx = uint3{bx, by, 0};
          blockDim = block;
          gridDim = grid;
          current_block = &state;
          kernel();
        });
      }
      for (std::thread& thread : threads) thread.join();
    }
  }
}

}  // namespace emu

// CUDA runtime calls, on host memory; streams are ignored (everything completes before the call returns).
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int /*flags*/) {
  static int token = 0;
  *stream = reinterpret_cast<cudaStream_t>(&token);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t /*stream*/) { return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t /*stream*/) { return cudaSuccess; }
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = std::malloc(bytes);
  return *ptr != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind /*kind*/,
                            cudaStream_t /*stream*/) {
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t /*stream*/) {
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaGetLastError() { return cudaSuccess; }
const char* cudaGetErrorString(cudaError_t error) { return error == cudaSuccess ? "no error" : "emulated error"; }
