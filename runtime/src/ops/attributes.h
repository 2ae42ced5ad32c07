// Reading node attributes from onnxruntime, the same way at kernel creation (OrtKernelInfo) and during shape
// inference (OrtShapeInferContext), telling an absent attribute (use the contract default) from one of the wrong type.
#pragma once
#include <onnxruntime_c_api.h>

#include <cstdint>
#include <vector>

namespace holocron::ops {

enum class AttributeRead { kOk, kAbsent, kWrongType };

class AttributeSource {
 public:
  virtual ~AttributeSource() = default;
  virtual AttributeRead Int(const char* name, int64_t& out) const = 0;
  virtual AttributeRead Ints(const char* name, std::vector<int64_t>& out) const = 0;
  virtual AttributeRead Float(const char* name, float& out) const = 0;
};

class KernelInfoAttributes final : public AttributeSource {
 public:
  KernelInfoAttributes(const OrtApi& api, const OrtKernelInfo* info) : api_(api), info_(info) {}
  AttributeRead Int(const char* name, int64_t& out) const override;
  AttributeRead Ints(const char* name, std::vector<int64_t>& out) const override;
  AttributeRead Float(const char* name, float& out) const override;

 private:
  // After a failed typed read: whether the attribute exists with some other type.
  bool Exists(const char* name) const;
  bool Succeeded(OrtStatus* status) const;

  const OrtApi& api_;
  const OrtKernelInfo* info_;
};

class ShapeInferAttributes final : public AttributeSource {
 public:
  ShapeInferAttributes(const OrtApi& api, OrtShapeInferContext* context) : api_(api), context_(context) {}
  AttributeRead Int(const char* name, int64_t& out) const override;
  AttributeRead Ints(const char* name, std::vector<int64_t>& out) const override;
  AttributeRead Float(const char* name, float& out) const override;

 private:
  const OrtOpAttr* Find(const char* name) const;
  bool Succeeded(OrtStatus* status) const;

  const OrtApi& api_;
  OrtShapeInferContext* context_;
};

}  // namespace holocron::ops
