{{/* Names, labels and the shared RBAC rules of the losant-operator chart. */}}

{{- define "losant-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "losant-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "losant-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "losant-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "losant-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "losant-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "losant-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "losant-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
The permissions the operator uses in each watched namespace (a ClusterRole's rules in cluster
mode, each Role's in namespaced mode). Only the verbs it calls:
- its two kinds: get/list/watch (caches, fresh reads) and patch (finalizers, id annotations);
  /status: patch (server-side apply); /finalizers: update (needed where the
  OwnerReferencesPermissionEnforcement admission plugin guards finalizer changes);
- Secrets: get (values of referenced Secrets, read at reconcile time; metadata for the
  finalizer), list/watch (metadata-only watch), patch (the in-use finalizer on token and CA
  bundle Secrets, nothing else: e2e::audit proves it from the API server's audit log);
- events.k8s.io Events: create/patch (the recorder creates and then updates series).
*/}}
{{- define "losant-operator.rules" -}}
- apiGroups: [losant.io]
  resources: [integrations, losantapplications]
  verbs: [get, list, watch, patch]
- apiGroups: [losant.io]
  resources: [integrations/status, losantapplications/status]
  verbs: [patch]
- apiGroups: [losant.io]
  resources: [integrations/finalizers, losantapplications/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* Whether the PodDisruptionBudget applies: policy/v1 is served and more than one replica runs.
On install, the cluster's discovery answers; `helm template` knows every group-version whatever
--kube-version says, so the version (1.21 introduced policy/v1) is checked as well. */}}
{{- define "losant-operator.pdbEnabled" -}}
{{- if and .Values.podDisruptionBudget.enabled (gt (int .Values.replicaCount) 1) (.Capabilities.APIVersions.Has "policy/v1") (semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version) -}}
true
{{- end }}
{{- end }}
