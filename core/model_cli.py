"""Command-line commands that use a trained model: evaluate, predict, export."""

from __future__ import annotations


def add_model_commands(subparsers) -> None:
    """Registers `evaluate`, `predict` and `export` (filled in by the evaluation work)."""
