"""A first `docker compose up` with no step before it: weights fetched by one-shots, an LLM, a face, right ports.

Checked offline against the files (no docker engine here), and where a step runs our code (the fetchers'
`avatarchat download ...` and the gateway's settings) by running that code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy.stack import (
    COMPOSE,
    DOCKERFILES,
    FETCHERS,
    HOST_PORT_VARIABLES,
    MODEL_SERVICES,
    REPO,
    SETTINGS,
    compose,
    default_port,
    dockerignore_excludes,
    environment,
    instructions,
    interpolate,
    passed_through,
    ports,
    raw_environment,
    services,
    settings_class,
    variables,
)

from comps.core.settings import load_settings

HARDWARE = sorted(COMPOSE)
OURS = sorted(SETTINGS)
PROJECT_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
EVERY_COMPOSE_FILE = sorted((REPO / "compose").glob("*/compose*.yaml"))
# OPEA's set_env.sh (GenAIExamples AvatarChatbot/docker_compose/intel/cpu/xeon): host address and host ports.
OPEA_SET_ENV = {
    "MEGA_SERVICE_HOST_IP": "10.1.2.3",
    "MEGA_SERVICE_PORT": "8888",
    "WHISPER_SERVER_HOST_IP": "10.1.2.3",
    "WHISPER_SERVER_PORT": "7066",
    "SPEECHT5_SERVER_HOST_IP": "10.1.2.3",
    "SPEECHT5_SERVER_PORT": "7055",
    "LLM_SERVER_HOST_IP": "10.1.2.3",
    "LLM_SERVER_PORT": "3006",
    "ANIMATION_SERVICE_HOST_IP": "10.1.2.3",
    "ANIMATION_SERVICE_PORT": "3008",
}


def _default_set(hardware: str) -> dict[str, dict[str, Any]]:
    """The services a bare `docker compose up` starts: COMPOSE_PROFILES empty, no .env, no -f overlay."""
    return {name: s for name, s in compose(hardware)["services"].items() if not s.get("profiles")}


# The one-shot fetchers.


@pytest.mark.parametrize(("hardware", "service"), list(product(HARDWARE, [*MODEL_SERVICES, "vllm-service"])))
def test_every_model_service_waits_for_its_fetcher_to_exit_0(hardware: str, service: str) -> None:
    every = services(hardware)
    fetcher = every[FETCHERS[service]]
    assert every[service]["depends_on"][FETCHERS[service]] == {"condition": "service_completed_successfully"}
    assert fetcher["restart"] == "no" and "depends_on" not in fetcher and "ports" not in fetcher
    assert "runtime" not in fetcher  # fetching needs no Gaudi card
    # The service's image (built the same way, so `up` never tries to pull it), its weights volume.
    assert fetcher["image"] == every[service]["image"]
    assert fetcher.get("build") == every[service].get("build")
    weights = {v for v in every[service]["volumes"] if v.startswith(("models:", "llm-cache:"))}
    assert set(fetcher["volumes"]) == weights and len(weights) == 1


@pytest.mark.parametrize(("hardware", "service"), list(product(HARDWARE, MODEL_SERVICES)))
def test_a_fetcher_runs_avatarchat_download_with_its_services_environment_online(hardware: str, service: str) -> None:
    from cli.main import DOWNLOADS

    every = services(hardware)
    fetcher = every[FETCHERS[service]]
    online = {"AVATARCHAT_OFFLINE": "false", "HF_HUB_OFFLINE": "0"}
    assert raw_environment(fetcher) == {**raw_environment(every[service]), **online}
    assert passed_through(fetcher) == passed_through(every[service])
    shell, flag, command = fetcher["command"]
    assert (shell, flag) == ("sh", "-c")
    components = re.findall(r"avatarchat download (\S+)", command)
    assert components
    for component in components:
        backend = environment(every[service])["TTS_BACKEND"] if component == '"$$TTS_BACKEND"' else component
        assert backend in DOWNLOADS, component


@pytest.mark.parametrize("hardware", HARDWARE)
def test_the_vllm_fetcher_fills_vllms_cache_with_its_model(hardware: str) -> None:
    every = services(hardware)
    fetcher, vllm = environment(every["vllm-models"]), environment(every["vllm-service"])
    assert fetcher["HF_HUB_OFFLINE"] == "0" and vllm["HF_HUB_OFFLINE"] == "true"
    assert fetcher["HF_HOME"] == vllm["HF_HOME"] == "/data" and fetcher["LLM_MODEL_ID"] == vllm["LLM_MODEL_ID"]
    assert every["vllm-models"]["entrypoint"] == ["python3", "-c"]
    assert "snapshot_download(os.environ['LLM_MODEL_ID'])" in every["vllm-models"]["command"][0]


def _seed_xeon_cache(cache: Path) -> None:
    """What a first run of the Xeon fetchers leaves in the models volume (file contents do not matter)."""
    for relative in (
        "whisper/Systran--faster-whisper-small/model.bin",  # ASR_MODEL=small
        "wav2lip/wav2lip.pth",
        "wav2lip/wav2lip_gan.pth",
        "gfpgan/GFPGANv1.4.pth",
        "gfpgan/detection_Resnet50_Final.pth",
        "llm/Qwen--Qwen2.5-0.5B-Instruct/config.json",  # LIGHT_LLM_MODEL_ID
    ):
        (cache / relative).parent.mkdir(parents=True, exist_ok=True)
        (cache / relative).write_bytes(b"\0")


@pytest.mark.parametrize("service", MODEL_SERVICES)
def test_a_second_up_finds_the_weights_and_the_fetcher_exits_0_without_the_network(
    service: str, tmp_path: Path
) -> None:
    """The fetcher's own command, with its compose environment, against a filled cache and a dead proxy."""
    _seed_xeon_cache(tmp_path)
    fetcher = services("xeon")[FETCHERS[service]]
    dead = "http://127.0.0.1:9"  # the discard port: any download attempt fails at once
    env = {
        **environment(fetcher),
        "MODEL_CACHE_DIR": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        **{name: dead for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")},
        "no_proxy": "",
    }
    shell, flag, command = fetcher["command"]
    done = subprocess.run(
        [shell, flag, command.replace("$$", "$")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


# The LLM with no profile, no .env.


@pytest.mark.parametrize("hardware", HARDWARE)
def test_with_an_empty_environment_an_llm_runs_and_the_gateway_points_at_it(hardware: str) -> None:
    running = _default_set(hardware)
    assert set(running) == {*OURS, *(FETCHERS[s] for s in MODEL_SERVICES)}
    gateway = environment(running["gateway"])  # nothing set: every default
    host, port = gateway["GATEWAY_LLM_HOST"], int(gateway["GATEWAY_LLM_PORT"])
    serving = [
        name
        for name, service in running.items()
        if host == name or host in service.get("networks", {}).get("default", {}).get("aliases", [])
    ]
    assert serving == ["llm"]
    assert {container for _, container in ports(running["llm"])} == {port} == {default_port(settings_class("llm"))}
    assert running["gateway"]["depends_on"]["llm"]["condition"] == "service_healthy"
    # Every service the gateway waits for is in the default set, so its /ready can turn 200.
    assert {name for name, rule in running["gateway"]["depends_on"].items() if rule.get("required", True)} <= set(
        running
    )


def test_no_env_file_is_committed_beside_the_compose_files() -> None:
    """A committed .env would be what a bare `up` reads: the defaults live in the compose files instead."""
    for hardware in HARDWARE:
        assert not (COMPOSE[hardware].parent / ".env").exists()


# The default avatar.


@pytest.mark.parametrize("hardware", HARDWARE)
def test_no_face_is_required_the_image_ships_one(hardware: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from comps.animation.settings import DEFAULT_AVATAR, AnimationSettings

    animation = services(hardware)["animation"]
    assert "FACE" in passed_through(animation) and "FACE" not in raw_environment(animation)
    # The optional mount for your own faces defaults to a folder the repository holds.
    (mount,) = [v for v in animation["volumes"] if v.endswith(":/avatars:ro")]
    assert mount == "${AVATARS_DIR:-../avatars}:/avatars:ro"
    assert (COMPOSE[hardware].parent / "../avatars").resolve().is_dir()
    for name in list(os.environ):
        if name.upper() in {"FACE", "ANIMATION_FACE"}:
            monkeypatch.delenv(name)
    for name, value in environment(animation).items():
        monkeypatch.setenv(name, value)
    assert load_settings(AnimationSettings).face == DEFAULT_AVATAR and DEFAULT_AVATAR.is_file()
    # The image copies comps/animation, and the build context keeps the portrait.
    relative = str(DEFAULT_AVATAR.relative_to(REPO))
    assert not dockerignore_excludes(relative)
    dockerfile = REPO / "docker" / "animation" / ("Dockerfile.gaudi" if hardware == "gaudi" else "Dockerfile")
    assert any(i.keyword == "COPY" and i.arguments.startswith("comps/animation ") for i in instructions(dockerfile))


# OPEA's host-port variables.


def _values_outside_ports(service: dict[str, Any]) -> list[str]:
    found = [*raw_environment(service).values(), str(service.get("command", "")), str(service.get("image", ""))]
    found += [str(service.get("healthcheck", "")), str(service.get("volumes", "")), str(service.get("entrypoint", ""))]
    return found


@pytest.mark.parametrize("path", EVERY_COMPOSE_FILE, ids=lambda p: str(p.relative_to(REPO)))
def test_host_port_variables_appear_only_in_port_mappings(path: Path) -> None:
    every: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["services"]
    for name, service in every.items():
        for value in _values_outside_ports(service):
            assert not set(variables(value)) & set(HOST_PORT_VARIABLES.values()), (name, value)
            assert not re.search(r"_HOST_IP\b|MEGA_SERVICE_PORT", value), (name, value)
        for entry in service.get("ports", []):
            for variable in variables(entry):
                assert variable == HOST_PORT_VARIABLES[name], (name, entry)
                assert str(entry).endswith(f":{default_port(settings_class('llm' if 'llm' in name else name))}")


@pytest.mark.parametrize("hardware", HARDWARE)
def test_opeas_set_env_moves_the_published_ports_and_never_the_gateways_routes(
    hardware: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.settings import GatewaySettings

    moved = {**OPEA_SET_ENV, "LLM_SERVER_PORT": "4006", "ANIMATION_SERVICE_PORT": "4008", "WHISPER_SERVER_PORT": "4066"}
    every = services(hardware)
    assert ports(every["llm"], moved) == ports(every["vllm-service"], moved) == [(4006, 9000)]
    assert ports(every["animation"], moved) == [(4008, 9066)]
    assert ports(every["asr"], moved) == [(4066, 7066)]
    assert ports(every["tts"], moved) == [(7055, 7055)]
    # The gateway container's environment is the same whatever the shell holds.
    assert environment(every["gateway"], moved) == environment(every["gateway"])
    for name in list(os.environ):
        if name.upper().startswith("GATEWAY_") or name in OPEA_SET_ENV:
            monkeypatch.delenv(name)
    for name, value in environment(every["gateway"], moved).items():
        monkeypatch.setenv(name, value)
    s = load_settings(GatewaySettings)
    routes = {(s.asr_host, s.asr_port), (s.llm_host, s.llm_port), (s.tts_host, s.tts_port)}
    assert routes | {(s.animation_host, s.animation_port)} == {
        ("asr", 7066),
        ("llm-server", 9000),
        ("tts", 7055),
        ("animation", 9066),
    }
    settings = s
    assert settings.port == 8888


def test_outside_compose_the_gateway_still_takes_opeas_host_ip_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """The single-process mode and OPEA-style deployments set OPEA's names on the gateway itself: still honoured."""
    from gateway.settings import GatewaySettings

    for name in list(os.environ):
        if name.upper().startswith("GATEWAY_") or name in OPEA_SET_ENV:
            monkeypatch.delenv(name)
    for name, value in OPEA_SET_ENV.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(GatewaySettings)
    assert (settings.llm_host, settings.llm_port) == ("10.1.2.3", 3006)
    assert (settings.animation_host, settings.animation_port) == ("10.1.2.3", 3008)
    monkeypatch.setenv("GATEWAY_LLM_PORT", "9000")  # our name wins over OPEA's, as compose sets it
    assert load_settings(GatewaySettings).llm_port == 9000


# Pinned images.


def _compose_images() -> list[tuple[str, str]]:
    found = []
    for path in EVERY_COMPOSE_FILE:
        for name, service in yaml.safe_load(path.read_text(encoding="utf-8"))["services"].items():
            if "image" in service:
                found.append((f"{path.relative_to(REPO)}:{name}", interpolate(service["image"])))
    return found


def _tag(image: str) -> str | None:
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def test_every_compose_image_is_pinned_and_ours_carry_the_project_version() -> None:
    images = _compose_images()
    assert len(images) >= 20
    for where, image in images:
        assert _tag(image) not in (None, "", "latest"), (where, image)
        if image.startswith("avatarchat/"):
            assert _tag(image) == PROJECT_VERSION, (where, image)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_from_line_is_pinned(path: Path) -> None:
    found = instructions(path)
    arguments = {}
    for instruction in found:
        if instruction.keyword == "ARG" and instruction.stage == -1 and "=" in instruction.arguments:
            key, _, value = instruction.arguments.partition("=")
            arguments[key] = value
    stages: set[str] = set()
    for instruction in found:
        if instruction.keyword != "FROM":
            continue
        words = instruction.arguments.split()
        image = re.sub(r"\$\{(\w+)\}", lambda m: arguments[m[1]], words[0])
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2])
        if image in stages:
            continue
        assert _tag(image) not in (None, "", "latest"), (path, image)
        assert "${" not in image and "$" not in image, image


@pytest.mark.parametrize("path", sorted(p for p in DOCKERFILES if p.name == "Dockerfile.gaudi"), ids=str)
def test_gaudi_images_end_as_a_non_root_user(path: Path) -> None:
    found = instructions(path)
    users = [i.arguments for i in found if i.keyword == "USER"]
    assert users and users[-1] == "1000:1000", path
    after = found[max(n for n, i in enumerate(found) if i.keyword == "USER") :]
    assert not [i for i in after if i.keyword == "RUN"], path  # nothing runs as root after the switch
    runs = " ".join(i.arguments for i in found if i.keyword == "RUN")
    assert "install -d -o 1000 -g 1000 /models" in runs  # the volumes' mount points are the user's


# The new variables.


@pytest.mark.parametrize("hardware", HARDWARE)
def test_the_api_key_reaches_every_service_of_ours_and_cors_the_gateway_and_ui(hardware: str) -> None:
    every = services(hardware)
    for name in OURS:
        env = raw_environment(every[name])
        assert env["AVATARCHAT_API_KEY"] == "${AVATARCHAT_API_KEY:-}", name
        assert ("AVATARCHAT_CORS_ORIGINS" in env) == (name in ("gateway", "ui")), name
        if name in ("gateway", "ui"):
            assert env["AVATARCHAT_CORS_ORIGINS"] == "${AVATARCHAT_CORS_ORIGINS:-}"
    assert "AVATARCHAT_API_KEY" not in raw_environment(every["vllm-service"])  # not ours: it checks no key


@pytest.mark.parametrize("hardware", HARDWARE)
def test_the_gateway_gets_the_live_modes_deployment_settings(hardware: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.settings import GatewaySettings

    gateway = services(hardware)["gateway"]
    assert {"GATEWAY_LIVE_TURN_USERNAME", "GATEWAY_LIVE_TURN_CREDENTIAL"} <= passed_through(gateway)
    shell = {
        "GATEWAY_LIVE_MAX_SESSIONS": "5",
        "GATEWAY_LIVE_ICE_SERVERS": '["turn:turn.example.org:3478"]',
        "AVATARCHAT_API_KEY": "k3y",
        "AVATARCHAT_CORS_ORIGINS": "https://chat.example.org",
    }
    for name in list(os.environ):
        if name.upper().startswith(("GATEWAY_", "AVATARCHAT_")):
            monkeypatch.delenv(name)
    for name, value in environment(gateway, shell).items():
        monkeypatch.setenv(name, value)
    settings = load_settings(GatewaySettings)
    assert settings.live_max_sessions == 5 and settings.live_ice_servers == ["turn:turn.example.org:3478"]
    assert settings.live_turn_username is None and settings.live_turn_credential is None
    assert settings.service_api_key is not None and settings.service_api_key.get_secret_value() == "k3y"
    assert settings.cors_origins == ("https://chat.example.org",)
