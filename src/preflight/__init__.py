"""cluster-preflight: acceptance checks for a multi-node PyTorch cluster, over SSH."""

__version__ = "0.1.0"
