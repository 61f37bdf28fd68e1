"""Admission control for whole pipelines: the shared bounded admission from comps.core.limits."""

from __future__ import annotations

from comps.core.limits import Admission

__all__ = ["Admission"]
