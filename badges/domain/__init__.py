"""Pure domain logic: badge definitions, rule evaluation. No I/O, no clock, no randomness."""
