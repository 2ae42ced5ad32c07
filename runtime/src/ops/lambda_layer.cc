#include "ops/lambda_layer.h"

#include <array>
#include <optional>
#include <type_traits>

#include "holocron_contract.h"
#include "kernels/cpu/launch.h"
#include "ops/shape_inference.h"
#if HOLOCRON_WITH_CUDA
#include "kernels/cuda/launch.h"
#include "ops/cuda_call.h"
#endif

namespace holocron::ops::lambda_layer {

namespace c = contract::lambda_layer;

std::string ReadAttributes(const AttributeSource& source, Attributes& out) {
  return ReadInt(c::kOpName, source, c::kNumHeads, out.num_heads);
}

std::string MakeParams(const Attributes& attrs, const Shape& q, const Shape& keys, const Shape& values,
                       const Shape& position, kernels::LambdaParams& out) {
  const char* op = c::kOpName;
  const auto& [q_name, k_name, v_name, p_name] = c::kInputNames;
  std::string error = CheckRank(op, q_name, q, 4, "(N, heads * K, H, W)");
  if (error.empty()) error = CheckRank(op, k_name, keys, 4, "(N, K * U, H, W)");
  if (error.empty()) error = CheckRank(op, v_name, values, 4, "(N, V * U, H, W)");
  if (!error.empty()) return error;
  if (position.size() != 4 && position.size() != 5) {
    return Message(op, "input ", p_name, " must have rank 5 (K, U, 1, r, r) or rank 4 (H * W, H * W, K, U); got shape ",
                   Join(position));
  }
  const char* layout = position.size() == 5 ? "(K, U, 1, r, r)" : "(H * W, H * W, K, U)";
  error = CheckRank(op, p_name, position, position.size(), layout);
  if (!error.empty()) return error;
  if (keys[0] != q[0] || values[0] != q[0] || keys[2] != q[2] || values[2] != q[2] || keys[3] != q[3] ||
      values[3] != q[3]) {
    return Message(op, q_name, ", ", k_name, " and ", v_name, " must share N, H and W; got shapes ", Join(q), ", ",
                   Join(keys), ", ", Join(values));
  }
  const int64_t heads = attrs.num_heads;
  if (q[1] % heads != 0) {
    return Message(op, "attribute '", c::kNumHeadsName, "' (", heads, ") must divide the ", q[1], " channels of ",
                   q_name);
  }
  out.batch = q[0];
  out.heads = heads;
  out.dim_k = q[1] / heads;
  out.height = q[2];
  out.width = q[3];
  if (keys[1] % out.dim_k != 0) {
    return Message(op, k_name, " must have K * U channels with K = ", out.dim_k, " (", q_name, " channels / ",
                   c::kNumHeadsName, "); got ", keys[1]);
  }
  out.dim_u = keys[1] / out.dim_k;
  if (values[1] % out.dim_u != 0) {
    return Message(op, v_name, " must have V * U channels with U = ", out.dim_u, " (", k_name, " channels / K); got ",
                   values[1]);
  }
  out.dim_v = values[1] / out.dim_u;
  const int64_t positions = out.height * out.width;
  if (position.size() == 5) {
    const int64_t r = position[3];
    if (position[0] != out.dim_k || position[1] != out.dim_u || position[2] != 1 || position[4] != r || r % 2 != 1) {
      return Message(op, "local ", p_name, " must have shape (K, U, 1, r, r) = (", out.dim_k, ", ", out.dim_u,
                     ", 1, r, r) with r odd; got ", Join(position));
    }
    out.local = true;
    out.r = r;
  } else {
    const Shape expected{positions, positions, out.dim_k, out.dim_u};
    if (position != expected) {
      return Message(op, "global ", p_name, " must have shape (H * W, H * W, K, U) = ", Join(expected), "; got ",
                     Join(position));
    }
    out.local = false;
    out.r = 0;
  }
  return CheckOutputSize(op, OutputShape(out));
}

Shape OutputShape(const kernels::LambdaParams& p) { return {p.batch, p.heads * p.dim_v, p.height, p.width}; }

namespace {

Ort::Status InferOutputShape(const OrtApi& api, OrtShapeInferContext* context) {
  Attributes attributes;
  std::string error = ReadAttributes(ShapeInferAttributes(api, context), attributes);
  if (!error.empty()) return InvalidArgument(error);
  std::array<Shape, c::kNumInputs> values;
  std::optional<InferredShape> q;
  for (size_t i = 0; i < values.size(); ++i) {
    std::optional<InferredShape> shape = InferredInput(api, context, i);
    if (!shape) return Ort::Status{nullptr};
    if (i == 0) q = shape;
    // Q, Kx and V share a batch that may be symbolic: validate with batch 1 and copy Q's to the output.
    if (i < 3 && !shape->empty() && !(*shape)[0].known()) (*shape)[0] = {1, {}};
    if (!KnownValues(*shape, values[i])) return Ort::Status{nullptr};
  }
  kernels::LambdaParams params;
  error = MakeParams(attributes, values[0], values[1], values[2], values[3], params);
  if (!error.empty()) return InvalidArgument(error);
  const Shape out = OutputShape(params);
  return DeclareOutput(api, context, 0, {(*q)[0], {out[1], {}}, {out[2], {}}, {out[3], {}}});
}

// The op's kernel for one device (the Cpu and Cuda launchers below) and element type (float or Half).
template <typename Device, typename T>
struct Kernel : KernelBase<c::Op, Attributes, InferOutputShape> {
  using KernelBase::KernelBase;
  using Tensor = Ort::Custom::Tensor<T>;

  // Fetches the call's inputs for Compute; MakeLiteOp checked the required ones.
  static Ort::Status Call(Kernel& kernel, OrtKernelContext* context) {
    Tensor q(context, 0, true), k(context, 1, true), v(context, 2, true), p(context, 3, true);
    Tensor y(context, 0, false);
    return kernel.Compute(context, q, k, v, p, y);
  }

  Ort::Status Compute(OrtKernelContext* context, const Tensor& q, const Tensor& keys,
                      const Tensor& values, const Tensor& position, Tensor& y) {
    if (!attributes.error.empty()) return InvalidArgument(attributes.error);
    kernels::LambdaParams params;
    const std::string error =
        MakeParams(attributes.value, q.Shape(), keys.Shape(), values.Shape(), position.Shape(), params);
    if (!error.empty()) return InvalidArgument(error);
    T* out = y.Allocate(OutputShape(params));
    return Device::Launch(context, params, q.Data(), keys.Data(), values.Data(), position.Data(), out);
  }
};

// What differs between devices: the provider and how the validated call reaches the kernel.
struct Cpu {
  static constexpr const char* kProvider = kCpuProvider;
  static Ort::Status Launch(OrtKernelContext* context, const kernels::LambdaParams& p, const float* q,
                            const float* keys, const float* values, const float* position, float* y) {
    const Ort::KernelContext ctx(context);
    kernels::LambdaCpu(p, q, keys, values, position, y, IntraOpPool(ctx));
    return Ort::Status{nullptr};
  }
  static Ort::Status Launch(OrtKernelContext* context, const kernels::LambdaParams& p, const Half* q,
                            const Half* keys, const Half* values, const Half* position, Half* y) {
    const Ort::KernelContext ctx(context);
    kernels::LambdaCpuHalf(p, HalfBits(q), HalfBits(keys), HalfBits(values), HalfBits(position), HalfBits(y),
                           IntraOpPool(ctx));
    return Ort::Status{nullptr};
  }
};

struct Cuda;  // the CUDA launcher, defined in a CUDA build
#if HOLOCRON_WITH_CUDA
struct Cuda {
  static constexpr const char* kProvider = kCudaProvider;
  // The kernels' device workspace is onnxruntime's per-stream scratch buffer on the output's device: no allocation
  // of our own, no waiting, and it returns to onnxruntime's arena when the call ends (ordered after the stream's work).
  template <typename T>
  static Ort::Status Launch(OrtKernelContext* context, const kernels::LambdaParams& p, const T* q, const T* keys,
                            const T* values, const T* position, T* y) {
    constexpr bool kHalf = std::is_same_v<T, Half>;
    CudaCall call(context, c::kOpName, OutputShape(p));
    const size_t bytes = kernels::cuda::LambdaCudaWorkspaceBytes(p, kHalf);
    void* workspace = call.Scratch(bytes);
    if constexpr (kHalf) {
      return call.Finish(kernels::cuda::LambdaCudaHalf(p, CudaHalf(q), CudaHalf(keys), CudaHalf(values),
                                                       CudaHalf(position), CudaHalf(y), workspace, bytes,
                                                       call.Stream()));
    } else {
      return call.Finish(
          kernels::cuda::LambdaCuda(p, q, keys, values, position, y, workspace, bytes, call.Stream()));
    }
  }
};
#endif

}  // namespace

void AppendOps(OpList& ops, bool cuda) { AppendKernels<Kernel, Cpu, Cuda>(ops, cuda); }

}  // namespace holocron::ops::lambda_layer
