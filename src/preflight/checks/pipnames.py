"""Which conda package a PyPI distribution duplicates, where the names differ."""

from __future__ import annotations

import re

from packaging.utils import canonicalize_name

# PyPI name (canonical, as a regex) -> conda packages it shadows
ALIASES = (
    (r"torch", ("pytorch",)),
    (r"nvidia-nccl-cu\d+", ("nccl",)),
    (r"nvidia-cudnn-cu\d+", ("cudnn",)),
    (r"nvidia-cuda-runtime-cu\d+", ("cudatoolkit", "cuda-cudart", "cuda-runtime")),
    (r"nvidia-cublas-cu\d+", ("libcublas", "cudatoolkit")),
    (r"tensorflow-gpu", ("tensorflow",)),
    (r"opencv-python(-headless)?", ("opencv", "py-opencv")),
)


def conda_names(pypi_name: str) -> tuple[str, ...]:
    """Conda packages that a PyPI distribution would duplicate.

    >>> conda_names("nvidia-nccl-cu11")
    ('nccl',)
    >>> conda_names("NumPy")
    ('numpy',)
    """
    name = canonicalize_name(pypi_name)
    for pattern, conda in ALIASES:
        if re.fullmatch(pattern, name):
            return conda
    return (name,)
