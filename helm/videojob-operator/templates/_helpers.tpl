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

{{/* Rules of the operator inside the namespaces it watches: only the verbs its code calls
(tests/deploy/test_rbac.py derives them from the code). Secrets only with the inline executor:
in job mode the worker reads the VideoJob's Secret, the operator never does. */}}
{{- define "videojob.operatorRules" -}}
- apiGroups: [videogen.io]
  resources: [videojobs]
  verbs: [get, list, watch, patch]
- apiGroups: [videogen.io]
  resources: [videojobs/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [events]
  {{- /* list: FailedCreate/FailedScheduling Events explain a worker pod that never starts */}}
  verbs: [create, list]
{{- /* Tenancy: the videogen.io/projects annotation of a VideoJob's own Namespace (a Role in that
namespace can grant this: the API server authorises GET namespaces/NAME in namespace NAME). */}}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
{{- if and .Values.rbac.secrets.enabled (eq .Values.operator.executor "inline") }}
{{- /* Inline mode only (job mode: the worker reads its own Secret). list by metadata.name AND the
label videogen.io/credentials=true; resourceNames still apply to a list with a metadata.name
field selector. */}}
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
  verbs: [list, watch]
# Kueue: a suspend deactivates the Job's Workload (Kueue undoes a Job's own suspend).
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads]
  verbs: [list, patch]
{{- end }}
{{- end -}}

{{/* true when the operator creates the worker identity in VideoJob namespaces (all-namespaces
job mode, worker.serviceAccount.operatorManaged): see controller/worker_identity.py. */}}
{{- define "videojob.operatorManagesWorkers" -}}
{{- if and (include "videojob.clusterWide" .) (eq .Values.operator.executor "job") .Values.worker.serviceAccount.create .Values.worker.serviceAccount.operatorManaged -}}true{{- end -}}
{{- end -}}

{{/* The rights that takes: create what is missing, and bind only the worker ClusterRole. */}}
{{- define "videojob.workerIdentityRules" -}}
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [rolebindings]
  verbs: [get, create]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  resourceNames: [{{ include "videojob.fullname" . }}-worker]
  verbs: [bind]
{{- if .Values.networkPolicy.enabled }}
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, patch]
{{- end }}
{{- end -}}

{{/* The worker pods' NetworkPolicy spec (YAML): no ingress; egress to DNS, the API server, AWS. */}}
{{- define "videojob.workerNetworkPolicySpec" -}}
{{- $np := .Values.networkPolicy -}}
{{- $api := $np.apiServer.cidrs -}}
{{- if not $api -}}
{{- $endpoints := lookup "v1" "Endpoints" "default" "kubernetes" -}}
{{- range ($endpoints.subsets | default list) }}{{ range (.addresses | default list) }}{{ $api = append $api (printf "%s/32" .ip) }}{{ end }}{{ end -}}
{{- end -}}
podSelector:
  matchLabels:
    app.kubernetes.io/name: videojob-worker
    app.kubernetes.io/managed-by: videojob-operator
policyTypes: [Ingress, Egress]
egress:
  - to:
      - namespaceSelector:
          matchLabels: {{ toJson $np.dns.namespaceSelector }}
        podSelector:
          matchLabels: {{ toJson $np.dns.podSelector }}
    ports:
      - {protocol: UDP, port: 53}
      - {protocol: TCP, port: 53}
  - to:
      {{- range ($api | default (list "0.0.0.0/0")) }}
      - ipBlock: {cidr: {{ . | quote }}}
      {{- end }}
    ports:
      {{- range $np.apiServer.ports }}
      - {protocol: TCP, port: {{ . }}}
      {{- end }}
  {{- with $np.endpointCIDRs }}
  - to:
      {{- range . }}
      - ipBlock: {cidr: {{ . | quote }}}
      {{- end }}
    ports:
      - {protocol: TCP, port: 443}
  {{- end }}
  {{- with $np.extraEgress }}
  {{- toYaml . | nindent 2 }}
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
