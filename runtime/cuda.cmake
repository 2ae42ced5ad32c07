# CUDA kernels: wired in a later step.
