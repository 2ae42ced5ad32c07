"""The ONNX layer: both torch exporters (:mod:`.exporters`), graph walking and naming (:mod:`.graph`), the finalize
step that attaches the fallback functions and checks the model (:mod:`.finalize`), and the per-op exports
(:mod:`.ops`: schemas, translations, symbolics, fallback bodies, float16 conversion).

Imports :mod:`holocron.export.model` (eval mode) and the ground floor (``errors``, ``files``) below it.
"""
