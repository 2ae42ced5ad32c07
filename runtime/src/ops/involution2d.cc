#include "ops/involution2d.h"

#include <optional>

#include "holocron_contract.h"
#include "kernels/cpu/launch.h"
#include "ops/shape_inference.h"
#if HOLOCRON_WITH_CUDA
#include "kernels/cuda/launch.h"
#include "ops/cuda_call.h"
#endif

namespace holocron::ops::involution2d {

namespace c = contract::involution2d;

std::string ReadAttributes(const AttributeSource& source, Attributes& out) {
  std::string error = ReadInts(c::kOpName, source, c::kKernelShape, out.kernel_shape);
  if (error.empty()) {
    error = ReadWindow(c::kOpName, source, c::kStrides, c::kPads, c::kDilations, c::kGroup, out.window);
  }
  return error;
}

std::string MakeParams(const Attributes& attrs, const Shape& x, const Shape& kernel,
                       kernels::Involution2dParams& out) {
  const char* op = c::kOpName;
  const auto& [x_name, k_name] = c::kInputNames;
  std::string error = CheckRank(op, x_name, x, 4, "(N, C, H, W)");
  if (error.empty()) error = CheckRank(op, k_name, kernel, 4, "(N, group * kH * kW, H_out, W_out)");
  if (error.empty()) {
    error = MakeWindow(op, attrs.window, x, attrs.kernel_shape[0], attrs.kernel_shape[1], out.window);
  }
  if (!error.empty()) return error;
  const kernels::Window2d& g = out.window;
  const Shape expected{g.batch, g.groups * g.kernel_h * g.kernel_w, g.out_h, g.out_w};
  if (kernel != expected) {
    return Message(op, k_name, " must have shape ", Join(expected), " (N, group * kH * kW, H_out, W_out); got ",
                   Join(kernel));
  }
  return CheckOutputSize(op, OutputShape(out));
}

Shape OutputShape(const kernels::Involution2dParams& p) {
  return {p.window.batch, p.window.channels, p.window.out_h, p.window.out_w};
}

namespace {

Ort::Status InferOutputShape(const OrtApi& api, OrtShapeInferContext* context) {
  Attributes attributes;
  std::string error = ReadAttributes(ShapeInferAttributes(api, context), attributes);
  if (!error.empty()) return InvalidArgument(error);
  const std::optional<InferredShape> x = InferredInput(api, context, 0);
  const std::optional<InferredShape> kernel = InferredInput(api, context, 1);
  if (!x || !kernel) return Ort::Status{nullptr};
  Shape x_values, k_values;
  if (!KnownValues(*x, x_values) || !KnownValues(*kernel, k_values)) {
    // The batch may be symbolic: validate and infer the rest with batch 1, then copy it.
    InferredShape x_rest = *x, k_rest = *kernel;
    if (x_rest.empty() || k_rest.empty() || x_rest[0].symbol.empty() || x_rest[0].symbol != k_rest[0].symbol) {
      return Ort::Status{nullptr};
    }
    x_rest[0] = {1, {}};
    k_rest[0] = {1, {}};
    if (!KnownValues(x_rest, x_values) || !KnownValues(k_rest, k_values)) return Ort::Status{nullptr};
  }
  kernels::Involution2dParams params;
  error = MakeParams(attributes, x_values, k_values, params);
  if (!error.empty()) return InvalidArgument(error);
  const Shape out = OutputShape(params);
  return DeclareOutput(api, context, 0, {(*x)[0], {out[1], {}}, {out[2], {}}, {out[3], {}}});
}

// The op's kernel for one device (the Cpu and Cuda launchers below) and element type (float or Half).
template <typename Device, typename T>
struct Kernel : KernelBase<c::Op, Attributes, InferOutputShape> {
  using KernelBase::KernelBase;
  using Tensor = Ort::Custom::Tensor<T>;

  // Fetches the call's inputs for Compute; MakeLiteOp checked the required ones.
  static Ort::Status Call(Kernel& kernel, OrtKernelContext* context) {
    Tensor x(context, 0, true), k(context, 1, true), y(context, 0, false);
    return kernel.Compute(context, x, k, y);
  }

  Ort::Status Compute(OrtKernelContext* context, const Tensor& x, const Tensor& k, Tensor& y) {
    if (!attributes.error.empty()) return InvalidArgument(attributes.error);
    kernels::Involution2dParams params;
    const std::string error = MakeParams(attributes.value, x.Shape(), k.Shape(), params);
    if (!error.empty()) return InvalidArgument(error);
    T* out = y.Allocate(OutputShape(params));
    return Device::Launch(context, params, x.Data(), k.Data(), out);
  }
};

// What differs between devices: the provider and how the validated call reaches the kernel.
struct Cpu {
  static constexpr const char* kProvider = kCpuProvider;
  static Ort::Status Launch(OrtKernelContext* context, const kernels::Involution2dParams& p, const float* x,
                            const float* kernel, float* y) {
    const Ort::KernelContext ctx(context);
    kernels::Involution2dCpu(p, x, kernel, y, IntraOpPool(ctx));
    return Ort::Status{nullptr};
  }
  static Ort::Status Launch(OrtKernelContext* context, const kernels::Involution2dParams& p, const Half* x,
                            const Half* kernel, Half* y) {
    const Ort::KernelContext ctx(context);
    kernels::Involution2dCpuHalf(p, HalfBits(x), HalfBits(kernel), HalfBits(y), IntraOpPool(ctx));
    return Ort::Status{nullptr};
  }
};

struct Cuda;  // the CUDA launcher, defined in a CUDA build
#if HOLOCRON_WITH_CUDA
struct Cuda {
  static constexpr const char* kProvider = kCudaProvider;
  static Ort::Status Launch(OrtKernelContext* context, const kernels::Involution2dParams& p, const float* x,
                            const float* kernel, float* y) {
    const CudaCall call(context, c::kOpName, OutputShape(p));
    return call.Finish(kernels::cuda::Involution2dCuda(p, x, kernel, y, call.Stream()));
  }
  static Ort::Status Launch(OrtKernelContext* context, const kernels::Involution2dParams& p, const Half* x,
                            const Half* kernel, Half* y) {
    const CudaCall call(context, c::kOpName, OutputShape(p));
    return call.Finish(
        kernels::cuda::Involution2dCudaHalf(p, CudaHalf(x), CudaHalf(kernel), CudaHalf(y), call.Stream()));
  }
};
#endif

}  // namespace

void AppendOps(OpList& ops, bool cuda) { AppendKernels<Kernel, Cpu, Cuda>(ops, cuda); }

}  // namespace holocron::ops::involution2d
