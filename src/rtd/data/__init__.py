"""Benchmarks: each module builds the same split structure (images, labels, domains)."""
