#include "ops/attributes.h"

namespace holocron::ops {

bool KernelInfoAttributes::Succeeded(OrtStatus* status) const {
  if (status == nullptr) return true;
  api_.ReleaseStatus(status);
  return false;
}

bool KernelInfoAttributes::Exists(const char* name) const {
  int64_t i = 0;
  float f = 0.0f;
  size_t size = 0;
  return Succeeded(api_.KernelInfoGetAttribute_int64(info_, name, &i)) ||
         Succeeded(api_.KernelInfoGetAttribute_float(info_, name, &f)) ||
         Succeeded(api_.KernelInfoGetAttributeArray_int64(info_, name, nullptr, &size)) ||
         Succeeded(api_.KernelInfoGetAttributeArray_float(info_, name, nullptr, &size)) ||
         Succeeded(api_.KernelInfoGetAttribute_string(info_, name, nullptr, &size));
}

AttributeRead KernelInfoAttributes::Int(const char* name, int64_t& out) const {
  if (Succeeded(api_.KernelInfoGetAttribute_int64(info_, name, &out))) return AttributeRead::kOk;
  return Exists(name) ? AttributeRead::kWrongType : AttributeRead::kAbsent;
}

AttributeRead KernelInfoAttributes::Ints(const char* name, std::vector<int64_t>& out) const {
  size_t size = 0;
  if (Succeeded(api_.KernelInfoGetAttributeArray_int64(info_, name, nullptr, &size))) {
    out.assign(size, 0);
    if (size > 0 && Succeeded(api_.KernelInfoGetAttributeArray_int64(info_, name, out.data(), &size))) {
      return AttributeRead::kOk;
    }
    // onnxruntime reads a list of another type as an empty list of ints.
    size_t floats = 0;
    const bool has_floats = Succeeded(api_.KernelInfoGetAttributeArray_float(info_, name, nullptr, &floats));
    if (size == 0 && !(has_floats && floats > 0)) return AttributeRead::kOk;
  }
  return Exists(name) ? AttributeRead::kWrongType : AttributeRead::kAbsent;
}

AttributeRead KernelInfoAttributes::Float(const char* name, float& out) const {
  if (Succeeded(api_.KernelInfoGetAttribute_float(info_, name, &out))) return AttributeRead::kOk;
  return Exists(name) ? AttributeRead::kWrongType : AttributeRead::kAbsent;
}

bool ShapeInferAttributes::Succeeded(OrtStatus* status) const {
  if (status == nullptr) return true;
  api_.ReleaseStatus(status);
  return false;
}

const OrtOpAttr* ShapeInferAttributes::Find(const char* name) const {
  const OrtOpAttr* attr = nullptr;
  if (!Succeeded(api_.ShapeInferContext_GetAttribute(context_, name, &attr))) return nullptr;
  return attr;
}

AttributeRead ShapeInferAttributes::Int(const char* name, int64_t& out) const {
  const OrtOpAttr* attr = Find(name);
  if (attr == nullptr) return AttributeRead::kAbsent;
  size_t written = 0;
  return Succeeded(api_.ReadOpAttr(attr, ORT_OP_ATTR_INT, &out, sizeof(out), &written)) ? AttributeRead::kOk
                                                                                         : AttributeRead::kWrongType;
}

AttributeRead ShapeInferAttributes::Ints(const char* name, std::vector<int64_t>& out) const {
  const OrtOpAttr* attr = Find(name);
  if (attr == nullptr) return AttributeRead::kAbsent;
  size_t bytes = 0;
  int64_t probe = 0;
  // A zero-length read reports the size the values need.
  Succeeded(api_.ReadOpAttr(attr, ORT_OP_ATTR_INTS, &probe, 0, &bytes));
  out.assign(bytes / sizeof(int64_t), 0);
  if (out.empty()) {
    // Any list reads as an empty list of ints: a non-empty list of floats is the wrong type.
    size_t float_bytes = 0;
    Succeeded(api_.ReadOpAttr(attr, ORT_OP_ATTR_FLOATS, &probe, 0, &float_bytes));
    return float_bytes == 0 ? AttributeRead::kOk : AttributeRead::kWrongType;
  }
  return Succeeded(api_.ReadOpAttr(attr, ORT_OP_ATTR_INTS, out.data(), bytes, &bytes)) ? AttributeRead::kOk
                                                                                       : AttributeRead::kWrongType;
}

AttributeRead ShapeInferAttributes::Float(const char* name, float& out) const {
  const OrtOpAttr* attr = Find(name);
  if (attr == nullptr) return AttributeRead::kAbsent;
  size_t written = 0;
  return Succeeded(api_.ReadOpAttr(attr, ORT_OP_ATTR_FLOAT, &out, sizeof(out), &written)) ? AttributeRead::kOk
                                                                                          : AttributeRead::kWrongType;
}

}  // namespace holocron::ops
