"""The optional FP8 path (comps.core.quantization) and the INC configs shipped in compose/quantization/.

Intel Neural Compressor runs its FP8 flow on CPU in Q/DQ mode (`use_qdq`, power-of-two scales),
so the same prepare -> measure -> finalize -> convert sequence the Gaudi images run is exercised
here for real, on the real Wav2Lip network with the shipped config's allow/block lists.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from comps.core.quantization import (
    Fp8ConfigError,
    Fp8Unavailable,
    apply_fp8,
    finish_fp8_measurement,
    read_fp8_config,
)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "compose" / "quantization"
PAIRS = {"wav2lip": ("wav2lip_measure.json", "wav2lip_quant.json"), "llm": ("llm_measure.json", "llm_quant.json")}


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _cpu_variant(shipped: Path, tmp_path: Path) -> Path:
    """The shipped (HPU) config, changed only where INC's CPU path requires: Q/DQ ops, pow2 scales, a temp dir."""
    config = json.loads(shipped.read_text(encoding="utf-8"))
    config.update(use_qdq=True, dump_stats_path=str(tmp_path / "stats" / "measure"))
    if config["mode"] == "QUANTIZE":
        config["scale_method"] = "maxabs_pow2"  # hw-aligned scales exist only on Gaudi
    return _write(tmp_path / shipped.name, config)


def test_no_config_is_a_no_op_that_imports_nothing() -> None:
    probe = (
        "import sys, torch; from comps.core import quantization as q; m = torch.nn.Linear(2, 2); "
        "assert q.apply_fp8(m, None) is m; assert q.finish_fp8_measurement(m, None) == []; "
        "print(sorted(n for n in sys.modules if n.startswith('neural_compressor')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_config_without_inc_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _write(tmp_path / "q.json", {"mode": "MEASURE", "dump_stats_path": str(tmp_path / "measure")})
    # A None entry makes `import` raise ImportError, as on a CPU image without INC.
    monkeypatch.setitem(sys.modules, "neural_compressor", None)
    monkeypatch.setitem(sys.modules, "neural_compressor.torch", None)
    with pytest.raises(Fp8Unavailable) as caught:
        apply_fp8(torch.nn.Linear(2, 2), config)
    message = str(caught.value)
    assert str(config) in message and "neural-compressor-pt" in message and "unset the config" in message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "does not exist"),
        ("{not json", "not readable JSON"),
        (json.dumps({"mode": "AUTO", "dump_stats_path": "/m/measure"}), "mode"),
        (json.dumps({"mode": "QUANTIZE"}), "dump_stats_path"),
        (json.dumps({"mode": "MEASURE", "dump_stats_path": "relative/measure"}), "must be absolute"),
        (json.dumps({"mode": "MEASURE", "dump_stats_path": "/m", "fp8_config": "E3M4"}), "fp8_config"),
    ],
)
def test_unusable_configs_are_refused_naming_the_file(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "fp8.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(Fp8ConfigError, match=fragment) as caught:
        apply_fp8(torch.nn.Linear(2, 2), path)
    assert str(path) in str(caught.value)


def test_quantize_before_any_measurement_says_to_measure_first(tmp_path: Path) -> None:
    config = _write(tmp_path / "q.json", {"mode": "QUANTIZE", "dump_stats_path": str(tmp_path / "none" / "measure")})
    with pytest.raises(Fp8ConfigError, match="run once with the MEASURE config first"):
        apply_fp8(torch.nn.Linear(2, 2), config)


@pytest.mark.parametrize("model", sorted(PAIRS))
def test_shipped_configs_are_a_measure_quantize_pair_on_the_models_volume(model: str) -> None:
    import neural_compressor.torch.quantization as inc

    measure_file, quant_file = (CONFIGS / name for name in PAIRS[model])
    measure, quant = read_fp8_config(measure_file), read_fp8_config(quant_file)
    assert (measure.mode, quant.mode) == ("MEASURE", "QUANTIZE")
    assert measure.dump_stats_path == quant.dump_stats_path == f"/models/fp8/{model}/measure"
    assert (measure.allowlist, measure.blocklist) == (quant.allowlist, quant.blocklist)
    assert (quant.fp8_config, quant.hp_dtype, quant.use_qdq) == ("E4M3", "bf16", False)  # Gaudi-native FP8
    for path, parsed in ((measure_file, measure), (quant_file, quant)):
        inc_config = inc.FP8Config.from_json_file(str(path))  # INC itself accepts the file
        assert (inc_config.measure, inc_config.quantize) == (parsed.mode == "MEASURE", parsed.mode == "QUANTIZE")


class _Wav2LipShaped(torch.nn.Module):
    """Wav2Lip's module names and block types with tiny channels (the real network is ~2 s a frame on CPU).

    `test_wav2lip_config_names_exist_in_the_real_network` ties these names to comps.animation.
    """

    def __init__(self) -> None:
        from comps.animation.wav2lip.network import ConvBlock, TransposeBlock

        super().__init__()

        def conv(cin: int) -> ConvBlock:
            return ConvBlock(cin, 8, kernel_size=3, padding=1)

        self.face_encoder_blocks = torch.nn.ModuleList([torch.nn.Sequential(conv(6)), torch.nn.Sequential(conv(8))])
        self.audio_encoder = torch.nn.Sequential(conv(1), conv(8))
        self.face_decoder_blocks = torch.nn.ModuleList(
            [
                torch.nn.Sequential(conv(8)),
                torch.nn.Sequential(TransposeBlock(8, 8, kernel_size=3, stride=1, padding=1)),
            ]
        )
        self.output_block = torch.nn.Sequential(conv(8), torch.nn.Conv2d(8, 3, 1), torch.nn.Sigmoid())

    def forward(self, mel: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        x = self.audio_encoder(mel)
        for block in self.face_encoder_blocks:
            faces = block(faces)
        x = x + faces
        for block in self.face_decoder_blocks:
            x = block(x)
        return self.output_block(x)


def _shaped() -> torch.nn.Module:
    torch.manual_seed(0)
    return _Wav2LipShaped().eval().to(torch.bfloat16)


def test_wav2lip_config_names_exist_in_the_real_network() -> None:
    from comps.animation.wav2lip.network import Wav2Lip

    config = read_fp8_config(CONFIGS / "wav2lip_quant.json")
    real = dict(Wav2Lip().named_modules())
    for name in config.blocklist.names:
        assert name in real, f"{name} is not a module of Wav2Lip"
    shaped = dict(_Wav2LipShaped().named_modules())
    assert {type(m).__name__ for m in real.values()} >= set(config.allowlist.types)
    assert set(config.blocklist.names) <= set(shaped)
    for name, module in shaped.items():
        if name.endswith("conv_block.0"):
            assert type(real[name]) is type(module), name


def test_wav2lip_measure_then_quantize_with_the_shipped_lists(tmp_path: Path) -> None:
    from neural_compressor.torch.algorithms.fp8_quant._quant_common.helper_modules import PatchedConv2d

    measure_config = _cpu_variant(CONFIGS / "wav2lip_measure.json", tmp_path)
    quant_config = _cpu_variant(CONFIGS / "wav2lip_quant.json", tmp_path)
    generator = torch.Generator().manual_seed(1)
    mel = torch.randn(4, 1, 16, 16, generator=generator).to(torch.bfloat16)
    faces = torch.rand(4, 6, 16, 16, generator=generator).to(torch.bfloat16)

    measuring = apply_fp8(_shaped(), measure_config)
    with torch.no_grad():
        reference = measuring(mel, faces).float()
    written = finish_fp8_measurement(measuring, measure_config)
    assert written and all(path.parent == tmp_path / "stats" for path in written)
    assert finish_fp8_measurement(measuring, quant_config) == []  # only MEASURE writes statistics

    quantized = apply_fp8(_shaped(), quant_config)
    assert isinstance(quantized.face_encoder_blocks[1][0].conv_block[0], PatchedConv2d)
    assert isinstance(quantized.audio_encoder[1].conv_block[0], PatchedConv2d)
    # Blocked by name: the first face and audio convolutions and the output head stay in bf16.
    assert type(quantized.face_encoder_blocks[0][0].conv_block[0]) is torch.nn.Conv2d
    assert type(quantized.audio_encoder[0].conv_block[0]) is torch.nn.Conv2d
    assert type(quantized.output_block[0].conv_block[0]) is torch.nn.Conv2d
    assert type(quantized.output_block[1]) is torch.nn.Conv2d
    # Not in the allowlist (and not an FP8 op on Gaudi): transposed convolutions stay in bf16.
    assert isinstance(quantized.face_decoder_blocks[0][0].conv_block[0], PatchedConv2d)
    assert type(quantized.face_decoder_blocks[1][0].conv_block[0]) is torch.nn.ConvTranspose2d
    with torch.no_grad():
        out = quantized(mel, faces).float()
    assert out.shape == reference.shape == (4, 3, 16, 16)
    # E4M3 keeps ~2 significant digits: the sigmoid outputs move, but only a little.
    assert not torch.equal(out, reference)
    assert (out - reference).abs().max() < 0.05


def test_llm_config_keeps_lm_head_in_bf16(tmp_path: Path) -> None:
    from neural_compressor.torch.algorithms.fp8_quant._quant_common.helper_modules import PatchedLinear
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32,
    )
    tokens = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(2))

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return LlamaForCausalLM(tiny).eval().to(torch.bfloat16)

    measure_config = _cpu_variant(CONFIGS / "llm_measure.json", tmp_path)
    measuring = apply_fp8(model(), measure_config)
    with torch.no_grad():
        reference = measuring(tokens).logits.float()
    assert finish_fp8_measurement(measuring, measure_config)
    quantized = apply_fp8(model(), _cpu_variant(CONFIGS / "llm_quant.json", tmp_path))
    assert isinstance(quantized.model.layers[0].mlp.down_proj, PatchedLinear)
    assert type(quantized.lm_head) is torch.nn.Linear
    with torch.no_grad():
        logits = quantized(tokens).logits.float()
    assert (logits.argmax(-1) == reference.argmax(-1)).float().mean() > 0.8


@pytest.mark.anyio
async def test_animation_service_measures_the_network_it_runs_and_writes_at_shutdown(
    tmp_path: Path, shared_dir: Path
) -> None:
    from support.animation_http import serve
    from support.models import speak
    from support.wav2lip_weights import write_checkpoint

    from comps.animation.app import create_app
    from comps.animation.settings import AnimationSettings
    from comps.core.audio import encode_wav

    measure = _cpu_variant(CONFIGS / "wav2lip_measure.json", tmp_path)
    write_checkpoint(tmp_path / "weights" / "wav2lip.pth")
    settings = AnimationSettings(
        device="cpu",
        checkpoint_dir=tmp_path / "weights",
        model_cache_dir=tmp_path / "cache",
        offline=True,
        face=shared_dir / "assets" / "avatar_astronaut.png",
        avatar_dir=tmp_path / "avatars",
        output_dir=tmp_path / "videos",
        fp8_config=measure,
    )  # type: ignore[call-arg]
    speech = base64.b64encode(encode_wav(speak("Measure me.")[:8000], 16_000)).decode()
    app = create_app(settings)
    async with serve(app) as client:
        r = await client.post("/v1/animation", json={"byte_str": speech})
        assert r.status_code == 200, r.text
        assert not list((tmp_path / "stats").glob("*"))  # written when the service stops
    written = sorted(p.name for p in (tmp_path / "stats").glob("measure_hooks_maxabs*.json"))
    assert written == ["measure_hooks_maxabs.json", "measure_hooks_maxabs_mod_list.json"]
    nodes = json.loads((tmp_path / "stats" / "measure_hooks_maxabs.json").read_text())["Nodes"]
    # The network that rendered was measured: its convolutions saw real activations (non-zero maxima).
    measured = nodes["face_encoder_blocks.1.0.conv_block.0"]
    assert measured["inputs"][0][0][0] > 0 and measured["params"]["weight"][0][0] > 0
    assert "face_encoder_blocks.0.0.conv_block.0" not in nodes  # blocklisted, as shipped
