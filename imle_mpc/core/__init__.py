"""The core every other layer builds on: protocols, types, errors, validation, io, kernels.

Depends on numpy and numba only.
"""
