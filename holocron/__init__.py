"""holocron: PyTorch building blocks that deploy (TorchScript, ONNX, onnxruntime)."""

__version__ = "0.1.0"
