// holocron's torch op library (libholocron_torch.so): the schemas of holocron::add2d, holocron::involution2d and
// holocron::lambda_layer, and their CPU kernels, which are the kernels onnxruntime runs (kernels/cpu/launch.h).
//
// Only torch's stable C ABI is used (torch/csrc/stable, built with TORCH_TARGET_VERSION = 2.13): one build loads on
// every torch release from 2.13 on, and nothing here depends on Python. A process that loads this file
// (torch.ops.load_library, or a libtorch program that links or dlopens it) can run TorchScript archives calling the
// ops. holocron.ops, when it finds this library, adds what needs Python: the argument checks with Python's
// exception types, the fake kernels, autograd (composite backward ops), and the pure-torch forward for the devices
// and dtypes these kernels lack (see holocron/ops/_library.py).
//
// The schemas must stay those holocron.ops infers from its wrappers' annotations (torch.library.infer_schema);
// tests/ops/test_native_library.py compares them.
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/launch.h"
#include "kernels/cpu/parallel.h"
#include "kernels/params.h"

namespace holocron::torch_ops {
namespace {

using torch::headeronly::IntHeaderOnlyArrayRef;
using torch::headeronly::ScalarType;
using torch::stable::Tensor;
using Ints = torch::headeronly::HeaderOnlyArrayRef<int64_t>;

// "holocron::<op>: " and the parts, thrown as std::invalid_argument (torch reports it as a RuntimeError).
template <typename... Parts>
[[noreturn]] void Fail(const char* op, const Parts&... parts) {
  std::ostringstream out;
  out << op << ": ";
  (out << ... << parts);
  throw std::invalid_argument(out.str());
}

std::string Join(IntHeaderOnlyArrayRef values) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  out << (values.size() == 1 ? ",)" : ")");
  return out.str();
}

const char* DtypeName(ScalarType dtype) {
  switch (dtype) {
    case ScalarType::Float: return "float32";
    case ScalarType::Half: return "float16";
    case ScalarType::Double: return "float64";
    case ScalarType::BFloat16: return "bfloat16";
    default: return "a non-floating-point dtype";
  }
}

// ParallelFor on torch's intra-op thread pool (at::parallel_for through the stable ABI), so torch.set_num_threads
// governs the kernels as intra_op_num_threads does under onnxruntime.
void TorchPoolLaunch(const void* /*pool*/, kernels::ParallelFor::Task task, std::size_t count, void* state) {
  torch::stable::parallel_for(0, static_cast<int64_t>(count), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) task(state, static_cast<std::size_t>(i));
  });
}

constexpr kernels::ParallelFor kTorchPool(&TorchPoolLaunch, nullptr);

void CheckRank(const char* op, const char* name, const Tensor& t, int64_t rank, const char* layout) {
  if (t.dim() != rank) Fail(op, "`", name, "` must have rank ", rank, " ", layout, "; got shape ", Join(t.sizes()));
}

// The tensors share `reference`'s dtype, which these kernels compute (float32 or float16), and are on the CPU.
void CheckTensors(const char* op, const std::vector<std::pair<const char*, const Tensor*>>& tensors) {
  const auto& [ref_name, ref] = tensors.front();
  const ScalarType dtype = ref->scalar_type();
  if (dtype != ScalarType::Float && dtype != ScalarType::Half) {
    Fail(op, "the native CPU kernel computes float32 and float16; `", ref_name, "` is ", DtypeName(dtype),
         " (holocron.ops computes the other floating-point dtypes with its pure-torch path when Python imports it)");
  }
  for (const auto& [name, t] : tensors) {
    if (!t->is_cpu()) {
      // TODO(cuda): register the CUDA kernels of kernels/cuda/launch.h under STABLE_TORCH_LIBRARY_IMPL(holocron,
      // CUDA, m) in a CUDA build; until then holocron.ops serves CUDA tensors with its pure-torch forward.
      Fail(op, "`", name, "` is not a CPU tensor; this build of the library has CPU kernels only");
    }
    if (t->scalar_type() != dtype) {
      Fail(op, "`", name, "` must have the dtype of `", ref_name, "` (", DtypeName(dtype), "); got ",
           DtypeName(t->scalar_type()));
    }
  }
}

void CheckInts(const char* op, const char* name, Ints values, size_t count, int64_t minimum) {
  bool ok = values.size() == count;
  for (int64_t v : values) ok = ok && v >= minimum;
  if (!ok) Fail(op, "`", name, "` must be ", count, " ints, each >= ", minimum, "; got ", Join(values));
}

// The window geometry of an NCHW input with symmetric padding; refuses a window that does not fit.
kernels::Window2d MakeWindow(const char* op, const Tensor& input, int64_t kernel_h, int64_t kernel_w, Ints stride,
                             Ints padding, Ints dilation, int64_t groups) {
  CheckInts(op, "stride", stride, 2, 1);
  CheckInts(op, "padding", padding, 2, 0);
  CheckInts(op, "dilation", dilation, 2, 1);
  if (groups < 1) Fail(op, "`groups` must be >= 1; got ", groups);
  kernels::Window2d w;
  w.batch = input.size(0);
  w.channels = input.size(1);
  w.height = input.size(2);
  w.width = input.size(3);
  w.kernel_h = kernel_h;
  w.kernel_w = kernel_w;
  w.stride_h = stride[0];
  w.stride_w = stride[1];
  w.pad_top = w.pad_bottom = padding[0];
  w.pad_left = w.pad_right = padding[1];
  w.dilation_h = dilation[0];
  w.dilation_w = dilation[1];
  w.groups = groups;
  w.out_h = kernels::ConvOutputSize(w.height, kernel_h, w.stride_h, w.pad_top, w.pad_bottom, w.dilation_h);
  w.out_w = kernels::ConvOutputSize(w.width, kernel_w, w.stride_w, w.pad_left, w.pad_right, w.dilation_w);
  if (w.out_h < 1 || w.out_w < 1) {
    Fail(op, "the dilated kernel (", kernel_h, ", ", kernel_w, ") (dilation ", Join(dilation),
         ") does not fit the input (", w.height, ", ", w.width, ") padded by ", Join(padding));
  }
  if (w.channels % groups != 0) Fail(op, "`groups` must divide C_in=", w.channels, "; got ", groups);
  return w;
}

template <typename T>
const T* Data(const Tensor& t) {
  return static_cast<const T*>(t.const_data_ptr());
}

template <typename T>
T* MutableData(const Tensor& t) {
  return static_cast<T*>(t.mutable_data_ptr());
}

// float32 runs the float kernel, float16 its half variant (the 16-bit patterns of torch's Half, see half.h).
bool IsHalf(const Tensor& t) { return t.scalar_type() == ScalarType::Half; }

Tensor Add2d(Tensor input, Tensor weight, std::optional<Tensor> bias, Ints stride, Ints padding, Ints dilation,
             int64_t groups, bool normalize_slices, double eps) {
  const char* op = "holocron::add2d";
  CheckRank(op, "input", input, 4, "(N, C_in, H, W)");
  CheckRank(op, "weight", weight, 4, "(C_out, C_in / groups, kH, kW)");
  std::vector<std::pair<const char*, const Tensor*>> tensors{{"input", &input}, {"weight", &weight}};
  if (bias) {
    CheckRank(op, "bias", *bias, 1, "(C_out,)");
    tensors.emplace_back("bias", &*bias);
  }
  CheckTensors(op, tensors);
  if (!(eps >= 0.0)) Fail(op, "`eps` must be >= 0; got ", eps);
  kernels::Add2dParams p;
  p.window = MakeWindow(op, input, weight.size(2), weight.size(3), stride, padding, dilation, groups);
  p.out_channels = weight.size(0);
  if (p.out_channels % groups != 0) Fail(op, "`groups` must divide C_out=", p.out_channels, "; got ", groups);
  if (weight.size(1) * groups != p.window.channels) {
    Fail(op, "`weight` must have C_in / groups = ", p.window.channels / groups, " channels (dim 1); got shape ",
         Join(weight.sizes()));
  }
  if (bias && bias->size(0) != p.out_channels) {
    Fail(op, "`bias` must have shape (", p.out_channels, ",); got ", Join(bias->sizes()));
  }
  p.has_bias = bias.has_value();
  p.normalize_slices = normalize_slices;
  p.eps = static_cast<float>(eps);
  const std::vector<int64_t> shape{p.window.batch, p.out_channels, p.window.out_h, p.window.out_w};
  Tensor y = torch::stable::new_empty(input, IntHeaderOnlyArrayRef(shape));
  if (y.numel() == 0 || input.numel() == 0 || weight.numel() == 0) {
    // An empty batch or filter bank: nothing to compute (no kernel is called on empty buffers).
    if (y.numel() != 0) Fail(op, "`input` and `weight` must not be empty; got ", Join(input.sizes()), " and ",
                             Join(weight.sizes()));
    return y;
  }
  const Tensor x = torch::stable::contiguous(input);
  const Tensor w = torch::stable::contiguous(weight);
  const Tensor b = bias ? torch::stable::contiguous(*bias) : w;  // w stands in when there is no bias (unread)
  if (IsHalf(x)) {
    kernels::Add2dCpuHalf(p, Data<uint16_t>(x), Data<uint16_t>(w), bias ? Data<uint16_t>(b) : nullptr,
                          MutableData<uint16_t>(y), kTorchPool);
  } else {
    kernels::Add2dCpu(p, Data<float>(x), Data<float>(w), bias ? Data<float>(b) : nullptr, MutableData<float>(y),
                      kTorchPool);
  }
  return y;
}

Tensor Involution2d(Tensor input, Tensor kernel, Ints kernel_size, Ints stride, Ints padding, Ints dilation,
                    int64_t groups) {
  const char* op = "holocron::involution2d";
  CheckRank(op, "input", input, 4, "(N, C, H, W)");
  CheckRank(op, "kernel", kernel, 4, "(N, groups * kH * kW, H_out, W_out)");
  CheckTensors(op, {{"input", &input}, {"kernel", &kernel}});
  CheckInts(op, "kernel_size", kernel_size, 2, 1);
  kernels::Involution2dParams p;
  p.window = MakeWindow(op, input, kernel_size[0], kernel_size[1], stride, padding, dilation, groups);
  const kernels::Window2d& g = p.window;
  const std::vector<int64_t> expected{g.batch, g.groups * g.kernel_h * g.kernel_w, g.out_h, g.out_w};
  if (IntHeaderOnlyArrayRef(expected) != kernel.sizes()) {
    Fail(op, "`kernel` must have shape (N, groups * kH * kW, H_out, W_out) = ", Join(expected), "; got ",
         Join(kernel.sizes()));
  }
  const std::vector<int64_t> shape{g.batch, g.channels, g.out_h, g.out_w};
  Tensor y = torch::stable::new_empty(input, IntHeaderOnlyArrayRef(shape));
  if (y.numel() == 0) return y;
  const Tensor x = torch::stable::contiguous(input);
  const Tensor k = torch::stable::contiguous(kernel);
  if (IsHalf(x)) {
    kernels::Involution2dCpuHalf(p, Data<uint16_t>(x), Data<uint16_t>(k), MutableData<uint16_t>(y), kTorchPool);
  } else {
    kernels::Involution2dCpu(p, Data<float>(x), Data<float>(k), MutableData<float>(y), kTorchPool);
  }
  return y;
}

Tensor LambdaLayer(Tensor q, Tensor k, Tensor v, Tensor pos, int64_t num_heads) {
  const char* op = "holocron::lambda_layer";
  CheckRank(op, "q", q, 4, "(N, heads * dim_k, H, W)");
  CheckRank(op, "k", k, 4, "(N, dim_k * dim_u, H, W)");
  CheckRank(op, "v", v, 4, "(N, dim_v * dim_u, H, W)");
  CheckTensors(op, {{"q", &q}, {"k", &k}, {"v", &v}, {"pos", &pos}});
  kernels::LambdaParams p;
  p.batch = q.size(0);
  p.height = q.size(2);
  p.width = q.size(3);
  for (const Tensor* t : {&k, &v}) {
    if (t->size(0) != p.batch || t->size(2) != p.height || t->size(3) != p.width) {
      Fail(op, "`", t == &k ? "k" : "v", "` must have the batch and spatial size of `q` (N, H, W) = (", p.batch,
           ", ", p.height, ", ", p.width, "); got shape ", Join(t->sizes()));
    }
  }
  if (num_heads < 1 || q.size(1) % num_heads != 0) {
    Fail(op, "`num_heads` must divide the ", q.size(1), " channels of `q`; got ", num_heads);
  }
  p.heads = num_heads;
  p.dim_k = q.size(1) / num_heads;
  if (p.dim_k == 0 || k.size(1) % p.dim_k != 0) {
    Fail(op, "`k` channels must be a multiple of dim_k = ", p.dim_k, "; got ", k.size(1));
  }
  p.dim_u = k.size(1) / p.dim_k;
  if (p.dim_u == 0 || v.size(1) % p.dim_u != 0) {
    Fail(op, "`v` channels must be a multiple of dim_u = ", p.dim_u, "; got ", v.size(1));
  }
  p.dim_v = v.size(1) / p.dim_u;
  if (pos.dim() == 5) {
    const int64_t r = pos.size(4);
    if (pos.size(0) != p.dim_k || pos.size(1) != p.dim_u || pos.size(2) != 1 || pos.size(3) != r || r % 2 != 1) {
      Fail(op, "local `pos` must have shape (dim_k, dim_u, 1, r, r) = (", p.dim_k, ", ", p.dim_u,
           ", 1, r, r) with r odd; got ", Join(pos.sizes()));
    }
    p.local = true;
    p.r = r;
  } else if (pos.dim() == 4) {
    const int64_t positions = p.height * p.width;
    const std::vector<int64_t> expected{positions, positions, p.dim_k, p.dim_u};
    if (IntHeaderOnlyArrayRef(expected) != pos.sizes()) {
      Fail(op, "global `pos` must have shape (H * W, H * W, dim_k, dim_u) = ", Join(expected), "; got ",
           Join(pos.sizes()));
    }
  } else {
    Fail(op, "`pos` must have rank 5 (local R) or rank 4 (global E); got shape ", Join(pos.sizes()));
  }
  const std::vector<int64_t> shape{p.batch, p.heads * p.dim_v, p.height, p.width};
  Tensor y = torch::stable::new_empty(q, IntHeaderOnlyArrayRef(shape));
  if (y.numel() == 0) return y;
  const Tensor qc = torch::stable::contiguous(q), kc = torch::stable::contiguous(k);
  const Tensor vc = torch::stable::contiguous(v), pc = torch::stable::contiguous(pos);
  if (IsHalf(qc)) {
    kernels::LambdaCpuHalf(p, Data<uint16_t>(qc), Data<uint16_t>(kc), Data<uint16_t>(vc), Data<uint16_t>(pc),
                           MutableData<uint16_t>(y), kTorchPool);
  } else {
    kernels::LambdaCpu(p, Data<float>(qc), Data<float>(kc), Data<float>(vc), Data<float>(pc), MutableData<float>(y),
                       kTorchPool);
  }
  return y;
}

}  // namespace
}  // namespace holocron::torch_ops

// The schemas, spelled as torch.library.infer_schema spells those of holocron.ops' wrappers.
STABLE_TORCH_LIBRARY(holocron, m) {
  m.def("add2d(Tensor input, Tensor weight, Tensor? bias, SymInt[] stride, SymInt[] padding, SymInt[] dilation, "
        "SymInt groups, bool normalize_slices, float eps) -> Tensor");
  m.def("involution2d(Tensor input, Tensor kernel, SymInt[] kernel_size, SymInt[] stride, SymInt[] padding, "
        "SymInt[] dilation, SymInt groups) -> Tensor");
  m.def("lambda_layer(Tensor q, Tensor k, Tensor v, Tensor pos, SymInt num_heads) -> Tensor");
}

STABLE_TORCH_LIBRARY_IMPL(holocron, CPU, m) {
  m.impl("add2d", TORCH_BOX(&holocron::torch_ops::Add2d));
  m.impl("involution2d", TORCH_BOX(&holocron::torch_ops::Involution2d));
  m.impl("lambda_layer", TORCH_BOX(&holocron::torch_ops::LambdaLayer));
}
// TODO(cuda): STABLE_TORCH_LIBRARY_IMPL(holocron, CUDA, m) with the kernels of kernels/cuda/launch.h, in a CUDA
// build of this library (runtime/torch.cmake); holocron.ops registers its pure-torch forward for CUDA meanwhile.
