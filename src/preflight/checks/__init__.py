"""Checks: pure functions from facts (and expectations) to findings. No I/O here."""
