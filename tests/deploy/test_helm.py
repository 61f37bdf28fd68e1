"""helm/avatarchat, checked without a cluster: rendered and linted by Helm's library, validated against Kubernetes.

Helm's own Go library (the helm-python-sdk wheel) renders the chart for the Xeon and Gaudi values and lints it;
every rendered object is validated against the Kubernetes JSON schemas shipped by kubernetes-validate. The compose
files are the reference: the chart must pass the same variable names, ports, images and download steps.
"""

from __future__ import annotations

import re
import shlex
import shutil
from functools import cache
from itertools import product
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from deploy.stack import (  # type: ignore[import-not-found]
    REPO,
    environment,
    interpolate,
    passed_through,
    ports,
    raw_environment,
    services,
)

CHART = REPO / "helm" / "avatarchat"
GAUDI_VALUES = CHART / "values-gaudi.yaml"
RELEASE = "avatarchat"
NAMESPACE = "avatarchat"
# The newest Kubernetes minor both kubernetes-validate's schemas and current managed clusters have.
KUBE_VERSION = "1.35.0"
HARDWARE = ("xeon", "gaudi")
ENGINES = ("vllm", "avatarchat")
COMPONENTS = ("asr", "tts", "animation", "llm", "gateway", "ui")
MODEL_COMPONENTS = ("asr", "tts", "animation", "llm")
HPU = "habana.ai/gaudi"
# The compose service each component's ConfigMap mirrors (the LLM: the one of the matching profile).
COMPOSE_SERVICE = {"asr": "asr", "tts": "tts", "animation": "animation", "gateway": "gateway", "ui": "ui"}
LLM_COMPOSE_SERVICE = {"vllm": "vllm-service", "avatarchat": "llm"}
# Compose variables the chart passes another way: the keys from the Secret; the card from the device plugin.
NOT_IN_CONFIGMAP = {"HF_TOKEN", "AVATARCHAT_API_KEY", "HABANA_VISIBLE_DEVICES"}
SECRET_KEYS = {"HF_TOKEN", "LLM_API_KEY", "AVATARCHAT_API_KEY", "GATEWAY_LIVE_TURN_CREDENTIAL"}
# Values that are addresses, which differ by design: compose DNS names vs the release's Service names.
ROUTES = ("ASR", "LLM", "TTS", "ANIMATION")
ADDRESSES = {"no_proxy", "UI_GATEWAY_URL", *(f"GATEWAY_{route}_HOST" for route in ROUTES)}

Manifest = dict[str, Any]


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _user_values(hardware: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """What `helm install -f values-gaudi.yaml --set ...` passes on top of the chart's values.yaml."""
    values = helm.values_from_yaml(GAUDI_VALUES.read_text(encoding="utf-8")) if hardware == "gaudi" else {}
    return _deep_merge(values, overrides or {})


def render(hardware: str, overrides: dict[str, Any] | None = None) -> list[Manifest]:
    """Every object the chart renders for a hardware's values plus `overrides` (NOTES.txt left out)."""
    with helm.Chart.load(CHART) as chart:
        files = chart.render(_user_values(hardware, overrides), name=RELEASE, namespace=NAMESPACE)
    found: list[Manifest] = []
    for path, text in sorted(files.items()):
        if path.endswith(".yaml"):
            found.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return found


@cache
def rendered(hardware: str, engine: str = "vllm") -> tuple[Manifest, ...]:
    """The default render of a hardware with one LLM engine (read-only by convention: tests copy before changing)."""
    return tuple(render(hardware, {"llm": {"engine": engine}}))


def of_kind(manifests: tuple[Manifest, ...] | list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def name(component: str) -> str:
    return f"{RELEASE}-{component}"


def pod_specs(manifests: tuple[Manifest, ...] | list[Manifest]) -> dict[str, dict[str, Any]]:
    """The pod spec of every Deployment and Job, by object name."""
    return {
        m["metadata"]["name"]: m["spec"]["template"]["spec"] for m in manifests if m["kind"] in ("Deployment", "Job")
    }


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """A pod's init containers and containers."""
    found: list[dict[str, Any]] = [*pod.get("initContainers", []), *pod["containers"]]
    return found


def main_container(manifests: tuple[Manifest, ...] | list[Manifest], component: str) -> dict[str, Any]:
    (container,) = of_kind(manifests, "Deployment")[name(component)]["spec"]["template"]["spec"]["containers"]
    assert container["name"] == component
    found: dict[str, Any] = container
    return found


def config(manifests: tuple[Manifest, ...] | list[Manifest], component: str) -> dict[str, str]:
    data: dict[str, str] = of_kind(manifests, "ConfigMap")[name(component)]["data"]
    return data


def compose_service(hardware: str, component: str, engine: str) -> dict[str, Any]:
    service = LLM_COMPOSE_SERVICE[engine] if component == "llm" else COMPOSE_SERVICE[component]
    found: dict[str, Any] = services(hardware)[service]
    return found


def chart_metadata() -> dict[str, Any]:
    metadata: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    return metadata


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None when it has none; a digest counts as a tag)."""
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def seconds(duration: str) -> int:
    """A compose duration (`10m`, `90s`, `1h`) in seconds."""
    total = 0
    for amount, unit in re.findall(r"(\d+)([hms])", duration):
        total += int(amount) * {"h": 3600, "m": 60, "s": 1}[unit]
    assert total, duration
    return total


_SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value: object) -> float:
    """A Kubernetes quantity (`500m`, `2`, `512Mi`) as a number."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, value
    number, suffix = match.groups()
    return float(number) * (_SUFFIX[suffix] if suffix else 1)


def options(arguments: list[str]) -> dict[str, str | None]:
    """Command-line arguments as {option: value}; a flag alone maps to None."""
    found: dict[str, str | None] = {}
    for i, word in enumerate(arguments):
        if word.startswith("--"):
            following = arguments[i + 1] if i + 1 < len(arguments) else None
            found[word] = None if following is None or following.startswith("--") else following
    return found


VARIANTS = list(product(HARDWARE, ENGINES))


# Helm's library: lint and values schema.


@pytest.mark.parametrize("hardware", HARDWARE)
def test_the_chart_lints_clean_in_strict_mode(hardware: str) -> None:
    report = helm.lint(CHART, _user_values(hardware), strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    serious = [m for m in report["messages"] if m["severity"] >= 2]  # 2 warning, 3 error
    assert serious == []


def test_lint_reports_a_broken_template(tmp_path: Path) -> None:
    copy = tmp_path / "avatarchat"
    shutil.copytree(CHART, copy)
    (copy / "templates" / "ui.yaml").write_text('{{ include "avatarchat.nothing" . }}\n', encoding="utf-8")
    report = helm.lint(copy, strict=True)
    assert report["errors"] or any(m["severity"] == 3 for m in report["messages"])


@pytest.mark.parametrize(
    "overrides",
    [
        {"image": {"tag": "latest"}},
        {"asr": {"image": {"tag": "latest"}}},
        {"llm": {"vllm": {"image": {"tag": "latest"}}}},
        {"llm": {"vllm": {"image": {"tag": ""}}}},
        {"llm": {"engine": "tgi"}},
        {"persistence": {"media": {"accessModes": ["ReadWriteSometimes"]}}},
    ],
)
def test_the_values_schema_refuses_floating_tags_and_unknown_choices(overrides: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        render("xeon", overrides)


# Kubernetes schemas.


@pytest.mark.parametrize(("hardware", "engine"), VARIANTS)
def test_every_rendered_object_validates_against_the_kubernetes_schema(hardware: str, engine: str) -> None:
    manifests = rendered(hardware, engine)
    kinds = sorted(m["kind"] for m in manifests)
    expected = {"Deployment": 6, "Service": 6, "ConfigMap": 6, "PersistentVolumeClaim": 2, "Job": 1}
    expected |= {"HorizontalPodAutoscaler": 2, "Secret": 1}
    assert kinds == sorted(kind for kind, count in expected.items() for _ in range(count))
    for manifest in manifests:
        # strict: unknown fields are errors too, not only wrong types.
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def test_the_schema_validation_catches_a_broken_object() -> None:
    deployment = yaml.safe_load(yaml.safe_dump(of_kind(rendered("xeon"), "Deployment")[name("asr")]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["porte"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)
    deployment = yaml.safe_load(yaml.safe_dump(of_kind(rendered("xeon"), "Deployment")[name("asr")]))
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "7066"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


# Components, Services, ports.


@pytest.mark.parametrize(("hardware", "engine"), VARIANTS)
def test_each_component_has_a_deployment_and_a_service_on_its_compose_port(hardware: str, engine: str) -> None:
    manifests = rendered(hardware, engine)
    deployments, svcs = of_kind(manifests, "Deployment"), of_kind(manifests, "Service")
    assert set(deployments) == set(svcs) == {name(c) for c in COMPONENTS}
    for component in COMPONENTS:
        pod = deployments[name(component)]["spec"]["template"]
        service = svcs[name(component)]["spec"]
        assert service["selector"].items() <= pod["metadata"]["labels"].items()
        assert deployments[name(component)]["spec"]["selector"]["matchLabels"] == service["selector"]
        # No other component's pods match the selector.
        others = [d for n, d in deployments.items() if n != name(component)]
        assert not any(
            service["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in others
        )
        (port,) = service["ports"]
        (container_port,) = main_container(manifests, component)["ports"]
        assert port["targetPort"] == container_port["name"] == "http"
        (compose_port,) = {inside for _, inside in ports(compose_service(hardware, component, engine))}
        assert port["port"] == container_port["containerPort"] == compose_port, component


@pytest.mark.parametrize(("hardware", "engine"), VARIANTS)
def test_the_gateway_and_ui_reach_the_services_by_their_kubernetes_names(hardware: str, engine: str) -> None:
    manifests = rendered(hardware, engine)
    svcs = of_kind(manifests, "Service")
    gateway = config(manifests, "gateway")
    for prefix, component in {"ASR": "asr", "LLM": "llm", "TTS": "tts", "ANIMATION": "animation"}.items():
        target = svcs[gateway[f"GATEWAY_{prefix}_HOST"]]
        assert target["metadata"]["name"] == name(component)
        assert int(gateway[f"GATEWAY_{prefix}_PORT"]) == target["spec"]["ports"][0]["port"]
    gateway_port = svcs[name("gateway")]["spec"]["ports"][0]["port"]
    assert config(manifests, "ui")["UI_GATEWAY_URL"] == f"http://{name('gateway')}:{gateway_port}"
    for component in COMPONENTS:
        assert set(config(manifests, component)["no_proxy"].split(",")) >= set(svcs)


# The ConfigMaps carry compose's variable names.


@pytest.mark.parametrize(("hardware", "engine", "component"), list(product(HARDWARE, ENGINES, COMPONENTS)))
def test_each_configmap_has_the_variable_names_and_defaults_of_its_compose_service(
    hardware: str, engine: str, component: str
) -> None:
    manifests = rendered(hardware, engine)
    compose = compose_service(hardware, component, engine)
    data = config(manifests, component)
    assert set(data) == set(raw_environment(compose)) - NOT_IN_CONFIGMAP
    defaults = environment(compose)
    differing = {key for key in set(data) - ADDRESSES if data[key] != defaults[key]}
    assert not differing, {key: (data[key], defaults[key]) for key in differing}
    # Every pod of the component reads it, plus the keys from the Secret where compose passes them.
    container = main_container(manifests, component)
    assert container["envFrom"] == [{"configMapRef": {"name": name(component)}}]
    from_secret = {e["name"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    for key in ("HF_TOKEN", "AVATARCHAT_API_KEY"):
        assert (key in from_secret) == (key in raw_environment(compose)), key
    assert ("GATEWAY_LIVE_TURN_CREDENTIAL" in from_secret) == (
        "GATEWAY_LIVE_TURN_CREDENTIAL" in passed_through(compose)
    )


def test_the_configmaps_hold_only_strings_and_no_api_key() -> None:
    for hardware, engine in VARIANTS:
        for cm in of_kind(rendered(hardware, engine), "ConfigMap").values():
            assert all(isinstance(value, str) for value in cm["data"].values()), cm["metadata"]["name"]
            assert not {"HUGGINGFACEHUB_API_TOKEN", *SECRET_KEYS} & set(cm["data"])


def test_the_secret_holds_the_api_keys_and_the_containers_read_them() -> None:
    keys = {"hfToken": "hf_x", "llmApiKey": "sk", "apiKey": "k3y", "turnCredential": "turn-pw"}
    manifests = render("xeon", {"llm": {"engine": "avatarchat"}, "secret": keys})
    (secret,) = of_kind(manifests, "Secret").values()
    assert set(secret["data"]) == SECRET_KEYS
    read = {
        component: {e["name"]: e["valueFrom"]["secretKeyRef"] for e in main_container(manifests, component)["env"]}
        for component in COMPONENTS
    }
    ref = {"name": secret["metadata"]["name"], "optional": True}
    assert read["llm"]["LLM_API_KEY"] == {**ref, "key": "LLM_API_KEY"}
    for component in COMPONENTS:  # every component of ours checks the key; the gateway and UI send it on
        assert read[component]["AVATARCHAT_API_KEY"] == {**ref, "key": "AVATARCHAT_API_KEY"}, component
    assert read["gateway"]["GATEWAY_LIVE_TURN_CREDENTIAL"] == {**ref, "key": "GATEWAY_LIVE_TURN_CREDENTIAL"}
    assert [c for c in COMPONENTS if "GATEWAY_LIVE_TURN_CREDENTIAL" in read[c]] == ["gateway"]
    vllm = {e["name"] for e in main_container(rendered("xeon", "vllm"), "llm")["env"]}
    assert vllm == {"HF_TOKEN"}  # vLLM is not ours: it checks no key
    assert of_kind(rendered("xeon"), "Secret")[f"{RELEASE}-secrets"]["data"] == {}  # empty keys are left out
    existing = render("xeon", {"secret": {"existingSecret": "team-keys"}})
    assert of_kind(existing, "Secret") == {}
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in main_container(existing, "asr")["env"]}
    assert refs == {"team-keys"}


def test_the_live_modes_settings_reach_the_gateway() -> None:
    gateway = config(rendered("xeon"), "gateway")
    assert (gateway["GATEWAY_LIVE_MAX_SESSIONS"], gateway["GATEWAY_LIVE_ICE_SERVERS"]) == ("2", "[]")
    assert "GATEWAY_LIVE_TURN_USERNAME" not in gateway  # unset, as compose leaves it
    live = {"GATEWAY_LIVE_ICE_SERVERS": '["turn:turn.example.org:3478"]'}
    turn = render("xeon", {"gateway": {"env": live, "live": {"turnUsername": "alice"}}})
    assert config(turn, "gateway")["GATEWAY_LIVE_TURN_USERNAME"] == "alice"
    assert config(turn, "gateway")["GATEWAY_LIVE_ICE_SERVERS"] == live["GATEWAY_LIVE_ICE_SERVERS"]
    for component in ("gateway", "ui"):
        assert config(rendered("xeon"), component)["AVATARCHAT_CORS_ORIGINS"] == ""


def test_the_default_avatar_is_the_images_unless_a_configmap_is_named() -> None:
    manifests = rendered("xeon")  # nothing to create first: the image ships a face
    assert "FACE" not in config(manifests, "animation")
    pod = of_kind(manifests, "Deployment")[name("animation")]["spec"]["template"]["spec"]
    assert "avatars" not in {v["name"] for v in pod["volumes"]}
    own = render("xeon", {"animation": {"avatars": {"configMap": "avatarchat-avatars"}}})
    pod = of_kind(own, "Deployment")[name("animation")]["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["avatars"] == {"name": "avatars", "mountPath": "/avatars", "readOnly": True}
    assert config(own, "animation")["FACE"].startswith("/avatars/")


# Probes, resources, security.


@pytest.mark.parametrize(("hardware", "engine"), VARIANTS)
def test_every_pod_container_has_readiness_liveness_and_a_startup_probe_as_long_as_compose_waits(
    hardware: str, engine: str
) -> None:
    manifests = rendered(hardware, engine)
    for component in COMPONENTS:
        container = main_container(manifests, component)
        ready = "/health" if component == "llm" and engine == "vllm" else "/ready"  # vLLM has no /ready
        assert container["readinessProbe"]["httpGet"] == {"path": ready, "port": "http"}, component
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}, component
        startup = container["startupProbe"]
        assert startup["httpGet"] == {"path": "/health", "port": "http"}, component
        allowed = startup["periodSeconds"] * startup["failureThreshold"]
        start_period = seconds(compose_service(hardware, component, engine)["healthcheck"]["start_period"])
        assert allowed >= start_period, (component, allowed, start_period)
        if component in MODEL_COMPONENTS:
            assert allowed >= 10 * 60, component  # model loads take minutes


@pytest.mark.parametrize(("hardware", "engine"), VARIANTS)
def test_every_container_has_cpu_and_memory_requests_within_limits(hardware: str, engine: str) -> None:
    for pod_name, pod in pod_specs(rendered(hardware, engine)).items():
        for container in containers(pod):
            where = f"{pod_name}/{container['name']}"
            requests, limits = container["resources"]["requests"], container["resources"]["limits"]
            for resource in ("cpu", "memory"):
                assert quantity(requests[resource]) <= quantity(limits[resource]), (where, resource)


def _hpus(pod: dict[str, Any]) -> int:
    count = 0
    for container in containers(pod):
        resources = container["resources"]
        limit = int(resources["limits"].get(HPU, 0))
        assert int(resources["requests"].get(HPU, limit)) == limit, container["name"]
        count += limit
    return count


@pytest.mark.parametrize("engine", ENGINES)
def test_gaudi_gives_every_model_pod_one_card_and_no_other_pod_any(engine: str) -> None:
    for pod_name, pod in pod_specs(rendered("gaudi", engine)).items():
        model = pod_name in {name(c) for c in MODEL_COMPONENTS}
        assert _hpus(pod) == (1 if model else 0), pod_name
        if model:
            (container,) = [c for c in containers(pod) if HPU in c["resources"]["limits"]]
            assert container["name"] == pod_name.removeprefix(f"{RELEASE}-")  # the card is the service's


@pytest.mark.parametrize("engine", ENGINES)
def test_xeon_asks_for_no_accelerator(engine: str) -> None:
    for pod_name, pod in pod_specs(rendered("xeon", engine)).items():
        assert _hpus(pod) == 0, pod_name
    assert HPU not in yaml.safe_dump(list(rendered("xeon", engine)))


@pytest.mark.parametrize(("hardware", "engine"), VARIANTS)
def test_every_container_runs_as_non_root(hardware: str, engine: str) -> None:
    # Every image of ours runs as uid 1000, the Gaudi ones too (docker/*/Dockerfile.gaudi end with USER 1000:1000).
    for pod_name, pod in pod_specs(rendered(hardware, engine)).items():
        for container in containers(pod):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, (pod_name, container["name"])
            non_root = security.get("runAsNonRoot", pod["securityContext"].get("runAsNonRoot"))
            user = security.get("runAsUser", pod["securityContext"].get("runAsUser"))
            assert non_root is True and user == 1000, (pod_name, container["name"])
            # Gaudi's model pods keep compose's cap_add SYS_NICE; nothing else is added.
            added = ["SYS_NICE"] if pod_name in {name(c) for c in MODEL_COMPONENTS} and hardware == "gaudi" else None
            expected = {"drop": ["ALL"], **({"add": added} if added else {})}
            if not (pod_name.startswith(f"{RELEASE}-download-") and hardware == "gaudi"):
                assert security["capabilities"] == expected, (pod_name, container["name"])


# Images.


def test_image_tag_reads_references_like_a_registry() -> None:
    assert image_tag("opea/vllm:1.2") == "1.2"
    assert image_tag("registry.local:5000/avatarchat/asr") is None
    assert image_tag("busybox") is None
    assert image_tag("busybox@sha256:" + "0" * 64) == "sha256:" + "0" * 64


@pytest.mark.parametrize(("hardware", "engine"), VARIANTS)
def test_every_image_is_pinned_and_is_the_one_compose_runs(hardware: str, engine: str) -> None:
    manifests = rendered(hardware, engine)
    for pod_name, pod in pod_specs(manifests).items():
        for container in containers(pod):
            tag = image_tag(container["image"])
            assert tag and tag != "latest", (pod_name, container["name"], container["image"])
    app_version = chart_metadata()["appVersion"]
    for component in COMPONENTS:
        image = main_container(manifests, component)["image"]
        compose_image = interpolate(compose_service(hardware, component, engine)["image"])
        repository = compose_image.rsplit(":", 1)[0]  # compose's default, e.g. avatarchat/asr-gaudi:latest
        assert image.rsplit(":", 1)[0] == repository, component
        if not (component == "llm" and engine == "vllm"):
            assert image_tag(image) == app_version, component


# The LLM.


@pytest.mark.parametrize("hardware", HARDWARE)
def test_vllm_serves_the_compose_model_with_prefix_caching(hardware: str) -> None:
    manifests = rendered(hardware, "vllm")
    container = main_container(manifests, "llm")
    ours = options(container["args"])
    compose = options(shlex.split(interpolate(services(hardware)["vllm-service"]["command"])))
    assert compose.items() <= ours.items()  # the same model, host, port, context and (Gaudi) block size
    assert ours["--model"] == config(manifests, "llm")["LLM_MODEL_ID"]
    assert "--enable-prefix-caching" in ours  # the fixed system prompt's KV cache is computed once
    off = render(hardware, {"llm": {"vllm": {"prefixCaching": False}}})
    assert "--enable-prefix-caching" not in main_container(off, "llm")["args"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/data"]["subPath"] == "llm-cache"  # compose's llm-cache volume at HF_HOME
    assert mounts["/dev/shm"]["name"] == "shm"


@pytest.mark.parametrize("hardware", HARDWARE)
def test_the_light_engine_runs_our_llm_service_instead_of_vllm(hardware: str) -> None:
    manifests = rendered(hardware, "avatarchat")
    container = main_container(manifests, "llm")
    assert "args" not in container and "command" not in container  # the image's `avatarchat serve llm`
    images = [c["image"] for pod in pod_specs(manifests).values() for c in containers(pod)]
    assert not [image for image in images if image.startswith("opea/")]


# Storage, weights download.


@pytest.mark.parametrize(("hardware", "engine"), VARIANTS)
def test_volumes_media_store_is_read_write_many_and_mounted_by_animation_and_gateway(
    hardware: str, engine: str
) -> None:
    manifests = rendered(hardware, engine)
    claims = of_kind(manifests, "PersistentVolumeClaim")
    assert claims[name("media")]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claims[name("models")]["spec"]["accessModes"] == ["ReadWriteMany"]  # every model pod, on any node
    for claim in claims.values():
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    users: dict[str, set[str]] = {}
    for pod_name, pod in pod_specs(manifests).items():
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                users.setdefault(volume["persistentVolumeClaim"]["claimName"], set()).add(pod_name)
    assert users[name("media")] == {name("animation"), name("gateway")}
    job = next(n for n in pod_specs(manifests) if n.startswith(f"{RELEASE}-download-"))
    assert users[name("models")] == {name(c) for c in MODEL_COMPONENTS} | {job}
    mounts = {m["name"]: m for m in main_container(manifests, "animation")["volumeMounts"]}
    data = config(manifests, "animation")
    assert mounts["media"]["mountPath"] == "/var/lib/avatarchat" and mounts["media"]["readOnly"] is False
    for folder in ("ANIMATION_AVATAR_DIR", "ANIMATION_OUTPUT_DIR"):
        assert data[folder].startswith(mounts["media"]["mountPath"] + "/")
    gateway = {m["name"]: m for m in main_container(manifests, "gateway")["volumeMounts"]}
    assert gateway["media"]["readOnly"] is True


def test_existing_claims_replace_the_charts_own() -> None:
    manifests = render("xeon", {"persistence": {"models": {"existingClaim": "w"}, "media": {"existingClaim": "m"}}})
    assert of_kind(manifests, "PersistentVolumeClaim") == {}
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for pod in pod_specs(manifests).values()
        for v in pod.get("volumes", [])
        if "persistentVolumeClaim" in v
    }
    assert claims == {"w", "m"}


def _download_steps() -> dict[str, str]:
    """compose/download.sh's `fetch <service> '<command>'` lines, whitespace folded."""
    script = (REPO / "compose" / "download.sh").read_text(encoding="utf-8")
    return {service: " ".join(command.split()) for service, command in re.findall(r"fetch (\w+) '([^']*)'", script)}


@pytest.mark.parametrize(("hardware", "engine"), VARIANTS)
def test_the_download_job_runs_compose_download_steps_in_each_components_image(hardware: str, engine: str) -> None:
    from cli.main import DOWNLOADS

    manifests = rendered(hardware, engine)
    (job,) = of_kind(manifests, "Job").values()
    pod = job["spec"]["template"]["spec"]
    steps = {c["name"]: c for c in pod["initContainers"] if c["name"] != "prepare"}
    expected = _download_steps()
    llm_step = "llm" if engine == "avatarchat" else None
    assert set(steps) == {"asr", "tts", "animation", "llm"}
    for component, step in steps.items():
        assert step["image"] == main_container(manifests, component)["image"], component
        assert step["envFrom"] == [{"configMapRef": {"name": name(component)}}]
        env = {e["name"]: e.get("value") for e in step["env"]}
        assert env["AVATARCHAT_OFFLINE"] == "false" and env["HF_HUB_OFFLINE"] == "0"  # online for this run only
        assert _hpus({"containers": [step]}) == 0  # fetching needs no card
        if component == "llm" and llm_step is None:  # compose.vllm.yaml's vllm-models, vLLM's image
            fetcher = services(hardware)["vllm-models"]
            assert step["command"] == [*fetcher["entrypoint"], *fetcher["command"]]
            continue
        assert step["command"][:2] == ["sh", "-c"]
        assert " ".join(step["command"][2].split()) == expected[component], component
        for fetched in re.findall(r"avatarchat download (\S+)", step["command"][2]):
            backend = config(manifests, component).get("TTS_BACKEND") if fetched == '"$TTS_BACKEND"' else fetched
            assert backend in DOWNLOADS, fetched


@pytest.mark.parametrize(("hardware", "engine"), VARIANTS)
def test_model_pods_wait_for_the_marker_the_download_job_writes(hardware: str, engine: str) -> None:
    manifests = rendered(hardware, engine)
    (job,) = of_kind(manifests, "Job").values()
    (done,) = job["spec"]["template"]["spec"]["containers"]
    marker = done["command"][-1].removeprefix("touch ")
    assert marker.startswith("/models/") and job["metadata"]["name"].rsplit("-", 1)[1] in marker
    for component in COMPONENTS:
        pod = of_kind(manifests, "Deployment")[name(component)]["spec"]["template"]["spec"]
        waits = [c for c in pod.get("initContainers", []) if c["name"] == "wait-for-weights"]
        if component in MODEL_COMPONENTS:
            (wait,) = waits
            assert f"[ -f {marker} ]" in wait["command"][-1], component
        else:
            assert not waits, component


def test_a_new_model_means_a_new_download_job_and_marker() -> None:
    before = of_kind(rendered("xeon"), "Job")
    after = of_kind(render("xeon", {"llm": {"vllm": {"modelId": "Intel/neural-chat-7b-v3-1"}}}), "Job")
    same = of_kind(render("xeon", {"gateway": {"resources": {"limits": {"cpu": "3"}}}}), "Job")
    assert set(before) == set(same) and set(before).isdisjoint(after)
    assert of_kind(render("xeon", {"download": {"enabled": False}}), "Job") == {}


# Autoscaling.


@pytest.mark.parametrize("hardware", HARDWARE)
def test_animation_and_gateway_scale_on_cpu_and_optionally_on_requests_in_flight(hardware: str) -> None:
    manifests = rendered(hardware)
    hpas = of_kind(manifests, "HorizontalPodAutoscaler")
    assert set(hpas) == {name("animation"), name("gateway")}
    deployments = of_kind(manifests, "Deployment")
    for hpa_name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": hpa_name}
        assert "replicas" not in deployments[hpa_name]["spec"]  # the HPA owns the count
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    for fixed in set(deployments) - set(hpas):
        assert deployments[fixed]["spec"]["replicas"] == 1
    queue = {"animation": {"autoscaling": {"queueMetric": {"enabled": True}}}}
    (hpa,) = [h for n, h in of_kind(render(hardware, queue), "HorizontalPodAutoscaler").items() if "animation" in n]
    pods = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert pods == [
        {"metric": {"name": "avatarchat_animation_busy"}, "target": {"type": "AverageValue", "averageValue": "1"}}
    ]
    fixed_count = render(hardware, {"animation": {"autoscaling": {"enabled": False}, "replicas": 2}})
    assert of_kind(fixed_count, "Deployment")[name("animation")]["spec"]["replicas"] == 2
    assert set(of_kind(fixed_count, "HorizontalPodAutoscaler")) == {name("gateway")}
