package k8saudit_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn/internal/event"
	"github.com/cairn-audit/cairn/internal/golden"
	"github.com/cairn-audit/cairn/internal/k8saudit"
)

var mapper = k8saudit.Mapper{Cluster: "minikube", Region: "eu-west-1", AccountID: "123456789012"}

// mapOne decodes body (an Event or an EventList of one) and maps it.
func mapOne(t *testing.T, body string) *event.Record {
	t.Helper()
	items, err := k8saudit.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		t.Fatalf("%d items", len(items))
	}
	rec, err := mapper.Map(&items[0])
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// synthetic events for what the dataset lacks: impersonation, denial,
// Secret bodies, non-resource URLs, panics.
var synthetic = map[string]string{
	"impersonated_forbidden":         `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1b2c3d4-0000-4000-8000-000000000001","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/prod/secrets/db","verb":"get","user":{"username":"alice@example.com","uid":"u-alice","groups":["devs","system:authenticated"]},"impersonatedUser":{"username":"system:serviceaccount:prod:deployer","groups":["system:serviceaccounts"]},"sourceIPs":["10.0.0.7","10.0.0.1"],"userAgent":"kubectl/v1.31.0","objectRef":{"resource":"secrets","namespace":"prod","name":"db","apiVersion":"v1"},"responseStatus":{"metadata":{},"status":"Failure","message":"secrets \"db\" is forbidden: User \"system:serviceaccount:prod:deployer\" cannot get resource \"secrets\"","reason":"Forbidden","code":403},"requestReceivedTimestamp":"2024-05-01T10:00:00.123456Z","stageTimestamp":"2024-05-01T10:00:00.125000Z","annotations":{"authorization.k8s.io/decision":"forbid"}}`,
	"secret_create_request_response": `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a1b2c3d4-0000-4000-8000-000000000002","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/secrets?fieldManager=kubectl-client-side-apply","verb":"create","user":{"username":"admin","groups":["system:masters"]},"sourceIPs":["192.168.1.5"],"userAgent":"kubectl/v1.31.0","objectRef":{"resource":"secrets","namespace":"default","name":"db-pass","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestObject":{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db-pass","namespace":"default","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"password\":\"aHVudGVyMg==\"}}"}},"data":{"password":"aHVudGVyMg=="},"stringData":{"user":"root"},"type":"Opaque"},"responseObject":{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db-pass","namespace":"default","uid":"5d1c1a2b-1111-2222-3333-444455556666","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"password\":\"aHVudGVyMg==\"}}"}},"data":{"password":"aHVudGVyMg=="},"type":"Opaque"},"requestReceivedTimestamp":"2024-05-01T10:01:00.000000Z","stageTimestamp":"2024-05-01T10:01:00.010000Z"}`,
	"secret_patch":                   `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a1b2c3d4-0000-4000-8000-000000000003","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/secrets/db-pass","verb":"patch","user":{"username":"admin"},"sourceIPs":["192.168.1.5"],"objectRef":{"resource":"secrets","namespace":"default","name":"db-pass","apiVersion":"v1"},"responseStatus":{"code":200},"requestObject":{"data":{"password":"bmV3cGFzcw=="}},"responseObject":{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db-pass"},"data":{"password":"bmV3cGFzcw=="}},"stageTimestamp":"2024-05-01T10:02:00Z"}`,
	"secret_list_in_list":            `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a1b2c3d4-0000-4000-8000-000000000004","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/secrets","verb":"list","user":{"username":"system:serviceaccount:default:reader","uid":"sa-uid"},"sourceIPs":["10.1.1.1"],"objectRef":{"resource":"secrets","namespace":"default","apiVersion":"v1"},"responseStatus":{"code":200},"responseObject":{"kind":"SecretList","apiVersion":"v1","items":[{"metadata":{"name":"a"},"data":{"k":"dg=="}},{"kind":"Secret","metadata":{"name":"b"},"data":{"k":"dg=="}}]},"stageTimestamp":"2024-05-01T10:03:00Z"}`,
	"nonresource_healthz":            `{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","level":"Metadata","auditID":"a1b2c3d4-0000-4000-8000-000000000005","stage":"ResponseComplete","requestURI":"/healthz?verbose=1","verb":"get","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["127.0.0.1"],"responseStatus":{"code":200},"timestamp":"2024-05-01T10:04:00Z"}`,
	"panic_custom_resource":          `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1b2c3d4-0000-4000-8000-000000000006","stage":"Panic","requestURI":"/apis/example.com/v1/namespaces/x/widgetpolicies","verb":"deletecollection","user":{"username":"bob"},"sourceIPs":["10.2.2.2"],"objectRef":{"resource":"widgetpolicies","namespace":"x","apiGroup":"example.com","apiVersion":"v1"},"responseStatus":{"code":500,"message":"runtime error: invalid memory address"},"stageTimestamp":"2024-05-01T10:05:00Z"}`,
}

// datasetGolden are the dataset files whose records are pinned.
var datasetGolden = []string{
	"exec_pod.json",                                  // subresource, ResponseStarted, not read-only
	"create_nginx_pod_privileged.json",               // service account, v1beta1, RequestResponse
	"modify_cluster_role_node_problem_detector.json", // patch, cluster-scoped, API group
	"create_secret.json",                             // Metadata level Secret
	"create_nginx_pod_unsensitive_mount.json",        // read-only get
}

// TestGoldenRecords pins the records of representative events, byte for
// byte, so that any change of the wire mapping shows in review.
func TestGoldenRecords(t *testing.T) {
	var out bytes.Buffer
	add := func(name string, rec *event.Record) {
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, rec.Raw, "", "  "); err != nil {
			t.Fatal(err)
		}
		out.WriteString("# " + name + "\n")
		out.Write(pretty.Bytes())
		out.WriteString("\n")
	}
	for _, f := range loadDataset(t) {
		for _, g := range datasetGolden {
			if f.name == g {
				add(g, mapOne(t, string(f.events[0])))
			}
		}
	}
	for _, name := range []string{"impersonated_forbidden", "secret_create_request_response", "secret_patch",
		"secret_list_in_list", "nonresource_healthz", "panic_custom_resource"} {
		add(name, mapOne(t, synthetic[name]))
	}
	golden.Check(t, filepath.Join("testdata", "records.golden"), out.Bytes())
}

func TestSecretDataNeverInRecords(t *testing.T) {
	for _, name := range []string{"secret_create_request_response", "secret_patch", "secret_list_in_list"} {
		rec := mapOne(t, synthetic[name])
		for _, leak := range []string{"aHVudGVyMg==", "bmV3cGFzcw==", "dg==", `"root"`} {
			if bytes.Contains(rec.Raw, []byte(leak)) {
				t.Errorf("%s: the record carries Secret data %s: %s", name, leak, rec.Raw)
			}
		}
		if !bytes.Contains(rec.Raw, []byte(k8saudit.Redacted)) {
			t.Errorf("%s: nothing marked redacted: %s", name, rec.Raw)
		}
	}
	// A Secret inside a List posted to another resource is redacted too.
	ev := strings.Replace(synthetic["secret_patch"], `"resource":"secrets"`, `"resource":"configmaps"`, 1)
	ev = strings.Replace(ev, `"requestObject":{"data":{"password":"bmV3cGFzcw=="}}`,
		`"requestObject":{"kind":"List","items":[{"kind":"Secret","data":{"password":"bmV3cGFzcw=="}}]}`, 1)
	if rec := mapOne(t, ev); bytes.Contains(rec.Raw, []byte("bmV3cGFzcw==")) {
		t.Errorf("Secret in a List leaked: %s", rec.Raw)
	}
}

func TestIdentityAndErrors(t *testing.T) {
	rec := mapOne(t, synthetic["impersonated_forbidden"])
	var r struct {
		UserIdentity struct {
			Type, UserName, ARN string
			SessionContext      struct {
				SessionIssuer struct{ Type, UserName, PrincipalID string }
			}
		}
		ErrorCode, ErrorMessage string
		ReadOnly                bool
	}
	if err := json.Unmarshal(rec.Raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.UserIdentity.Type != "WebIdentityUser" || r.UserIdentity.UserName != "system:serviceaccount:prod:deployer" ||
		r.UserIdentity.ARN != "arn:cairn:kubernetes:eu-west-1:123456789012:cluster/minikube/serviceaccount/prod/deployer" {
		t.Errorf("effective identity %+v", r.UserIdentity)
	}
	if is := r.UserIdentity.SessionContext.SessionIssuer; is.Type != "Unknown" || is.UserName != "alice@example.com" || is.PrincipalID != "u-alice" {
		t.Errorf("impersonator %+v", is)
	}
	if rec.Username != "system:serviceaccount:prod:deployer" {
		t.Errorf("LookupEvents Username %q", rec.Username)
	}
	if r.ErrorCode != "Forbidden" || !strings.Contains(r.ErrorMessage, "cannot get resource") || !r.ReadOnly {
		t.Errorf("error %q %q readOnly %v", r.ErrorCode, r.ErrorMessage, r.ReadOnly)
	}
	if rec := mapOne(t, synthetic["panic_custom_resource"]); rec.ErrorCode != "InternalError" || rec.EventName != "DeleteCollectionWidgetpolicies" {
		t.Errorf("panic: %s %s", rec.ErrorCode, rec.EventName)
	}
}

func TestEventName(t *testing.T) {
	for _, c := range []struct {
		verb, resource, sub, want string
	}{
		{"create", "pods", "", "CreatePod"},
		{"get", "pods", "", "GetPod"},
		{"list", "pods", "", "ListPods"},
		{"watch", "pods", "", "WatchPods"},
		{"delete", "pods", "", "DeletePod"},
		{"deletecollection", "pods", "", "DeleteCollectionPods"},
		{"patch", "deployments", "", "PatchDeployment"},
		{"update", "deployments", "scale", "UpdateDeploymentScale"},
		{"create", "pods", "exec", "CreatePodExec"},
		{"get", "pods", "portforward", "GetPodPortForward"},
		{"get", "pods", "log", "GetPodLog"},
		{"list", "networkpolicies", "", "ListNetworkPolicies"},
		{"get", "networkpolicies", "", "GetNetworkPolicy"},
		{"get", "endpoints", "", "GetEndpoints"},
		{"list", "endpoints", "", "ListEndpoints"},
		{"create", "ingresses", "", "CreateIngress"},
		{"create", "clusterroles", "", "CreateClusterRole"},
		{"create", "storageclasses", "", "CreateStorageClass"},
		{"create", "widgets", "", "CreateWidget"},
		{"get", "widgetpolicies", "", "GetWidgetpolicy"},
		{"list", "my-gadgets", "", "ListMyGadgets"},
		{"create", "gadgetclasses", "", "CreateGadgetclass"},
		{"approve", "certificatesigningrequests", "approval", "ApproveCertificateSigningRequestApproval"},
		{"get", "", "", "GetNonResourceURL"},
		{"post", "", "", "PostNonResourceURL"},
	} {
		var ref *k8saudit.ObjectReference
		if c.resource != "" {
			ref = &k8saudit.ObjectReference{Resource: c.resource, Subresource: c.sub}
		}
		if got := k8saudit.EventName(c.verb, ref); got != c.want {
			t.Errorf("%s %s/%s: %s, want %s", c.verb, c.resource, c.sub, got, c.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	ok := `{"auditID":"x","stage":"ResponseComplete","verb":"get","requestURI":"/api","user":{"username":"u"},"stageTimestamp":"2024-01-01T00:00:00Z"}`
	for _, c := range []struct{ body, want string }{
		{``, "empty body"},
		{`[]`, "not a JSON object"},
		{`{"kind":"EventList"`, "not valid JSON"},
		{`{"kind":7}`, "kind: want a string, got a number"},
		{`{"kind":"PodList"}`, `kind "PodList": want "EventList"`},
		{`{"items":[]}`, "kind missing"},
		{`{"kind":"EventList","apiVersion":"audit.k8s.io/v2","items":[]}`, `apiVersion "audit.k8s.io/v2"`},
		{`{"kind":"EventList","items":{}}`, "EventList: items: want an array"},
		{`{"kind":"EventList","items":[` + ok + `,7]}`, "items[1]: not a JSON object"},
		{`{"kind":"EventList","items":[{"kind":0}]}`, "items[0]: kind: want a string, got a JSON number"},
		{`{"kind":"EventList","items":[{"kind":"Pod"}]}`, `items[0]: kind "Pod": want "Event"`},
		{`{"kind":"EventList","items":[{"auditID":"abc","user":"bob"}]}`, `items[0] (auditID "abc"): user: want an object, got a JSON string`},
		{`{"kind":"EventList","items":[{"auditID":"abc"}]}`, `items[0] (auditID "abc"): missing stage, verb, requestURI, user.username, stageTimestamp`},
		{`{"kind":"EventList","items":[` + strings.Replace(ok, "ResponseComplete", "Done", 1) + `]}`, `stage "Done": want one of`},
		{`{"kind":"EventList","items":[` + strings.Replace(ok, `"get"`, `"GET now"`, 1) + `]}`, `verb "GET now"`},
		{`{"kind":"EventList","items":[` + strings.Replace(ok, `"verb"`, `"objectRef":{"resource":"Pods!"},"verb"`, 1) + `]}`, `objectRef.resource "Pods!"`},
		{`{"kind":"EventList","items":[` + strings.Replace(ok, `"verb"`, `"requestObject":"x","verb"`, 1) + `]}`, `requestObject: want a JSON object (or a JSON Patch array)`},
		{`{"kind":"EventList","items":[` + strings.Replace(ok, `"verb"`, `"impersonatedUser":{},"verb"`, 1) + `]}`, `impersonatedUser without username`},
		// A member given twice names two values: refused, not last-wins.
		{`{"kind":"EventList","items":[` + strings.Replace(ok, `"verb":"get"`, `"verb":"get","verb":"delete"`, 1) + `]}`, `Member items[0].verb appears more than once`},
		{`{"kind":"EventList","items":[` + strings.Replace(ok, `"user":{"username":"u"}`, `"user":{"username":"u","username":"admin"}`, 1) + `]}`, `Member items[0].user.username appears more than once`},
		{`{"kind":"EventList","items":[],"items":[` + ok + `]}`, `Member items appears more than once`},
	} {
		_, err := k8saudit.Decode([]byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%.60s) = %v, want an error containing %q", c.body, err, c.want)
		}
	}
	items, err := k8saudit.Decode([]byte(ok))
	if err != nil || len(items) != 1 {
		t.Fatalf("a single Event: %v", err)
	}
	// Member names match exactly, as the API server's own decoder does:
	// a wrong-case member is not the member and cannot change the record.
	wrongCase := `{"kind":"EventList","Items":[7],"items":[` +
		strings.Replace(ok, `"verb":"get"`, `"verb":"get","Verb":"delete","User":{"username":"admin"}`, 1) + `]}`
	items, err = k8saudit.Decode([]byte(wrongCase))
	if err != nil || len(items) != 1 || items[0].Event.Verb != "get" || items[0].Event.User.Username != "u" {
		t.Fatalf("wrong-case members: %+v, %v; want verb get by u", items, err)
	}
}
