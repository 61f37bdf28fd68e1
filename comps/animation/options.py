"""Per-request render options: the contract's `SadTalkerOptions` (one definition), and which ones a request set.

A mode declares the option names it takes in `Capabilities.options`; the service refuses (400) any
other option a request sets, so a request never has an option silently ignored. Per request, not
per frame: a pydantic model is cheap enough here.
"""

from __future__ import annotations

from comps.core.contracts import SadTalkerOptions

__all__ = ["OPTION_NAMES", "SadTalkerOptions", "given"]

OPTION_NAMES: frozenset[str] = frozenset(SadTalkerOptions.model_fields)
"""Every per-request option (SadTalker's `still`, `blink`, `expression_scale`, `pose_style`, ...)."""


def given(options: SadTalkerOptions) -> list[str]:
    """Names of the options a request set (not None), in the contract's field order."""
    return [name for name in SadTalkerOptions.model_fields if getattr(options, name) is not None]
