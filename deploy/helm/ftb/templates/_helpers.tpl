{{/* Names, labels and pieces shared by the templates. */}}

{{- define "ftb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart name>, or the release name when it already contains it. */}}
{{- define "ftb.fullname" -}}
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

{{- define "ftb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ftb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ftb.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ftb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "ftb.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "ftb.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ftb.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ftb.coordinatorName" -}}
{{- printf "%s-coordinator" (include "ftb.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The address workers dial: the coordinator's headless Service. */}}
{{- define "ftb.coordinatorAddress" -}}
{{- printf "%s.%s.svc:%d" (include "ftb.coordinatorName" .) .Release.Namespace (int .Values.ports.grpc) -}}
{{- end -}}

{{- define "ftb.secretName" -}}
{{- default (printf "%s-secrets" (include "ftb.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Fail early on value combinations that would render a broken release. */}}
{{- define "ftb.validate" -}}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) -}}
{{- fail "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret for the coordinator)" -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.caSecretName) -}}
{{- fail "tls.enabled needs tls.caSecretName (a Secret with ca.crt that workers verify the coordinator with)" -}}
{{- end -}}
{{- if and .Values.tls.mutual (not .Values.tls.enabled) -}}
{{- fail "tls.mutual needs tls.enabled" -}}
{{- end -}}
{{- if and .Values.tls.mutual (not .Values.tls.clientSecretName) -}}
{{- fail "tls.mutual needs tls.clientSecretName (a kubernetes.io/tls Secret workers present)" -}}
{{- end -}}
{{- if and .Values.auth.enabled (not .Values.secrets.existingSecret) (not .Values.secrets.authToken) -}}
{{- fail "auth.enabled needs secrets.authToken or secrets.existingSecret" -}}
{{- end -}}
{{- range $pool, $w := .Values.workers -}}
{{- if and $w.enabled (not (has $w.role (list "tune" "judge"))) -}}
{{- fail (printf "workers.%s.role must be tune or judge, got %q" $pool (toString $w.role)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Volumes holding the auth token and TLS material. Argument: dict with
     root (the top context) and client (true for workers). */}}
{{- define "ftb.securityVolumes" -}}
{{- $v := .root.Values -}}
{{- if $v.auth.enabled }}
- name: auth-token
  secret:
    secretName: {{ include "ftb.secretName" .root }}
    defaultMode: 0440
    items:
      - key: {{ $v.secrets.keys.authToken }}
        path: token
{{- end }}
{{- if $v.tls.enabled }}
{{- if not .client }}
- name: tls-server
  secret:
    secretName: {{ $v.tls.secretName }}
    defaultMode: 0440
{{- end }}
{{- if or .client $v.tls.mutual }}
- name: tls-ca
  secret:
    secretName: {{ $v.tls.caSecretName }}
    defaultMode: 0444
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- if and .client $v.tls.mutual }}
- name: tls-client
  secret:
    secretName: {{ $v.tls.clientSecretName }}
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end -}}

{{- define "ftb.securityVolumeMounts" -}}
{{- $v := .root.Values -}}
{{- if $v.auth.enabled }}
- name: auth-token
  mountPath: /etc/ftb/auth
  readOnly: true
{{- end }}
{{- if $v.tls.enabled }}
{{- if not .client }}
- name: tls-server
  mountPath: /etc/ftb/tls/server
  readOnly: true
{{- end }}
{{- if or .client $v.tls.mutual }}
- name: tls-ca
  mountPath: /etc/ftb/tls/ca
  readOnly: true
{{- end }}
{{- if and .client $v.tls.mutual }}
- name: tls-client
  mountPath: /etc/ftb/tls/client
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* Flags matching the mounts above. */}}
{{- define "ftb.securityArgs" -}}
{{- $v := .root.Values -}}
{{- if $v.auth.enabled }}
- --auth-token-file=/etc/ftb/auth/token
{{- end }}
{{- if $v.tls.enabled }}
{{- if .client }}
- --tls-ca=/etc/ftb/tls/ca/ca.crt
{{- if $v.tls.mutual }}
- --tls-cert=/etc/ftb/tls/client/tls.crt
- --tls-key=/etc/ftb/tls/client/tls.key
{{- end }}
{{- else }}
- --tls-cert=/etc/ftb/tls/server/tls.crt
- --tls-key=/etc/ftb/tls/server/tls.key
{{- if $v.tls.mutual }}
- --tls-client-ca=/etc/ftb/tls/ca/ca.crt
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
