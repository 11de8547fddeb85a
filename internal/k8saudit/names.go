package k8saudit

import "strings"

// kindNames are the built-in resources whose names cannot be camel-cased
// from their lowercase plural alone: the plural resource name mapped to the
// singular and plural words used in eventNames ("networkpolicies" ->
// NetworkPolicy / NetworkPolicies). Resources not listed (custom resources)
// fall back to singularise(capitalise(resource)).
var kindNames = map[string][2]string{
	"bindings":                        {"Binding", "Bindings"},
	"componentstatuses":               {"ComponentStatus", "ComponentStatuses"},
	"configmaps":                      {"ConfigMap", "ConfigMaps"},
	"endpoints":                       {"Endpoints", "Endpoints"},
	"events":                          {"Event", "Events"},
	"limitranges":                     {"LimitRange", "LimitRanges"},
	"namespaces":                      {"Namespace", "Namespaces"},
	"nodes":                           {"Node", "Nodes"},
	"persistentvolumeclaims":          {"PersistentVolumeClaim", "PersistentVolumeClaims"},
	"persistentvolumes":               {"PersistentVolume", "PersistentVolumes"},
	"pods":                            {"Pod", "Pods"},
	"podtemplates":                    {"PodTemplate", "PodTemplates"},
	"replicationcontrollers":          {"ReplicationController", "ReplicationControllers"},
	"resourcequotas":                  {"ResourceQuota", "ResourceQuotas"},
	"secrets":                         {"Secret", "Secrets"},
	"serviceaccounts":                 {"ServiceAccount", "ServiceAccounts"},
	"services":                        {"Service", "Services"},
	"mutatingwebhookconfigurations":   {"MutatingWebhookConfiguration", "MutatingWebhookConfigurations"},
	"validatingwebhookconfigurations": {"ValidatingWebhookConfiguration", "ValidatingWebhookConfigurations"},
	"validatingadmissionpolicies":     {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicies"},
	"validatingadmissionpolicybindings": {"ValidatingAdmissionPolicyBinding",
		"ValidatingAdmissionPolicyBindings"},
	"customresourcedefinitions":   {"CustomResourceDefinition", "CustomResourceDefinitions"},
	"apiservices":                 {"APIService", "APIServices"},
	"controllerrevisions":         {"ControllerRevision", "ControllerRevisions"},
	"daemonsets":                  {"DaemonSet", "DaemonSets"},
	"deployments":                 {"Deployment", "Deployments"},
	"replicasets":                 {"ReplicaSet", "ReplicaSets"},
	"statefulsets":                {"StatefulSet", "StatefulSets"},
	"tokenreviews":                {"TokenReview", "TokenReviews"},
	"tokenrequests":               {"TokenRequest", "TokenRequests"},
	"localsubjectaccessreviews":   {"LocalSubjectAccessReview", "LocalSubjectAccessReviews"},
	"selfsubjectaccessreviews":    {"SelfSubjectAccessReview", "SelfSubjectAccessReviews"},
	"selfsubjectrulesreviews":     {"SelfSubjectRulesReview", "SelfSubjectRulesReviews"},
	"selfsubjectreviews":          {"SelfSubjectReview", "SelfSubjectReviews"},
	"subjectaccessreviews":        {"SubjectAccessReview", "SubjectAccessReviews"},
	"horizontalpodautoscalers":    {"HorizontalPodAutoscaler", "HorizontalPodAutoscalers"},
	"cronjobs":                    {"CronJob", "CronJobs"},
	"jobs":                        {"Job", "Jobs"},
	"certificatesigningrequests":  {"CertificateSigningRequest", "CertificateSigningRequests"},
	"leases":                      {"Lease", "Leases"},
	"endpointslices":              {"EndpointSlice", "EndpointSlices"},
	"flowschemas":                 {"FlowSchema", "FlowSchemas"},
	"prioritylevelconfigurations": {"PriorityLevelConfiguration", "PriorityLevelConfigurations"},
	"ingressclasses":              {"IngressClass", "IngressClasses"},
	"ingresses":                   {"Ingress", "Ingresses"},
	"networkpolicies":             {"NetworkPolicy", "NetworkPolicies"},
	"runtimeclasses":              {"RuntimeClass", "RuntimeClasses"},
	"poddisruptionbudgets":        {"PodDisruptionBudget", "PodDisruptionBudgets"},
	"podsecuritypolicies":         {"PodSecurityPolicy", "PodSecurityPolicies"},
	"clusterrolebindings":         {"ClusterRoleBinding", "ClusterRoleBindings"},
	"clusterroles":                {"ClusterRole", "ClusterRoles"},
	"rolebindings":                {"RoleBinding", "RoleBindings"},
	"roles":                       {"Role", "Roles"},
	"priorityclasses":             {"PriorityClass", "PriorityClasses"},
	"csidrivers":                  {"CSIDriver", "CSIDrivers"},
	"csinodes":                    {"CSINode", "CSINodes"},
	"csistoragecapacities":        {"CSIStorageCapacity", "CSIStorageCapacities"},
	"storageclasses":              {"StorageClass", "StorageClasses"},
	"volumeattachments":           {"VolumeAttachment", "VolumeAttachments"},
	"volumeattributesclasses":     {"VolumeAttributesClass", "VolumeAttributesClasses"},
	"resourceclaims":              {"ResourceClaim", "ResourceClaims"},
	"resourceclaimtemplates":      {"ResourceClaimTemplate", "ResourceClaimTemplates"},
	"deviceclasses":               {"DeviceClass", "DeviceClasses"},
	"resourceslices":              {"ResourceSlice", "ResourceSlices"},
	"podsecuritypolicyreviews":    {"PodSecurityPolicyReview", "PodSecurityPolicyReviews"},
	"servicecidrs":                {"ServiceCIDR", "ServiceCIDRs"},
	"ipaddresses":                 {"IPAddress", "IPAddresses"},
	"clustertrustbundles":         {"ClusterTrustBundle", "ClusterTrustBundles"},
	"storageversions":             {"StorageVersion", "StorageVersions"},
	"storageversionmigrations":    {"StorageVersionMigration", "StorageVersionMigrations"},
	"mutatingadmissionpolicies":   {"MutatingAdmissionPolicy", "MutatingAdmissionPolicies"},
	"mutatingadmissionpolicybindings": {"MutatingAdmissionPolicyBinding",
		"MutatingAdmissionPolicyBindings"},
}

// subresourceNames spell the subresources whose lowercase names hide words.
var subresourceNames = map[string]string{
	"portforward":         "PortForward",
	"ephemeralcontainers": "EphemeralContainers",
}

// kindWords returns the singular and plural words of a resource for
// eventNames: the built-in spelling when known, else the resource name
// with its first letter (and each letter after '-' or '.') upper-cased and
// a simple English singular (widgets -> Widget, policies -> Policy,
// classes -> Class).
func kindWords(resource string) (singular, plural string) {
	if w, ok := kindNames[resource]; ok {
		return w[0], w[1]
	}
	plural = camel(resource)
	return singularise(plural), plural
}

// subresourceWord is the subresource as it appears in eventNames ("exec" -> "Exec").
func subresourceWord(sub string) string {
	if w, ok := subresourceNames[sub]; ok {
		return w
	}
	return camel(sub)
}

// camel upper-cases the first letter and each letter after '-' or '.',
// dropping those separators ("my-widgets" -> "MyWidgets").
func camel(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	up := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == '.' {
			up = true
			continue
		}
		if up && c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up = false
		b.WriteByte(c)
	}
	return b.String()
}

// singularise strips an English plural ending; it is only used for
// resources Kubernetes does not ship, whose kind the audit event does not
// carry.
func singularise(p string) string {
	switch {
	case strings.HasSuffix(p, "ies") && len(p) > 3:
		return p[:len(p)-3] + "y"
	case strings.HasSuffix(p, "sses"), strings.HasSuffix(p, "xes"), strings.HasSuffix(p, "ches"),
		strings.HasSuffix(p, "shes"), strings.HasSuffix(p, "zes"):
		return p[:len(p)-2]
	case strings.HasSuffix(p, "ss"), strings.HasSuffix(p, "us"), strings.HasSuffix(p, "is"):
		return p
	case strings.HasSuffix(p, "s") && len(p) > 1:
		return p[:len(p)-1]
	}
	return p
}

// verbWord is the verb as it leads an eventName, and whether the eventName
// takes the plural (collection verbs).
func verbWord(verb string) (word string, plural bool) {
	switch verb {
	case "get":
		return "Get", false
	case "list":
		return "List", true
	case "watch":
		return "Watch", true
	case "create":
		return "Create", false
	case "update":
		return "Update", false
	case "patch":
		return "Patch", false
	case "delete":
		return "Delete", false
	case "deletecollection":
		return "DeleteCollection", true
	}
	return camel(verb), false
}

// EventName is the CloudTrail-style eventName of an audit event: the verb
// and the resource kind, singular for verbs on one object and plural for
// verbs on collections, followed by the subresource ("create pods/exec" ->
// "CreatePodExec"). Requests for non-resource URLs (/healthz, /version,
// /apis) are "<Verb>NonResourceURL", where the verb is the HTTP method.
func EventName(verb string, ref *ObjectReference) string {
	if ref == nil || ref.Resource == "" {
		return camel(verb) + "NonResourceURL"
	}
	v, plural := verbWord(verb)
	one, many := kindWords(ref.Resource)
	noun := one
	if plural && ref.Subresource == "" {
		noun = many
	}
	name := v + noun
	if ref.Subresource != "" {
		name += subresourceWord(ref.Subresource)
	}
	return name
}

// readOnlyVerbs are the verbs that do not change the cluster.
func isReadOnly(verb string, ref *ObjectReference) bool {
	if ref != nil && ref.Resource != "" {
		switch ref.Subresource {
		// Reached with "get" over websockets, but they run commands or
		// open connections into the pod: never read-only.
		case "exec", "attach", "portforward", "proxy":
			return false
		}
		switch verb {
		case "get", "list", "watch":
			return true
		}
		return false
	}
	switch verb { // non-resource requests carry the HTTP method
	case "get", "head", "options":
		return true
	}
	return false
}
