"""Run one ONNX model with holocron's kernels, in its own process (used by the kernel tests).

Usage: ``python run_model_script.py MODEL FEEDS_NPZ OUT_NPZ``. Writes output ``Y`` to ``OUT_NPZ`` and exits 0, or
prints ``ERROR <exception type>: <message>`` and exits 3 when onnxruntime refuses the model or the inputs.
"""

import sys

import numpy as np

from holocron.runtime import InferenceSession, session_options


def main(model: str, feeds_path: str, out_path: str) -> int:
    feeds = dict(np.load(feeds_path))
    try:
        session = InferenceSession(model, sess_options=session_options(intra_op_num_threads=2, log_severity_level=4))
        (out,) = session.run(None, feeds)
    except Exception as error:  # any onnxruntime refusal; a crash never gets here
        print(f"ERROR {type(error).__name__}: {error}")
        return 3
    np.savez(out_path, Y=out)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
