{{/* Full name of the release's objects. */}}
{{- define "ember-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ember-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ember-operator.labels" -}}
{{ include "ember-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ember-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ember-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Rules the operator needs wherever it runs applications. Driver and executor pods get no API rights. */}}
{{- define "ember-operator.appRules" -}}
- apiGroups: ["ember.dev"]
  resources: ["sparkapplications"]
  # delete: timeToLiveSeconds and run history limits; create: a ScheduledSparkApplication's runs
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: ["ember.dev"]
  resources: ["scheduledsparkapplications"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["ember.dev"]
  resources: ["sparkapplications/status", "scheduledsparkapplications/status"]
  verbs: ["get", "patch"]
# Owner references with blockOwnerDeletion: the OwnerReferencesPermissionEnforcement
# admission plugin (OpenShift enables it) requires update on the owner's finalizers.
- apiGroups: ["ember.dev"]
  resources: ["sparkapplications/finalizers", "scheduledsparkapplications/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["pods"]
  # create (+get on a name conflict), patch: server-side apply; deletecollection: executors at the end of a run
  verbs: ["get", "list", "watch", "create", "patch", "delete", "deletecollection"]
- apiGroups: [""]
  resources: ["services"]
  # the driver's headless Service, its UI Service (<app>-ui-svc), driverIngressOptions Services;
  # delete: those of a submission that failed half-way
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  # the UI Ingress (--ingress-url-format) and driverIngressOptions Ingresses
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  # create only: the spark.authenticate Secret of an application (<app>-auth);
  # the operator can read no Secret
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
