"""Numeric work: categorisation, income detection, OpenDP peer statistics (later issues)."""
