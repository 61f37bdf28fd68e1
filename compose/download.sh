#!/usr/bin/env bash
# Fetch the weights ahead of time. Optional: `docker compose up` runs the same steps itself, in the
# one-shot `<service>-models` containers each model service waits for. This runs them on their own,
# e.g. before going offline. Each service's own image runs `avatarchat download <component>` with
# that service's environment (from .env or set_env.sh), so what is fetched is exactly what the
# service will load; with compose.vllm.yaml (COMPOSE_FILE), vLLM's model goes into its llm-cache
# volume the same way. The services themselves start offline (AVATARCHAT_OFFLINE=true).
#
#   compose/download.sh xeon     # or gaudi
set -euo pipefail

hardware="${1:?usage: download.sh xeon|gaudi}"
cd "$(dirname "$0")/${hardware}"

# Run a shell command in a one-off container of a service, network access allowed.
fetch() {
    echo "== $1: $2"
    docker compose run --rm --no-deps -e AVATARCHAT_OFFLINE=false -e HF_HUB_OFFLINE=0 "$1" sh -c "$2"
}

# The commands expand variables inside the container, from the service's own environment; they are
# the commands of the `<service>-models` containers in compose.yaml.
# shellcheck disable=SC2016
{
    fetch asr 'avatarchat download whisper'
    fetch tts 'avatarchat download "$TTS_BACKEND"'  # the components are named after the backends
    fetch animation 'avatarchat download wav2lip && avatarchat download gfpgan &&
        case "$INFERENCE_MODE,$ANIMATION_MODES" in *sadtalker*) avatarchat download sadtalker ;; esac'
}

# The LLM that runs: our llm service, or (compose.vllm.yaml) vLLM's model from the hub.
active="$(docker compose config --services)"
if grep -qx llm <<<"${active}"; then
    # shellcheck disable=SC2016
    fetch llm 'avatarchat download llm'
fi
if grep -qx vllm-models <<<"${active}"; then
    echo "== vllm-models: the model named by LLM_MODEL_ID, into the llm-cache volume"
    docker compose run --rm --no-deps vllm-models
fi
