"""Badges v2: rewards for real financial behaviour, run on Temporal."""
