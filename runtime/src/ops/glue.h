// Everything the ops share on onnxruntime's side: its C++ API without a link-time dependency, statuses, which inputs
// a call was given, the custom-op struct built from an op's kernel struct, and what the CPU hands a kernel launcher
// (the intra-op thread pool). What a CUDA launcher gets (stream, device, scratch, statuses) is in ops/cuda_call.h.
#pragma once

// No link-time dependency: register.cc installs the API table the runtime hands in.
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#include <onnxruntime_lite_custom_op.h>
#undef ORT_API_MANUAL_INIT

#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "holocron_contract.h"
#include "kernels/cpu/parallel.h"
#include "ops/attributes.h"
#include "ops/cuda_driver.h"

namespace holocron::ops {

// 21 = onnxruntime 1.21: the API table requested from the runtime and the version stamped on our custom ops. Newer
// headers still work (only functions of version <= 21 are called); older runtimes are refused at registration.
inline constexpr uint32_t kOrtApiVersion = ORT_API_VERSION < 21 ? ORT_API_VERSION : 21;

inline constexpr const char* kCpuProvider = "CPUExecutionProvider";
inline constexpr const char* kCudaProvider = "CUDAExecutionProvider";

// The element types of the ops' tensors (contract: tensor(float), tensor(float16)); each op is registered once per
// element type and device, all inputs and the output of one node sharing the type.
using Half = Ort::Float16_t;
static_assert(sizeof(Half) == sizeof(uint16_t), "Ort::Float16_t must be a bare binary16 pattern");

// The raw binary16 patterns of float16 data, as the kernels take them.
inline const uint16_t* HalfBits(const Half* data) { return reinterpret_cast<const uint16_t*>(data); }
inline uint16_t* HalfBits(Half* data) { return reinterpret_cast<uint16_t*>(data); }

// The custom ops of this build, each op once per device and element type.
using OpList = std::vector<std::shared_ptr<OrtCustomOp>>;

inline Ort::Status InvalidArgument(const std::string& message) {
  return Ort::Status(message.c_str(), ORT_INVALID_ARGUMENT);
}

// Runs body (returning Ort::Status) and turns any exception into a status naming the op: nothing may unwind into
// onnxruntime.
template <typename Body>
Ort::Status Guarded(const char* op, const Body& body) noexcept {
  try {
    return body();
  } catch (const Ort::Exception& e) {
    return Ort::Status((std::string(op) + ": " + e.what()).c_str(), e.GetOrtErrorCode());
  } catch (const std::bad_alloc&) {
    return Ort::Status((std::string(op) + ": out of memory").c_str(), ORT_FAIL);
  } catch (const std::exception& e) {
    return Ort::Status((std::string(op) + ": " + e.what()).c_str(), ORT_FAIL);
  } catch (...) {
    return Ort::Status((std::string(op) + ": unknown error").c_str(), ORT_FAIL);
  }
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

// Fails naming the first input the contract requires (names and optional flags from holocron_contract.h) that the
// call lacks.
template <size_t N>
Ort::Status RequireInputs(OrtKernelContext* context, const char* op, const std::array<const char*, N>& names,
                          const std::array<bool, N>& optional) {
  for (size_t i = 0; i < N; ++i) {
    if (!optional[i] && !HasInput(context, i)) {
      return InvalidArgument(std::string(op) + ": input " + names[i] + " is required");
    }
  }
  return Ort::Status{nullptr};
}

// A node's attributes, read once when onnxruntime creates its kernel. Kernel creation has no error channel: a read
// error is kept and reported by every call. Attributes is an op's attribute struct with a ReadAttributes overload.
template <typename Attributes>
struct NodeAttributes {
  NodeAttributes(const OrtApi* api, const OrtKernelInfo* info)
      : error(ReadAttributes(KernelInfoAttributes(*api, info), value)) {}

  Attributes value{};
  std::string error;
};

// What every op's kernel struct shares: the op's contract (Op: name, input names, optional flags, from
// holocron_contract.h), the node's attributes, read once when onnxruntime creates the kernel, and the op's shape
// inference as the static InferShape that MakeLiteOp installs.
template <typename Op, typename Attributes, Ort::Status (*Infer)(const OrtApi&, OrtShapeInferContext*)>
struct KernelBase {
  using Contract = Op;
  static constexpr const char* kOpName = Op::kOpName;

  // Creating any holocron kernel is where the process's CUDA registration note is said (once), through the session's
  // logger: registration itself has no logger.
  KernelBase(const OrtApi* api, const OrtKernelInfo* info) : attributes(api, info) {
    cuda_driver::NoteOnce(*api, info);
  }

  static Ort::Status InferShape(const OrtApi& api, OrtShapeInferContext* context) { return Infer(api, context); }

  NodeAttributes<Attributes> attributes;
};

// Builds an OrtCustomOp for `provider` from a kernel struct with onnxruntime's lite custom-op API. The struct
// provides: a constructor (const OrtApi*, const OrtKernelInfo*) reading the node, a Compute member whose signature
// declares the inputs and outputs, static InferShape(api, context) and static Call(kernel, context), and the
// Contract and kOpName of KernelBase. Call runs only once the contract's required inputs are known to be present.
// On top of the lite defaults this sets holocron's op version range (start = end = the contract's domain version),
// pins the custom-op struct version, installs InferShape on the raw C API, and runs Call instead of the lite
// argument builder: that one constructs a tensor for every input slot of the node and dereferences absent ones (an
// optional input named ""), which crashes the process. Both run behind Guarded.
// What onnxruntime does with the range (its sources, and onnxruntime 1.32 in that test): the start version becomes the since-version of the op's one
// schema, registered for domain versions 1 to 1000, and kernels are matched against the node's since-version (so 1),
// never against the model's import of the domain; the end version is not compared with it, and neither kernel info
// nor shape inference exposes the import. A model importing holocron 2 to 1000 therefore reaches these kernels in a
// session that registers the library itself: the import is checked in holocron.runtime's create_session
// (tests/runtime/test_domain_version_plain_session.py records it).
template <typename Kernel>
std::shared_ptr<OrtCustomOp> MakeLiteOp(const char* provider) {
  constexpr int version = contract::kDomainVersion;
  using Op = Ort::Custom::OrtLiteCustomStruct<Kernel>;
  std::shared_ptr<Op> op(
      static_cast<Op*>(Ort::Custom::CreateLiteCustomOp<Kernel>(Kernel::kOpName, provider, version, version)));
  op->version = kOrtApiVersion;
  op->InferOutputShapeFn = [](const OrtCustomOp*, OrtShapeInferContext* context) -> OrtStatusPtr {
    return Guarded(Kernel::kOpName, [&] { return Kernel::InferShape(Ort::GetApi(), context); }).release();
  };
  op->KernelComputeV2 = [](void* kernel, OrtKernelContext* context) -> OrtStatusPtr {
    Kernel& self = *static_cast<typename Op::Kernel*>(kernel)->custom_op_;
    return Guarded(Kernel::kOpName, [&] {
             using C = typename Kernel::Contract;
             Ort::Status status = RequireInputs(context, C::kOpName, C::kInputNames, C::kInputOptional);
             return status.IsOK() ? Kernel::Call(self, context) : std::move(status);
           })
        .release();
  };
  return op;
}

// Registers an op's kernels, float and float16: on the CPU provider and, in a CUDA build when `cuda` is set (the
// driver can run them: cuda_driver.h), on the CUDA provider. In a build without CUDA, Cuda is only declared.
template <template <typename, typename> class Kernel, typename Cpu, typename Cuda>
void AppendKernels(OpList& ops, [[maybe_unused]] bool cuda) {
  ops.push_back(MakeLiteOp<Kernel<Cpu, float>>(Cpu::kProvider));
  ops.push_back(MakeLiteOp<Kernel<Cpu, Half>>(Cpu::kProvider));
#if HOLOCRON_WITH_CUDA
  if (!cuda) return;
  ops.push_back(MakeLiteOp<Kernel<Cuda, float>>(Cuda::kProvider));
  ops.push_back(MakeLiteOp<Kernel<Cuda, Half>>(Cuda::kProvider));
#endif
}

// onnxruntime's intra-op thread pool of this kernel call (serial when the session has one thread).
inline kernels::ParallelFor IntraOpPool(const Ort::KernelContext& context) {
  return kernels::ParallelFor(
      [](const void* pool, kernels::ParallelFor::Task task, size_t count, void* state) {
        static_cast<const Ort::KernelContext*>(pool)->ParallelFor(task, count, 0, state);
      },
      &context);
}

}  // namespace holocron::ops
