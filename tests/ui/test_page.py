"""The page's mapping from its controls to the request."""

from __future__ import annotations

import pytest

from comps.animation.backends import BACKENDS
from ui.page import MODES, animation_choice


@pytest.mark.parametrize(
    ("mode", "fps", "expected"),
    [
        ("default", 25, (None, 25)),
        ("", 0, (None, None)),
        ("wav2lip_gan", 12, ("wav2lip_gan", 12)),
        ("sadtalker", 12, ("sadtalker", None)),  # fixed at 25 fps: the slider is not sent
        ("sadtalker+gfpgan", 25, ("sadtalker+gfpgan", None)),
    ],
)
def test_mode_and_rate(mode: str, fps: float, expected: tuple[str | None, float | None]) -> None:
    assert animation_choice(mode, fps) == expected


def test_every_animation_mode_is_offered() -> None:
    offered = MODES[1:]
    assert offered == list(BACKENDS)
