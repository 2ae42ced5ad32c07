"""float16 conversion of an exported model, with the settings holocron's ops and fallback functions need."""

import onnx

__all__ = ["to_float16"]


def to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float16 copy of an exported (float32) model, its inputs and outputs kept float32.

    Runs ``onnxconverter_common.float16.convert_float_to_float16(model, keep_io_types=True)`` with no block list: the
    ``holocron`` ops accept ``tensor(float16)`` and their fallback functions are element-type generic (constants
    cast like the input), so Add2d, Involution2d and Lambda nodes are converted with the rest and run on onnxruntime
    with or without holocron's kernels. Casts at the graph inputs and outputs keep the interface float32. Results
    agree with the float32 model within float16 precision.

    Args:
        model: a model from :func:`holocron.export.to_onnx_proto` (default or ``custom_ops=False``).

    Returns:
        The converted copy (``model`` is left unchanged).

    Raises:
        ImportError: ``onnxconverter-common`` is not installed (``pip install onnxconverter-common``).
    """
    try:
        from onnxconverter_common import float16
    except ImportError as error:
        raise ImportError("to_float16 needs onnxconverter-common: pip install onnxconverter-common") from error
    source = onnx.ModelProto()
    source.CopyFrom(model)
    return float16.convert_float_to_float16(source, keep_io_types=True)
