// Which kernels holocron's library registers, seen from onnxruntime's side of RegisterCustomOps, on any machine.
//
//   registration_probe LIBRARY
//       dlopens the library and calls its RegisterCustomOps with a stand-in for onnxruntime's API table that only
//       records the custom ops added to the domain; prints one line per op: "<op> <provider> <element type>".
//   registration_probe --decide RUNTIME_VERSION DRIVER_VERSION [QUERY_ERROR]
//       prints the pure rule of runtime/src/ops/cuda_driver.h for those versions: "cuda=0|1 warn=0|1 <note>".
//
// Built and driven by tests/runtime/test_cuda_driver_guard.py (g++, the onnxruntime headers, -ldl).
#include <dlfcn.h>
#include <onnxruntime_c_api.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ops/cuda_driver.h"

struct OrtCustomOpDomain {
  std::string name;
  std::vector<const OrtCustomOp*> ops;
};

struct OrtStatus {
  OrtErrorCode code;
  std::string message;
};

namespace {

std::vector<OrtCustomOpDomain*> g_added;  // domains added to the (dummy) session options

OrtApi MakeRecordingApi() {
  OrtApi api{};
  api.CreateStatus = [](OrtErrorCode code, const char* message) noexcept -> OrtStatus* {
    return new OrtStatus{code, message};
  };
  api.GetErrorCode = [](const OrtStatus* status) noexcept { return status->code; };
  api.GetErrorMessage = [](const OrtStatus* status) noexcept { return status->message.c_str(); };
  api.ReleaseStatus = [](OrtStatus* status) noexcept { delete status; };
  api.CreateCustomOpDomain = [](const char* domain, OrtCustomOpDomain** out) noexcept -> OrtStatus* {
    *out = new OrtCustomOpDomain{domain, {}};
    return nullptr;
  };
  api.CustomOpDomain_Add = [](OrtCustomOpDomain* domain, const OrtCustomOp* op) noexcept -> OrtStatus* {
    domain->ops.push_back(op);
    return nullptr;
  };
  api.AddCustomOpDomain = [](OrtSessionOptions*, OrtCustomOpDomain* domain) noexcept -> OrtStatus* {
    g_added.push_back(domain);
    return nullptr;
  };
  return api;
}

const OrtApi g_api = MakeRecordingApi();

const OrtApi* ORT_API_CALL GetApi(uint32_t) noexcept { return &g_api; }
const char* ORT_API_CALL GetVersionString() noexcept { return "probe"; }

const char* ElementType(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      return "float";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
      return "float16";
    default:
      return "other";
  }
}

int Probe(const char* library) {
  void* handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    std::fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  using Register = OrtStatus* (*)(OrtSessionOptions*, const OrtApiBase*);
  auto* register_ops = reinterpret_cast<Register>(dlsym(handle, "RegisterCustomOps"));
  if (register_ops == nullptr) {
    std::fprintf(stderr, "RegisterCustomOps not exported\n");
    return 2;
  }
  const OrtApiBase base{&GetApi, &GetVersionString};
  int dummy_options = 0;
  if (OrtStatus* status = register_ops(reinterpret_cast<OrtSessionOptions*>(&dummy_options), &base)) {
    std::fprintf(stderr, "RegisterCustomOps failed: %s\n", status->message.c_str());
    return 3;
  }
  for (const OrtCustomOpDomain* domain : g_added) {
    for (const OrtCustomOp* op : domain->ops) {
      std::printf("%s %s %s\n", op->GetName(op), op->GetExecutionProviderType(op),
                  ElementType(op->GetInputType(op, 0)));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::string(argv[1]) == "--decide") {
    const holocron::ops::cuda_driver::Registration decision = holocron::ops::cuda_driver::DecideCudaRegistration(
        std::atoi(argv[2]), std::atoi(argv[3]), argc >= 5 ? argv[4] : "");
    std::printf("cuda=%d warn=%d %s\n", decision.cuda ? 1 : 0, decision.warn ? 1 : 0, decision.note.c_str());
    return 0;
  }
  if (argc == 2) return Probe(argv[1]);
  std::fprintf(stderr, "usage: %s LIBRARY | --decide RUNTIME DRIVER [ERROR]\n", argv[0]);
  return 2;
}
