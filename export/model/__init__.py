"""The model side of an export, the first layer: what a MODEL file is (:mod:`.kinds`), the checks of an
untrusted archive (:mod:`.archives`) and of its graphs (:mod:`.graphs`), loading it (:mod:`.loading`), its example
inputs (:mod:`.inputs`), its train/eval mode (:mod:`.modes`), and the built-in demo network (:mod:`.demo`).

Imports only :mod:`holocron.export.errors` below it.
"""
