// Builds an OrtCustomOp from a kernel struct with onnxruntime's lite custom-op API: the struct's constructor reads
// the node (attributes), Compute's signature declares the inputs and outputs. On top of the lite defaults this sets
// holocron's op version range (start = end = the contract's domain version), pins the custom-op struct version
// (ort_api.h), installs the struct's own shape inference on the raw C API (shape_inference.h), and calls the
// struct's static Call instead of the lite argument builder: that one constructs a tensor for every input slot of
// the node and dereferences absent ones (an optional input named ""), which crashes the process.
#pragma once
#include <initializer_list>
#include <memory>
#include <string>

#include "holocron_contract.h"
#include "ops/ort_api.h"

namespace holocron::ops {

template <typename Kernel>
std::shared_ptr<OrtCustomOp> MakeLiteOp(const char* name, const char* provider) {
  constexpr int version = contract::kDomainVersion;
  using Op = Ort::Custom::OrtLiteCustomStruct<Kernel>;
  std::shared_ptr<Op> op(static_cast<Op*>(Ort::Custom::CreateLiteCustomOp<Kernel>(name, provider, version, version)));
  op->version = kOrtApiVersion;
  op->InferOutputShapeFn = [](const OrtCustomOp*, OrtShapeInferContext* context) -> OrtStatusPtr {
    return Kernel::InferShape(Ort::GetApi(), context).release();
  };
  op->KernelComputeV2 = [](void* kernel, OrtKernelContext* context) -> OrtStatusPtr {
    return Kernel::Call(*static_cast<typename Op::Kernel*>(kernel)->custom_op_, context).release();
  };
  return op;
}

// Whether input `index` of the call was given: absent and ""-named optional inputs are not.
inline bool HasInput(OrtKernelContext* context, size_t index) {
  size_t count = 0;
  Ort::ThrowOnError(Ort::GetApi().KernelContext_GetInputCount(context, &count));
  if (index >= count) return false;
  const OrtValue* value = nullptr;
  Ort::ThrowOnError(Ort::GetApi().KernelContext_GetInput(context, index, &value));
  return value != nullptr;
}

// Fails naming the first of `names` (inputs 0, 1, ...) the call lacks.
inline Ort::Status RequireInputs(OrtKernelContext* context, const char* op, std::initializer_list<const char*> names) {
  size_t index = 0;
  for (const char* name : names) {
    if (!HasInput(context, index++)) {
      return Ort::Status((std::string(op) + ": input " + name + " is required").c_str(), ORT_INVALID_ARGUMENT);
    }
  }
  return Ort::Status{nullptr};
}

}  // namespace holocron::ops
