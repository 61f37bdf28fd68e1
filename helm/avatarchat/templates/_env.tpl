{{/*
The environment of one component, as YAML: (dict "root" $ "component" "asr"). The names are the ones
its compose service sets (compose/<hardware>/compose.yaml), the keys aside (Secret: HF_TOKEN, LLM_API_KEY,
AVATARCHAT_API_KEY, GATEWAY_LIVE_TURN_CREDENTIAL), and HABANA_VISIBLE_DEVICES aside (the Habana device
plugin sets it for the card it gives the pod). The gateway's routes are our GATEWAY_* names, as in
compose: OPEA's *_SERVER_PORT names are host ports there.
Every value is a string, as a ConfigMap needs.
*/}}
{{- define "avatarchat.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $name := dict "root" $root -}}
{{- $env := dict "no_proxy" (include "avatarchat.noProxy" $root) "http_proxy" $v.proxy.http "https_proxy" $v.proxy.https -}}
{{- $model := dict "MODEL_CACHE_DIR" "/models" "AVATARCHAT_OFFLINE" $v.offline -}}
{{- if eq .component "asr" -}}
{{- $env = mergeOverwrite $env $model $v.asr.env -}}
{{- else if eq .component "tts" -}}
{{- $env = mergeOverwrite $env $model $v.tts.env -}}
{{- else if eq .component "animation" -}}
{{- $env = mergeOverwrite $env $model $v.animation.env -}}
{{- if $v.animation.avatars.configMap -}}
{{- $_ := set $env "FACE" $v.animation.avatars.face -}}
{{- end -}}
{{- else if eq .component "llm" -}}
{{- if eq (include "avatarchat.llmEngine" $root) "vllm" -}}
{{- $vllm := dict "HF_HOME" "/data" "HF_HUB_OFFLINE" $v.offline "LLM_MODEL_ID" $v.llm.vllm.modelId -}}
{{- $env = mergeOverwrite $env $vllm $v.llm.vllm.env -}}
{{- else -}}
{{- $env = mergeOverwrite $env $model $v.llm.light.env -}}
{{- end -}}
{{- else if eq .component "gateway" -}}
{{- $routes := dict "GATEWAY_PORT" $v.gateway.port -}}
{{- $_ := set $routes "GATEWAY_ASR_HOST" (include "avatarchat.componentName" (set (deepCopy $name) "component" "asr")) -}}
{{- $_ = set $routes "GATEWAY_ASR_PORT" $v.asr.port -}}
{{- $_ = set $routes "GATEWAY_LLM_HOST" (include "avatarchat.componentName" (set (deepCopy $name) "component" "llm")) -}}
{{- $_ = set $routes "GATEWAY_LLM_PORT" $v.llm.port -}}
{{- $_ = set $routes "GATEWAY_TTS_HOST" (include "avatarchat.componentName" (set (deepCopy $name) "component" "tts")) -}}
{{- $_ = set $routes "GATEWAY_TTS_PORT" $v.tts.port -}}
{{- $_ = set $routes "GATEWAY_ANIMATION_HOST" (include "avatarchat.componentName" (set (deepCopy $name) "component" "animation")) -}}
{{- $_ = set $routes "GATEWAY_ANIMATION_PORT" $v.animation.port -}}
{{- $env = mergeOverwrite $env $routes $v.gateway.env -}}
{{- with $v.gateway.live.turnUsername -}}
{{- $_ := set $env "GATEWAY_LIVE_TURN_USERNAME" . -}}
{{- end -}}
{{- else if eq .component "ui" -}}
{{- $gateway := include "avatarchat.componentName" (set (deepCopy $name) "component" "gateway") -}}
{{- $url := dict "UI_GATEWAY_URL" (printf "http://%s:%v" $gateway $v.gateway.port) -}}
{{- $env = mergeOverwrite $env $url $v.ui.env -}}
{{- else -}}
{{- fail (printf "no environment for component %q" .component) -}}
{{- end -}}
{{- $strings := dict -}}
{{- range $key, $value := $env -}}
{{- $_ := set $strings $key (toString $value) -}}
{{- end -}}
{{- toYaml $strings -}}
{{- end -}}
