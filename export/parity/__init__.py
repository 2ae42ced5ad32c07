"""The parity layer: numpy-only criteria and comparisons (:mod:`.criteria`), the report with its table and JSON
(:mod:`.report`, and as JUnit XML: :mod:`.junit`), eager and float64 runs (:mod:`.eager`) recording every module's
output as the model's kind allows (:mod:`.recording`: forward hooks; :mod:`.script_recording`: TorchScript archives;
:mod:`.graph_recording`: ``torch.export`` programs), the onnxruntime side (:mod:`.session`), localization
(:mod:`.localize`), the entry points (:mod:`.api`: ``verify``, ``verify_torchscript``, ``assert_close_to_eager``,
``verify_files``), and the other tools' hooks (:mod:`.interop`: the ``torch.onnx.verification`` session initializer;
:mod:`.polygraphy_plugin`: the ``polygraphy run --holocron-onnxrt`` runner).

Imports :mod:`holocron.export.onnx`, :mod:`holocron.export.model` and the ground floor below it.
"""
