{{/* Names, labels, images and the pieces every Deployment shares. */}}

{{- define "avatarchat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's prefix for every object: the release name, or release-chart when it lacks the chart's name. */}}
{{- define "avatarchat.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The object name of one component: (dict "root" $ "component" "asr"). */}}
{{- define "avatarchat.componentName" -}}
{{- printf "%s-%s" (include "avatarchat.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "avatarchat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "avatarchat.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "avatarchat.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "avatarchat.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: avatarchat
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* An image reference: (dict "root" $ "image" .Values.asr.image) -> registry/repository:tag, never untagged. */}}
{{- define "avatarchat.image" -}}
{{- $registry := default .root.Values.image.registry .image.registry -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s/%s:%s" $registry .image.repository (toString $tag) -}}
{{- end -}}

{{/* The ConfigMap's name of one component. */}}
{{- define "avatarchat.configName" -}}
{{- include "avatarchat.componentName" . -}}
{{- end -}}

{{- define "avatarchat.secretName" -}}
{{- default (printf "%s-secrets" (include "avatarchat.fullname" .)) .Values.secret.existingSecret -}}
{{- end -}}

{{- define "avatarchat.modelsClaim" -}}
{{- default (printf "%s-models" (include "avatarchat.fullname" .)) .Values.persistence.models.existingClaim -}}
{{- end -}}

{{- define "avatarchat.mediaClaim" -}}
{{- default (printf "%s-media" (include "avatarchat.fullname" .)) .Values.persistence.media.existingClaim -}}
{{- end -}}

{{/* no_proxy: the chart's Services (calls inside the cluster bypass a proxy), then the user's. */}}
{{- define "avatarchat.noProxy" -}}
{{- $names := list -}}
{{- range (list "asr" "tts" "animation" "llm" "gateway" "ui") -}}
{{- $names = append $names (include "avatarchat.componentName" (dict "root" $ "component" .)) -}}
{{- end -}}
{{- $names = concat $names (list "localhost" "127.0.0.1" ".svc" ".cluster.local") -}}
{{- if .Values.proxy.noProxy -}}
{{- $names = append $names .Values.proxy.noProxy -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{/* What the LLM Deployment runs: the values of the chosen engine. */}}
{{- define "avatarchat.llmEngine" -}}
{{- if not (has .Values.llm.engine (list "vllm" "avatarchat")) -}}
{{- fail (printf "llm.engine must be vllm or avatarchat, not %q" .Values.llm.engine) -}}
{{- end -}}
{{- .Values.llm.engine -}}
{{- end -}}

{{/*
The digest of what the download Job fetches: the images and environments of the components it runs.
It names the Job and the marker file the model pods wait for, so a changed model means a new Job.
*/}}
{{- define "avatarchat.downloadId" -}}
{{- $v := .Values -}}
{{- $what := dict "asr" (list $v.asr.image $v.asr.env $v.asr.download) "tts" (list $v.tts.image $v.tts.env $v.tts.download) "animation" (list $v.animation.image $v.animation.env $v.animation.download) "engine" $v.llm.engine "tag" $v.image.tag "registry" $v.image.registry "app" .Chart.AppVersion -}}
{{- if eq $v.llm.engine "vllm" -}}
{{- $_ := set $what "llm" (list $v.llm.vllm.image $v.llm.vllm.modelId) -}}
{{- else -}}
{{- $_ := set $what "llm" (list $v.llm.light.image $v.llm.light.env $v.llm.light.download) -}}
{{- end -}}
{{- toJson $what | sha256sum | trunc 10 -}}
{{- end -}}

{{- define "avatarchat.downloadMarker" -}}
{{- printf "/models/.avatarchat/download-%s.done" (include "avatarchat.downloadId" .) -}}
{{- end -}}

{{/* Pod and container security: the component's own when set, else the chart's. */}}
{{- define "avatarchat.podSecurityContext" -}}
{{- toYaml (default .root.Values.podSecurityContext .c.podSecurityContext) -}}
{{- end -}}

{{- define "avatarchat.securityContext" -}}
{{- toYaml (default .root.Values.securityContext .c.securityContext) -}}
{{- end -}}

{{/*
Probes on the service port: readiness asks `readyPath` (/ready: models loaded), liveness /health
(cheap, never touches a model), and the startup probe gives the model load `startupMinutes` before
liveness counts (compose's start_period).
*/}}
{{- define "avatarchat.probes" -}}
startupProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: {{ mul (int .startupMinutes) 6 }}
readinessProbe:
  httpGet: {path: {{ .readyPath }}, port: http}
  periodSeconds: 15
  timeoutSeconds: 5
  failureThreshold: 3
livenessProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* Environment from the component's ConfigMap, then the keys named in `secrets` from the Secret (each optional). */}}
{{- define "avatarchat.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "avatarchat.configName" (dict "root" .root "component" .component) }}
{{- if .secrets }}
env:
{{- range .secrets }}
  - name: {{ . }}
    valueFrom:
      secretKeyRef:
        name: {{ include "avatarchat.secretName" $.root }}
        key: {{ . }}
        optional: true
{{- end }}
{{- end }}
{{- end -}}

{{/* An init container that waits until the download Job has filled the models volume. */}}
{{- define "avatarchat.waitForWeights" -}}
- name: wait-for-weights
  image: {{ .image }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  command:
    - sh
    - -c
    - >-
      until [ -f {{ include "avatarchat.downloadMarker" .root }} ]; do
      echo "waiting for the weights download ({{ include "avatarchat.downloadMarker" .root }})"; sleep 10; done
  volumeMounts:
    - {name: models, mountPath: /models, readOnly: true}
  resources:
    {{- toYaml .root.Values.waitForWeights.resources | nindent 4 }}
  securityContext:
    {{- include "avatarchat.securityContext" . | nindent 4 }}
{{- end -}}

{{- define "avatarchat.podAnnotations" -}}
checksum/config: {{ toJson .env | sha256sum }}
{{- if .root.Values.prometheusAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{/* Scheduling and pull secrets of a pod. */}}
{{- define "avatarchat.scheduling" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The Service of one component: its port, named http, to the pods of that component. */}}
{{- define "avatarchat.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "avatarchat.componentName" . }}
  labels:
    {{- include "avatarchat.labels" . | nindent 4 }}
spec:
  type: {{ .type | default "ClusterIP" }}
  selector:
    {{- include "avatarchat.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .port }}
      targetPort: http
      protocol: TCP
{{- end -}}
