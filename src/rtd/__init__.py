"""Robustness Teacher Distillation (RTD): library code behind the DVC pipeline."""

__version__ = "0.1.0"
