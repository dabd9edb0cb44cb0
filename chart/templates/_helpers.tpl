{{/*
Shared helpers of the smiless chart.
*/}}

{{/* Labels every object carries. `app` is the selector label, as in the OpenFaaS chart, so that the
Deployments it created can be upgraded in place (a Deployment's selector cannot change). */}}
{{- define "smiless.labels" -}}
app: {{ .app }}
component: {{ .component | default .app }}
chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
release: {{ .root.Release.Name }}
heritage: {{ .root.Release.Service }}
app.kubernetes.io/name: {{ .app }}
app.kubernetes.io/part-of: smiless
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* Pull policy of the chart's own images. */}}
{{- define "smiless.pullPolicy" -}}
{{- .Values.openfaasImagePullPolicy | default "IfNotPresent" -}}
{{- end -}}

{{/* In-cluster address of the provider's Service, the gateway's functions_provider_url. */}}
{{- define "smiless.providerURL" -}}
{{- printf "http://%s.%s.svc.%s:%d/" .Values.smiless.serviceName .Release.Namespace .Values.kubernetesDNSDomain (int .Values.smiless.port) -}}
{{- end -}}

{{/* In-cluster address of the gateway (AlertManager posts its alerts there). */}}
{{- define "smiless.gatewayURL" -}}
{{- printf "http://gateway.%s.svc.%s:8080" .Release.Namespace .Values.kubernetesDNSDomain -}}
{{- end -}}

{{/* A node selector map as the comma-separated key=value list the provider reads (the `constraints`
syntax), keys sorted so the rendering is stable. */}}
{{- define "smiless.selectorList" -}}
{{- $parts := list -}}
{{- range $k := keys . | sortAlpha -}}
{{- $parts = append $parts (printf "%s=%s" $k (toString (index $ $k))) -}}
{{- end -}}
{{- join "," $parts -}}
{{- end -}}

{{/* Placement of the chart's own pods. */}}
{{- define "smiless.placement" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod-level security context. */}}
{{- define "smiless.podSecurity" -}}
{{- if .Values.securityContext }}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .uid | default 10001 }}
  runAsGroup: {{ .uid | default 10001 }}
  fsGroup: {{ .uid | default 10001 }}
  seccompProfile:
    type: RuntimeDefault
{{- end }}
{{- end -}}

{{/* Container-level security context. */}}
{{- define "smiless.containerSecurity" -}}
{{- if .Values.securityContext }}
securityContext:
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities:
    drop: ["ALL"]
{{- end }}
{{- end -}}

{{/* Input checks: fail the rendering with a readable message instead of producing a broken install. */}}
{{- define "smiless.validate" -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" .Values.functionNamespace) -}}
{{- fail (printf "functionNamespace %q is not a DNS-1123 label" .Values.functionNamespace) -}}
{{- end -}}
{{- if not (has .Values.serviceType (list "NodePort" "LoadBalancer" "ClusterIP")) -}}
{{- fail (printf "serviceType %q: expected NodePort, LoadBalancer or ClusterIP" .Values.serviceType) -}}
{{- end -}}
{{- if lt (int .Values.smiless.gpu.mpsReplicas) 1 -}}
{{- fail "smiless.gpu.mpsReplicas must be at least 1" -}}
{{- end -}}
{{- if or (le (float64 .Values.smiless.prices.cpuCoreHour) 0.0) (le (float64 .Values.smiless.prices.gpuHour) 0.0) -}}
{{- fail "smiless.prices.cpuCoreHour and smiless.prices.gpuHour must be positive" -}}
{{- end -}}
{{- if or (lt (int .Values.smiless.port) 1) (gt (int .Values.smiless.port) 65535) -}}
{{- fail "smiless.port must be a TCP port (1-65535)" -}}
{{- end -}}
{{- end -}}
