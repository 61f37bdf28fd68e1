#!/usr/bin/env bash
# Export the variables compose/xeon/compose.yaml and compose/gaudi/compose.yaml read, keeping any
# value already set. Optional: every variable has a default in the compose files. Source it before
# `docker compose` when you come from OPEA's set_env.sh or want the values in your shell:
#
#   cd compose/xeon && source ../set_env.sh && docker compose up -d
#
# OPEA's names are accepted: HUGGINGFACEHUB_API_TOKEN (for HF_TOKEN), LLM_MODEL_ID, INFERENCE_MODE,
# GFPGAN_MODEL_VERSION, UPSCALE_FACTOR, FPS, FACE, and the host ports WHISPER_SERVER_PORT (7066),
# SPEECHT5_SERVER_PORT (7055), LLM_SERVER_PORT (3006) and ANIMATION_SERVICE_PORT (3008), which
# only choose where a service is published: the services reach each other by compose DNS name on
# their container ports whatever these are, so OPEA's *_HOST_IP values are not needed.

# Hugging Face token: OPEA calls it HUGGINGFACEHUB_API_TOKEN; vLLM and `avatarchat download` read HF_TOKEN.
export HF_TOKEN="${HF_TOKEN:-${HUGGINGFACEHUB_API_TOKEN:-}}"
export HUGGINGFACEHUB_API_TOKEN="${HUGGINGFACEHUB_API_TOKEN:-$HF_TOKEN}"

# Which LLM runs: our llm service (LIGHT_LLM_MODEL_ID) by default; vLLM serving LLM_MODEL_ID with
# COMPOSE_FILE=compose.yaml:compose.vllm.yaml. Profiles no longer choose it.
export LLM_MODEL_ID="${LLM_MODEL_ID:-Intel/neural-chat-7b-v3-3}"
export LLM_MAX_MODEL_LEN="${LLM_MAX_MODEL_LEN:-4096}"
export LIGHT_LLM_MODEL_ID="${LIGHT_LLM_MODEL_ID:-Qwen/Qwen2.5-0.5B-Instruct}"
case ",${COMPOSE_PROFILES:-}," in
    *,vllm,*) echo "set_env.sh: COMPOSE_PROFILES=vllm no longer starts vLLM; set" \
            "COMPOSE_FILE=compose.yaml:compose.vllm.yaml instead" >&2 ;;
esac

# Host ports (OPEA's names and values).
export WHISPER_SERVER_PORT="${WHISPER_SERVER_PORT:-7066}"
export SPEECHT5_SERVER_PORT="${SPEECHT5_SERVER_PORT:-7055}"
export LLM_SERVER_PORT="${LLM_SERVER_PORT:-3006}"
export ANIMATION_SERVICE_PORT="${ANIMATION_SERVICE_PORT:-3008}"

# Animation, with OPEA's names and defaults.
export INFERENCE_MODE="${INFERENCE_MODE:-wav2lip+gfpgan}"
export ANIMATION_MODES="${ANIMATION_MODES:-wav2lip+gfpgan}"
export GFPGAN_MODEL_VERSION="${GFPGAN_MODEL_VERSION:-1.4}"
export UPSCALE_FACTOR="${UPSCALE_FACTOR:-1}"
export FPS="${FPS:-10}"
# Your own default avatar (optional: unset, the portrait shipped in the image): AVATARS_DIR (host)
# is mounted at /avatars; FACE is the path in the container.
export AVATARS_DIR="${AVATARS_DIR:-../avatars}"
if [ -n "${FACE:-}" ]; then
    case "${FACE}" in
        /avatars/*) ;;
        *) echo "set_env.sh: FACE=${FACE} must be a path inside the animation container; put the image in" \
                "AVATARS_DIR (${AVATARS_DIR}) and set FACE=/avatars/<file>" >&2 ;;
    esac
fi

# Images (the tag defaults to the project's version), logging, and the offline start.
export REGISTRY="${REGISTRY:-avatarchat}"
export TAG="${TAG:-0.1.0}"
export LOG_LEVEL="${LOG_LEVEL:-INFO}"
export AVATARCHAT_OFFLINE="${AVATARCHAT_OFFLINE:-true}"

# OPEA's other variables name files, hosts and a service inside OPEA's images; here the weights come
# from the models volume, each video gets its own id and the services find each other by DNS name,
# so they are not passed on.
for opea_only in CHECKPOINT_PATH AUDIO OUTFILE WAV2LIP_ENDPOINT WAV2LIP_PORT; do
    if [ -n "${!opea_only:-}" ]; then
        echo "set_env.sh: ${opea_only} is OPEA-specific and not used by avatarchat's compose files" >&2
    fi
done
unset opea_only
