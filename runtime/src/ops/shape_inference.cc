#include "ops/shape_inference.h"

namespace holocron::ops {

std::optional<InferredShape> InferredInput(const OrtApi& api, OrtShapeInferContext* context, size_t index) {
  size_t count = 0;
  if (OrtStatus* status = api.ShapeInferContext_GetInputCount(context, &count)) {
    api.ReleaseStatus(status);
    return std::nullopt;
  }
  if (index >= count) return std::nullopt;
  OrtTensorTypeAndShapeInfo* info = nullptr;
  if (OrtStatus* status = api.ShapeInferContext_GetInputTypeShape(context, index, &info)) {
    api.ReleaseStatus(status);
    return std::nullopt;
  }
  if (info == nullptr) return std::nullopt;
  // The context owns `info`; only read it.
  size_t rank = 0;
  std::optional<InferredShape> shape;
  if (OrtStatus* status = api.GetDimensionsCount(info, &rank)) {
    api.ReleaseStatus(status);
    return std::nullopt;
  }
  std::vector<int64_t> values(rank);
  std::vector<const char*> symbols(rank, nullptr);
  OrtStatus* status = rank ? api.GetDimensions(info, values.data(), rank) : nullptr;
  if (status == nullptr && rank) status = api.GetSymbolicDimensions(info, symbols.data(), rank);
  if (status != nullptr) {
    api.ReleaseStatus(status);
    return std::nullopt;
  }
  shape.emplace(rank);
  for (size_t i = 0; i < rank; ++i) {
    (*shape)[i].value = values[i];
    if (symbols[i] != nullptr && symbols[i][0] != '\0') {
      (*shape)[i].value = -1;
      (*shape)[i].symbol = symbols[i];
    }
  }
  // Rank 0 is how onnxruntime reports an unknown rank as well as a scalar; neither is a valid holocron input.
  if (rank == 0) return std::nullopt;
  return shape;
}

bool KnownValues(const InferredShape& shape, std::vector<int64_t>& values) {
  values.clear();
  for (const InferredDim& dim : shape) {
    if (!dim.known()) return false;
    values.push_back(dim.value);
  }
  return true;
}

Ort::Status DeclareOutput(const OrtApi& api, OrtShapeInferContext* context, size_t index, const InferredShape& shape) {
  std::vector<int64_t> values;
  std::vector<const char*> symbols;
  for (const InferredDim& dim : shape) {
    if (!dim.known() && dim.symbol.empty()) return Ort::Status{nullptr};
    values.push_back(dim.known() ? dim.value : -1);
    symbols.push_back(dim.known() ? "" : dim.symbol.c_str());
  }
  // The output's element type is the node's (float or float16): that of its first input.
  ONNXTensorElementDataType element_type = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  OrtTensorTypeAndShapeInfo* first_input = nullptr;
  if (OrtStatus* status = api.ShapeInferContext_GetInputTypeShape(context, 0, &first_input)) {
    return Ort::Status(status);
  }
  if (first_input != nullptr) {
    if (OrtStatus* status = api.GetTensorElementType(first_input, &element_type)) return Ort::Status(status);
  }
  OrtTensorTypeAndShapeInfo* info = nullptr;
  if (OrtStatus* status = api.CreateTensorTypeAndShapeInfo(&info)) return Ort::Status(status);
  OrtStatus* status = api.SetTensorElementType(info, element_type);
  if (status == nullptr) status = api.SetDimensions(info, values.data(), values.size());
  if (status == nullptr) status = api.SetSymbolicDimensions(info, symbols.data(), symbols.size());
  if (status == nullptr) status = api.ShapeInferContext_SetOutputTypeShape(context, index, info);
  api.ReleaseTensorTypeAndShapeInfo(info);
  return Ort::Status(status);
}

}  // namespace holocron::ops
