#include "ops/add2d.h"

#include <optional>

#include "holocron_contract.h"
#include "kernels/cpu/launch.h"
#include "ops/shape_inference.h"
#if HOLOCRON_WITH_CUDA
#include "kernels/cuda/launch.h"
#include "ops/cuda_call.h"
#endif

namespace holocron::ops::add2d {

namespace c = contract::add2d;

std::string ReadAttributes(const AttributeSource& source, Attributes& out) {
  std::string error = ReadWindow(c::kOpName, source, c::kStrides, c::kPads, c::kDilations, c::kGroup, out.window);
  int64_t normalize = 0;
  if (error.empty()) error = ReadInt(c::kOpName, source, c::kNormalizeSlices, normalize);
  out.normalize_slices = normalize != 0;
  if (error.empty()) error = ReadFloat(c::kOpName, source, c::kEps, out.eps);
  return error;
}

std::string MakeParams(const Attributes& attrs, const Shape& x, const Shape& w, const Shape* bias,
                       kernels::Add2dParams& out) {
  const char* op = c::kOpName;
  const auto& [x_name, w_name, b_name] = c::kInputNames;
  std::string error = CheckRank(op, x_name, x, 4, "(N, C_in, H, W)");
  if (error.empty()) error = CheckRank(op, w_name, w, 4, "(C_out, C_in / group, kH, kW)");
  if (!error.empty()) return error;
  error = MakeWindow(op, attrs.window, x, w[2], w[3], out.window);
  if (!error.empty()) return error;
  const int64_t group = attrs.window.group;
  if (w[1] * group != x[1]) {
    return Message(op, w_name, " must have C_in / group = ", x[1] / group, " input channels (", x_name, " has ", x[1],
                   " channels, group ", group, "); got ", w_name, " shape ", Join(w));
  }
  if (w[0] % group != 0) {
    return Message(op, "attribute '", c::kGroupName, "' (", group, ") must divide the ", w[0], " output channels of ",
                   w_name);
  }
  if (bias != nullptr && (bias->size() != 1 || (*bias)[0] != w[0])) {
    return Message(op, "input ", b_name, " must have shape [", w[0], "] (C_out); got ", Join(*bias));
  }
  out.out_channels = w[0];
  out.has_bias = bias != nullptr;
  out.normalize_slices = attrs.normalize_slices;
  out.eps = attrs.eps;
  return CheckOutputSize(op, OutputShape(out));
}

Shape OutputShape(const kernels::Add2dParams& p) {
  return {p.window.batch, p.out_channels, p.window.out_h, p.window.out_w};
}

namespace {

Ort::Status InferOutputShape(const OrtApi& api, OrtShapeInferContext* context) {
  Attributes attributes;
  std::string error = ReadAttributes(ShapeInferAttributes(api, context), attributes);
  if (!error.empty()) return InvalidArgument(error);
  const std::optional<InferredShape> x = InferredInput(api, context, 0);
  const std::optional<InferredShape> w = InferredInput(api, context, 1);
  const std::optional<InferredShape> bias = InferredInput(api, context, 2);
  if (!x || !w) return Ort::Status{nullptr};
  // Validate with the batch set aside: it may be symbolic, and it is copied to the output as it is.
  InferredShape x_rest = *x;
  if (!x_rest.empty()) x_rest[0].value = 1;
  Shape x_values, w_values, b_values;
  if (!KnownValues(x_rest, x_values) || !KnownValues(*w, w_values)) return Ort::Status{nullptr};
  const bool bias_known = bias && KnownValues(*bias, b_values);
  if (bias && !bias_known) return Ort::Status{nullptr};
  kernels::Add2dParams params;
  error = MakeParams(attributes, x_values, w_values, bias_known ? &b_values : nullptr, params);
  if (!error.empty()) return InvalidArgument(error);
  const Shape out = OutputShape(params);
  return DeclareOutput(api, context, 0, {(*x)[0], {out[1], {}}, {out[2], {}}, {out[3], {}}});
}

// The op's kernel for one device (the Cpu and Cuda launchers below) and element type (float or Half).
template <typename Device, typename T>
struct Kernel : KernelBase<c::Op, Attributes, InferOutputShape> {
  using KernelBase::KernelBase;
  using Tensor = Ort::Custom::Tensor<T>;

  // Fetches the call's inputs (B may be absent or named "") for Compute; MakeLiteOp checked the required ones.
  static Ort::Status Call(Kernel& kernel, OrtKernelContext* context) {
    Tensor x(context, 0, true), w(context, 1, true), y(context, 0, false);
    std::optional<Tensor> bias;
    if (HasInput(context, 2)) bias.emplace(context, 2, true);
    return kernel.Compute(context, x, w, bias ? std::optional<const Tensor*>(&*bias) : std::nullopt, y);
  }

  Ort::Status Compute(OrtKernelContext* context, const Tensor& x, const Tensor& w,
                      std::optional<const Tensor*> bias, Tensor& y) {
    if (!attributes.error.empty()) return InvalidArgument(attributes.error);
    const Tensor* b = bias.value_or(nullptr);
    kernels::Add2dParams params;
    const std::string error = MakeParams(attributes.value, x.Shape(), w.Shape(), b ? &b->Shape() : nullptr, params);
    if (!error.empty()) return InvalidArgument(error);
    T* out = y.Allocate(OutputShape(params));
    return Device::Launch(context, params, x.Data(), w.Data(), b ? b->Data() : nullptr, out);
  }
};

// What differs between devices: the provider and how the validated call reaches the kernel.
struct Cpu {
  static constexpr const char* kProvider = kCpuProvider;
  static Ort::Status Launch(OrtKernelContext* context, const kernels::Add2dParams& p, const float* x, const float* w,
                            const float* bias, float* y) {
    const Ort::KernelContext ctx(context);
    kernels::Add2dCpu(p, x, w, bias, y, IntraOpPool(ctx));
    return Ort::Status{nullptr};
  }
  static Ort::Status Launch(OrtKernelContext* context, const kernels::Add2dParams& p, const Half* x, const Half* w,
                            const Half* bias, Half* y) {
    const Ort::KernelContext ctx(context);
    kernels::Add2dCpuHalf(p, HalfBits(x), HalfBits(w), bias ? HalfBits(bias) : nullptr, HalfBits(y),
                          IntraOpPool(ctx));
    return Ort::Status{nullptr};
  }
};

struct Cuda;  // the CUDA launcher, defined in a CUDA build
#if HOLOCRON_WITH_CUDA
struct Cuda {
  static constexpr const char* kProvider = kCudaProvider;
  static Ort::Status Launch(OrtKernelContext* context, const kernels::Add2dParams& p, const float* x, const float* w,
                            const float* bias, float* y) {
    const CudaCall call(context, c::kOpName, OutputShape(p));
    return call.Finish(kernels::cuda::Add2dCuda(p, x, w, bias, y, call.Stream()));
  }
  static Ort::Status Launch(OrtKernelContext* context, const kernels::Add2dParams& p, const Half* x, const Half* w,
                            const Half* bias, Half* y) {
    const CudaCall call(context, c::kOpName, OutputShape(p));
    return call.Finish(kernels::cuda::Add2dCudaHalf(p, CudaHalf(x), CudaHalf(w), bias ? CudaHalf(bias) : nullptr,
                                                    CudaHalf(y), call.Stream()));
  }
};
#endif

}  // namespace

void AppendOps(OpList& ops, bool cuda) { AppendKernels<Kernel, Cpu, Cuda>(ops, cuda); }

}  // namespace holocron::ops::add2d
