"""holocron.export: ONNX and TorchScript export of holocron models, with parity verification."""
