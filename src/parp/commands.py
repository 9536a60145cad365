"""Sub-commands of the later pipeline stages (pruning, synthesis, pretraining, experiments), registered lazily."""

from __future__ import annotations

from .cli import Command, register
