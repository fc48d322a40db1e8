"""Thin asset declarations, one module per layer; the logic lives in the medlake library."""
