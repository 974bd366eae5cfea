"""Stage 3, the contract: every node's facts document validated against the declared
shapes before any check reads it; parsers of what nodes send (nvidia-smi, DCGM)."""
