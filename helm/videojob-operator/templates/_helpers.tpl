{{/* Names, labels and the small decisions shared by several templates. */}}

{{- define "videojob.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "videojob.fullname" -}}
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

{{- define "videojob.selectorLabels" -}}
app.kubernetes.io/name: {{ include "videojob.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "videojob.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "videojob.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: videojob
{{- end -}}

{{- define "videojob.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "videojob.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository[:tag][@digest]; the digest wins over the tag. */}}
{{- define "videojob.imageRef" -}}
{{- $repo := index . 0 -}}
{{- $tag := index . 1 -}}
{{- $digest := index . 2 -}}
{{- if $digest -}}
{{- printf "%s@%s" $repo $digest -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{- define "videojob.image" -}}
{{- include "videojob.imageRef" (list .Values.image.repository (default .Chart.AppVersion .Values.image.tag) .Values.image.digest) -}}
{{- end -}}

{{- define "videojob.workerImage" -}}
{{- if .Values.worker.image.repository -}}
{{- include "videojob.imageRef" (list .Values.worker.image.repository (default .Chart.AppVersion .Values.worker.image.tag) .Values.worker.image.digest) -}}
{{- else -}}
{{- include "videojob.image" . -}}
{{- end -}}
{{- end -}}

{{/* true when the operator watches every namespace (ClusterRole mode). */}}
{{- define "videojob.clusterWide" -}}
{{- if empty .Values.watch.namespaces -}}true{{- end -}}
{{- end -}}

{{/* Namespaces that get the worker ServiceAccount and its RoleBinding, as a JSON list. */}}
{{- define "videojob.workerNamespaces" -}}
{{- if .Values.worker.namespaces -}}
{{- .Values.worker.namespaces | uniq | toJson -}}
{{- else if .Values.watch.namespaces -}}
{{- .Values.watch.namespaces | uniq | toJson -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{/* Rules of the operator inside the namespaces it watches. */}}
{{- define "videojob.operatorRules" -}}
- apiGroups: [videogen.io]
  resources: [videojobs]
  verbs: [get, list, watch, patch]
- apiGroups: [videogen.io]
  resources: [videojobs/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- /* Tenancy: the videogen.io/projects annotation of a VideoJob's own Namespace (a Role in that
namespace can grant this: the API server authorises GET namespaces/NAME in namespace NAME). */}}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
{{- if .Values.rbac.secrets.enabled }}
{{- /* list by metadata.name AND the label videogen.io/credentials=true; resourceNames still
apply to a list with a metadata.name field selector. */}}
- apiGroups: [""]
  resources: [secrets]
  {{- with .Values.rbac.secrets.resourceNames }}
  resourceNames: {{ toJson . }}
  {{- end }}
  verbs: [list]
{{- end }}
{{- if eq .Values.operator.executor "job" }}
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create, get, list, watch, delete, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
{{- end }}
{{- end -}}

{{/* Kopf's runtime discovery in all-namespaces mode: it watches CRDs to notice new resources.
With literal namespaces the operator turns Kopf's scanning off, so that mode needs no cluster-scoped
rights at all. */}}
{{- define "videojob.discoveryRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
{{- end -}}

{{/* An emptyDir source as inline JSON: {} or {"medium": ..., "sizeLimit": ...}. */}}
{{- define "videojob.emptyDir" -}}
{{- $out := dict -}}
{{- with .medium }}{{ $_ := set $out "medium" . }}{{ end -}}
{{- with .sizeLimit }}{{ $_ := set $out "sizeLimit" . }}{{ end -}}
{{- toJson $out -}}
{{- end -}}

{{/* imagePullSecrets names, comma-separated, for worker pods (VIDEOJOB_WORKER_IMAGE_PULL_SECRETS). */}}
{{- define "videojob.pullSecretNames" -}}
{{- $names := list -}}
{{- range .Values.imagePullSecrets }}{{ $names = append $names .name }}{{ end -}}
{{- join "," $names -}}
{{- end }}
