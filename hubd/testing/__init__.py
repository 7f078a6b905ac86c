"""Test and demo helpers for hubd: real external services run from a temp dir."""
