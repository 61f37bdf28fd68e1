"""GFPGANForward computes GFPGANv1Clean's own forward (fixed noise, no RGB side outputs) to float32 noise."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from support.gfpgan_weights import narrow_gfpgan

from comps.animation.enhance import build_gfpgan_v14
from comps.animation.gfpgan_forward import WINOGRAD_MIN_SIDE, GFPGANForward, winograd_available

# Measured on the full v1.4 network with seeded random weights: at most 9.7e-6 off the original
# forward on outputs spanning -2.4..1.8, with or without Winograd. 1e-4 is 0.013 of a grey level.
ATOL = 1e-4

needs_nnpack = pytest.mark.skipif(not winograd_available(), reason="this torch build has no usable NNPACK")


def faces(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 512, 512, generator=generator) * 2 - 1


def original(net: Any, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        out, _ = net(x, return_rgb=False, randomize_noise=False)
    return out  # type: ignore[no-any-return]


def ours(net: Any, x: torch.Tensor, *, winograd: bool) -> torch.Tensor:
    with torch.inference_mode():
        return GFPGANForward(net, winograd=winograd)(x)


@pytest.mark.parametrize("winograd", [pytest.param(True, marks=needs_nnpack), False])
def test_matches_the_original_forward_face_by_face(winograd: bool) -> None:
    net = narrow_gfpgan(seed=1, fill_zeros=True)
    x = faces(1)
    expected = original(net, x)
    got = ours(net, x, winograd=winograd)
    assert got.shape == expected.shape == (1, 3, 512, 512)
    assert expected.abs().max() > 0.5  # a live signal, not a saturated or dead network
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_a_batch_runs_grouped_and_matches_each_face() -> None:
    net = narrow_gfpgan(seed=2, fill_zeros=True)
    x = faces(2, seed=3)
    batched = ours(net, x, winograd=False)
    torch.testing.assert_close(batched, original(net, x), atol=ATOL, rtol=0)
    singles = torch.cat([ours(net, x[i : i + 1], winograd=False) for i in range(2)])
    torch.testing.assert_close(batched, singles, atol=ATOL, rtol=0)
    assert (batched[0] - batched[1]).abs().mean() > 1e-3  # two different faces stay different


@needs_nnpack
def test_full_v14_network_with_winograd() -> None:
    torch.manual_seed(0)  # the bench's and the suite's GFPGAN weights
    net = build_gfpgan_v14().eval()
    x = faces(1, seed=4)
    torch.testing.assert_close(ours(net, x, winograd=True), original(net, x), atol=ATOL, rtol=0)


def test_winograd_refused_without_nnpack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "_nnpack_available", lambda: False)
    with pytest.raises(ValueError, match="NNPACK"):
        GFPGANForward(narrow_gfpgan(seed=0, fill_zeros=True), winograd=True)


@needs_nnpack
def test_small_maps_stay_off_nnpack(monkeypatch: pytest.MonkeyPatch) -> None:
    sides: list[int] = []
    real = torch._nnpack_spatial_convolution

    def spy(x: torch.Tensor, *args: Any) -> torch.Tensor:
        sides.append(min(x.shape[-2:]))
        return real(x, *args)

    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", spy)
    ours(narrow_gfpgan(seed=0, fill_zeros=True), faces(1), winograd=True)
    assert sides and min(sides) >= WINOGRAD_MIN_SIDE
    assert max(sides) == 512  # the full-resolution layers do use it
