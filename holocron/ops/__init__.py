"""holocron's custom torch operators (``torch.ops.holocron.*``), one file per op, all following ``contract``."""
