// Entry point onnxruntime calls when the library is registered (SessionOptions.register_custom_ops_library):
// adds the "holocron" custom-op domain with every op of this build to the session options.
#include <memory>
#include <mutex>
#include <string>

#include "holocron_contract.h"
#include "kernels/cpu/cpu_features.h"
#include "ops/add2d.h"
#include "ops/cuda_driver.h"
#include "ops/glue.h"
#include "ops/involution2d.h"
#include "ops/lambda_layer.h"

#if defined(_WIN32)
#define HOLOCRON_EXPORT __declspec(dllexport)
#else
#define HOLOCRON_EXPORT __attribute__((visibility("default")))
#endif

namespace {

using holocron::ops::kOrtApiVersion;
using holocron::ops::OpList;

// Ops and the domain must outlive every session created from the options they were added to: keep them for the life
// of the library. One domain serves every registration (onnxruntime only reads it): a domain per call would keep a
// few KB per session options forever, since the library is never told when those options are released.
struct Registry {
  std::mutex mutex;
  OpList ops;
  std::unique_ptr<Ort::CustomOpDomain> domain;
};

Registry& GlobalRegistry() {
  static Registry* registry = new Registry();  // never destroyed: sessions may outlive static destruction
  return *registry;
}

// Every op of the contract on the CPU and, where this build has CUDA kernels and the driver can run them, on CUDA
// (the decision is made once per process: ops/cuda_driver.h).
OpList MakeOps() {
  const bool cuda = holocron::ops::cuda_driver::ProcessCudaRegistration().cuda;
  OpList ops;
  holocron::ops::add2d::AppendOps(ops, cuda);
  holocron::ops::involution2d::AppendOps(ops, cuda);
  holocron::ops::lambda_layer::AppendOps(ops, cuda);
  return ops;
}

}  // namespace

// The instruction set this copy of the library runs its CPU kernels with ("baseline", "avx2" or "avx512"): fixed by
// its first kernel call (or this one), HOLOCRON_CPU_ISA capping it then. Benchmarks load two copies of the library
// and ask each which one it runs; nothing from onnxruntime is needed.
extern "C" HOLOCRON_EXPORT const char* HolocronCpuIsa() {
  return holocron::kernels::IsaName(holocron::kernels::ActiveIsa());
}

extern "C" HOLOCRON_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options,
                                                                       const OrtApiBase* api_base) {
  const OrtApi* api = api_base->GetApi(kOrtApiVersion);
  if (api == nullptr) {
    // Too old a runtime for our ops; version 1 of the API is enough to say so.
    const std::string message = "holocron: this custom-op library needs onnxruntime API version " +
                                std::to_string(kOrtApiVersion) + " or newer; the loaded onnxruntime is " +
                                api_base->GetVersionString();
    return api_base->GetApi(1)->CreateStatus(ORT_FAIL, message.c_str());
  }
  Ort::InitApi(api);
  if (!holocron::kernels::IsaOverrideIsValid()) {
    return api->CreateStatus(ORT_INVALID_ARGUMENT,
                             "holocron: HOLOCRON_CPU_ISA must be \"baseline\", \"avx2\" or \"avx512\" when set");
  }
  try {
    Registry& registry = GlobalRegistry();
    const std::lock_guard<std::mutex> lock(registry.mutex);
    if (!registry.domain) {
      OpList ops = MakeOps();
      auto domain = std::make_unique<Ort::CustomOpDomain>(holocron::contract::kDomain);
      for (const auto& op : ops) domain->Add(op.get());
      registry.ops = std::move(ops);
      registry.domain = std::move(domain);
    }
    Ort::UnownedSessionOptions(options).Add(*registry.domain);
  } catch (const Ort::Exception& e) {
    return api->CreateStatus(e.GetOrtErrorCode(), e.what());
  } catch (const std::exception& e) {
    return api->CreateStatus(ORT_FAIL, e.what());
  }
  return nullptr;
}
