{{/*
The Deployment of one component. Arguments (a dict):
  root            the chart's context ($)
  component       asr | tts | animation | llm | gateway | ui
  c               the component's values (replicas, autoscaling, strategy, security, scheduling)
  image, port     the container image and its service port
  readyPath       the readiness path: /ready for ours, /health for vLLM (it has no /ready)
  startupMinutes  how long the startup probe allows for the model load
  resources       the container's requests and limits
  env             the ConfigMap data (its digest restarts the pods when it changes)
  secrets         Secret keys passed as variables of the same name
  args            container arguments (vLLM), or none: the image's command
  models          "" | "/models": the weights volume at /models | "llm-cache": its llm-cache folder at /data
  media           "" | "rw" | "ro": the media store at /var/lib/avatarchat
  avatars         "": none | a ConfigMap mounted read-only at /avatars (the default avatar)
  shm             "": none | the size of a memory-backed /dev/shm
*/}}
{{- define "avatarchat.deployment" -}}
{{- $root := .root -}}
{{- $c := .c -}}
{{- $waits := and $root.Values.download.enabled (ne .models "") -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "avatarchat.componentName" . }}
  labels:
    {{- include "avatarchat.labels" . | nindent 4 }}
spec:
  {{- if not (and $c.autoscaling $c.autoscaling.enabled) }}
  replicas: {{ $c.replicas }}
  {{- end }}
  {{- with $c.strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "avatarchat.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "avatarchat.labels" . | nindent 8 }}
      annotations:
        {{- include "avatarchat.podAnnotations" . | nindent 8 }}
    spec:
      securityContext:
        {{- include "avatarchat.podSecurityContext" . | nindent 8 }}
      {{- with include "avatarchat.scheduling" . }}{{ . | nindent 6 }}{{- end }}
      {{- if $waits }}
      initContainers:
        {{- include "avatarchat.waitForWeights" . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ .image }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          {{- with .args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ .port }}
              protocol: TCP
          {{- include "avatarchat.envFrom" . | nindent 10 }}
          {{- include "avatarchat.probes" . | nindent 10 }}
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            {{- include "avatarchat.securityContext" . | nindent 12 }}
          {{- if or .models .media .avatars .shm }}
          volumeMounts:
            {{- if eq .models "/models" }}
            - {name: models, mountPath: /models}
            {{- else if eq .models "llm-cache" }}
            - {name: models, mountPath: /data, subPath: llm-cache}
            {{- end }}
            {{- if .media }}
            - {name: media, mountPath: /var/lib/avatarchat, readOnly: {{ eq .media "ro" }}}
            {{- end }}
            {{- if .avatars }}
            - {name: avatars, mountPath: /avatars, readOnly: true}
            {{- end }}
            {{- if .shm }}
            - {name: shm, mountPath: /dev/shm}
            {{- end }}
          {{- end }}
      {{- if or .models .media .avatars .shm }}
      volumes:
        {{- if .models }}
        - name: models
          persistentVolumeClaim:
            claimName: {{ include "avatarchat.modelsClaim" $root }}
        {{- end }}
        {{- if .media }}
        - name: media
          persistentVolumeClaim:
            claimName: {{ include "avatarchat.mediaClaim" $root }}
            readOnly: {{ eq .media "ro" }}
        {{- end }}
        {{- if .avatars }}
        - name: avatars
          configMap:
            name: {{ .avatars }}
        {{- end }}
        {{- if .shm }}
        - name: shm
          emptyDir:
            medium: Memory
            sizeLimit: {{ .shm }}
        {{- end }}
      {{- end }}
{{- end -}}
