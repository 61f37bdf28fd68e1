#!/usr/bin/env bash
# Export the variables compose/xeon/compose.yaml and compose/gaudi/compose.yaml read, keeping any
# value already set. Source it before `docker compose`:
#
#   cd compose/xeon && source ../set_env.sh && docker compose up -d
#
# OPEA's names are accepted: HUGGINGFACEHUB_API_TOKEN (for HF_TOKEN), LLM_MODEL_ID, INFERENCE_MODE,
# GFPGAN_MODEL_VERSION, UPSCALE_FACTOR, FPS, FACE, and the gateway's WHISPER_SERVER_HOST_IP/PORT,
# LLM_SERVER_HOST_IP/PORT, SPEECHT5_SERVER_HOST_IP/PORT, ANIMATION_SERVICE_HOST_IP/PORT. Left
# unset, the gateway reaches the services by their compose DNS names; OPEA's host_ip style
# (host address + published ports 7066, 3006, 7055, 3008) works too when set as a whole.

# Hugging Face token: OPEA calls it HUGGINGFACEHUB_API_TOKEN; vLLM and `avatarchat download` read HF_TOKEN.
export HF_TOKEN="${HF_TOKEN:-${HUGGINGFACEHUB_API_TOKEN:-}}"
export HUGGINGFACEHUB_API_TOKEN="${HUGGINGFACEHUB_API_TOKEN:-$HF_TOKEN}"

# Which LLM runs: `vllm` (vLLM serving LLM_MODEL_ID) or `light` (our llm service, LIGHT_LLM_MODEL_ID).
export COMPOSE_PROFILES="${COMPOSE_PROFILES:-vllm}"
export LLM_MODEL_ID="${LLM_MODEL_ID:-Intel/neural-chat-7b-v3-3}"
export LLM_MAX_MODEL_LEN="${LLM_MAX_MODEL_LEN:-4096}"
export LIGHT_LLM_MODEL_ID="${LIGHT_LLM_MODEL_ID:-Qwen/Qwen2.5-0.5B-Instruct}"

# Animation, with OPEA's names and defaults.
export INFERENCE_MODE="${INFERENCE_MODE:-wav2lip+gfpgan}"
export ANIMATION_MODES="${ANIMATION_MODES:-wav2lip+gfpgan}"
export GFPGAN_MODEL_VERSION="${GFPGAN_MODEL_VERSION:-1.4}"
export UPSCALE_FACTOR="${UPSCALE_FACTOR:-1}"
export FPS="${FPS:-10}"
# The default avatar: AVATARS_DIR (host) is mounted at /avatars; FACE is the path in the container.
export AVATARS_DIR="${AVATARS_DIR:-./avatars}"
export FACE="${FACE:-/avatars/default.png}"
case "${FACE}" in
    /avatars/*) ;;
    *) echo "set_env.sh: FACE=${FACE} must be a path inside the animation container; put the image in" \
            "AVATARS_DIR (${AVATARS_DIR}) and set FACE=/avatars/<file>" >&2 ;;
esac

# Images, logging, and the offline start (weights only from `../download.sh`).
export REGISTRY="${REGISTRY:-avatarchat}"
export TAG="${TAG:-latest}"
export LOG_LEVEL="${LOG_LEVEL:-INFO}"
export AVATARCHAT_OFFLINE="${AVATARCHAT_OFFLINE:-true}"

# OPEA's other wav2lip variables name files and a service inside OPEA's images; here the weights
# come from the models volume and each video gets its own id, so they are not passed on.
for opea_only in CHECKPOINT_PATH AUDIO OUTFILE WAV2LIP_ENDPOINT WAV2LIP_PORT; do
    if [ -n "${!opea_only:-}" ]; then
        echo "set_env.sh: ${opea_only} is OPEA-specific and not used by avatarchat's compose files" >&2
    fi
done
unset opea_only
