// Entry point onnxruntime calls when the library is registered (SessionOptions.register_custom_ops_library):
// adds the "holocron" custom-op domain with every op of this build to the session options.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "holocron_contract.h"
#include "kernels/cpu_features.h"
#include "ops/add2d.h"
#include "ops/glue.h"
#include "ops/involution2d.h"
#include "ops/lambda.h"

#if defined(_WIN32)
#define HOLOCRON_EXPORT __declspec(dllexport)
#else
#define HOLOCRON_EXPORT __attribute__((visibility("default")))
#endif

namespace {

using holocron::ops::kOrtApiVersion;
using holocron::ops::OpList;

// Ops and domains must outlive every session created from the options they were added to: keep them for the life
// of the library.
struct Registry {
  std::mutex mutex;
  OpList ops;
  std::vector<Ort::CustomOpDomain> domains;
};

Registry& GlobalRegistry() {
  static Registry* registry = new Registry();  // never destroyed: sessions may outlive static destruction
  return *registry;
}

// Every op of the contract, once per device of this build.
OpList MakeOps() {
  OpList ops;
  holocron::ops::add2d::AppendOps(ops);
  holocron::ops::involution2d::AppendOps(ops);
  holocron::ops::lambda_layer::AppendOps(ops);
  return ops;
}

}  // namespace

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
    if (registry.ops.empty()) registry.ops = MakeOps();
    Ort::CustomOpDomain domain(holocron::contract::kDomain);
    for (const auto& op : registry.ops) domain.Add(op.get());
    Ort::UnownedSessionOptions(options).Add(domain);
    registry.domains.push_back(std::move(domain));
  } catch (const Ort::Exception& e) {
    return api->CreateStatus(e.GetOrtErrorCode(), e.what());
  } catch (const std::exception& e) {
    return api->CreateStatus(ORT_FAIL, e.what());
  }
  return nullptr;
}
