"""holocron.runtime: the onnxruntime custom-op library for the ``holocron`` domain and session helpers."""
