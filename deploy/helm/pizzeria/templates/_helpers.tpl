{{/*
Names, labels and the pieces every process's pod shares. A "component" is one kind of process:
a service (orders, kitchen, notifications, analytics), a relay (orders-relay, kitchen-relay) or a
job (orders-migrate, ..., kafka-setup).
*/}}

{{- define "pizzeria.fullname" -}}
{{- if contains "pizzeria" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-pizzeria" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pizzeria.labels" -}}
app.kubernetes.io/name: pizzeria
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "pizzeria.selector" -}}
app.kubernetes.io/name: pizzeria
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The image of a service: <registry>/mario-<service>:<tag>. */}}
{{- define "pizzeria.image" -}}
{{- printf "%s/mario-%s:%s" .root.Values.image.registry .service (.root.Values.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{/* A process's settings: the defaults with its own merged over them (maps merge deeply). */}}
{{- define "pizzeria.settings" -}}
{{- $merged := deepCopy .root.Values.defaults -}}
{{- $merged = mergeOverwrite $merged (deepCopy .own) -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* A Secret's key as an environment variable. */}}
{{- define "pizzeria.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .ref.name }}
      key: {{ .ref.key }}
{{- end -}}

{{/*
The broker, and how a process authenticates to it as its own principal (eventing.kafka_security,
read without a prefix).
*/}}
{{- define "pizzeria.kafkaEnv" -}}
{{- $kafka := .root.Values.kafka -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ $kafka.bootstrapServers | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $kafka.securityProtocol | quote }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $kafka.saslMechanism | quote }}
{{- $user := printf "%s%s" $kafka.userPrefix .principal }}
- name: KAFKA_SASL_USERNAME
  value: {{ $user | quote }}
{{ include "pizzeria.secretEnv" (dict "name" "KAFKA_SASL_PASSWORD" "ref" (dict "name" $user "key" "password")) }}
{{- if $kafka.ca.name }}
- name: KAFKA_SSL_CAFILE
  value: /etc/pizzeria/kafka-ca/{{ $kafka.ca.key }}
{{- end }}
{{- end -}}

{{/* How a service trusts tokens (service_kit.auth): only `serve` reads it. */}}
{{- define "pizzeria.authEnv" -}}
- name: AUTH_ENVIRONMENT
  value: {{ .root.Values.auth.environment | quote }}
{{- if .root.Values.auth.jwksUrl }}
- name: AUTH_JWKS_URL
  value: {{ .root.Values.auth.jwksUrl | quote }}
{{- else }}
{{ include "pizzeria.secretEnv" (dict "name" "AUTH_JWT_SECRET" "ref" .root.Values.auth.jwtSecret) }}
{{- end }}
{{- end -}}

{{/* A service's database URL: its own role on its own database. */}}
{{- define "pizzeria.databaseEnv" -}}
{{ include "pizzeria.secretEnv" (dict "name" (printf "%s_DATABASE_URL" (upper .service)) "ref" (dict "name" (printf "%s%s" .root.Values.postgres.urlSecretPrefix .service) "key" "url")) }}
{{- end -}}

{{/* A process's own extra variables: plain ones, then from Secrets (empty values left out). */}}
{{- define "pizzeria.extraEnv" -}}
{{- range $name, $value := .settings.env }}
{{- if ne (toString $value) "" }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- range $name, $ref := .settings.secretEnv }}
{{ include "pizzeria.secretEnv" (dict "name" $name "ref" $ref) }}
{{- end }}
{{- end -}}

{{/*
Probes on a named port: /healthz says the process is alive (liveness: a stuck event loop is
restarted), /readyz that its database, broker and consumer are usable (readiness: a pod whose
consumer stalled leaves the Service's endpoints). Start-up gets two minutes.
*/}}
{{- define "pizzeria.probes" -}}
startupProbe:
  httpGet: { path: /healthz, port: {{ . }} }
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: { path: /healthz, port: {{ . }} }
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 6
readinessProbe:
  httpGet: { path: /readyz, port: {{ . }} }
  periodSeconds: 5
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* The container's hardening: the image's own non-root user, nothing writable but /tmp. */}}
{{- define "pizzeria.containerSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: { drop: [ALL] }
  seccompProfile: { type: RuntimeDefault }
{{- end -}}

{{- define "pizzeria.volumeMounts" -}}
volumeMounts:
  - { name: tmp, mountPath: /tmp }
{{- if .root.Values.kafka.ca.name }}
  - { name: kafka-ca, mountPath: /etc/pizzeria/kafka-ca, readOnly: true }
{{- end }}
{{- end -}}

{{- define "pizzeria.volumes" -}}
volumes:
  - name: tmp
    emptyDir: { sizeLimit: 64Mi }
{{- if .root.Values.kafka.ca.name }}
  - name: kafka-ca
    secret:
      secretName: {{ .root.Values.kafka.ca.name }}
      items: [{ key: {{ .root.Values.kafka.ca.key }}, path: {{ .root.Values.kafka.ca.key }} }]
{{- end }}
{{- end -}}

{{/* What a pod spec shares: no API token (nothing here talks to the Kubernetes API). */}}
{{- define "pizzeria.podCommon" -}}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .root.Values.image.pullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
securityContext:
  fsGroup: 10001
{{- with .settings.nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .settings.tolerations }}
tolerations:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .settings.affinity }}
affinity:
{{ toYaml . | indent 2 }}
{{- end }}
{{- end -}}

{{/* The largest partition count of the topics a consumer group reads: more members idle. */}}
{{- define "pizzeria.partitionsFor" -}}
{{- $most := 0 -}}
{{- range .root.Values.kafka.topics -}}
{{- if has .name $.topics -}}
{{- $most = max $most (int .partitions) -}}
{{- end -}}
{{- end -}}
{{- $most -}}
{{- end -}}

{{/* NetworkPolicy peers: address blocks, and pods by labels in namespaces by labels. */}}
{{- define "pizzeria.peers" -}}
{{- range .network.ipBlocks }}
- ipBlock: {{ toJson . }}
{{- end }}
{{- if or .network.namespaceSelector .network.podSelector }}
- {{- with .network.namespaceSelector }}
  namespaceSelector: {{ toJson . }}
  {{- end }}
  podSelector: {{ toJson (.network.podSelector | default dict) }}
{{- end }}
{{- end -}}
{{- define "pizzeria.ports" -}}
{{- range . }}
- { protocol: TCP, port: {{ . }} }
{{- end }}
{{- end -}}
