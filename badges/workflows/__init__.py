"""Temporal workflow definitions: deterministic, each one small."""
