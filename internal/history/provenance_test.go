package history

import (
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/internal/event"
)

// An import's range must hold when the history indexes its header and its
// records in different batches (one entry per batch here), and a
// header-shaped record inside an import must not start a new one.
func TestImportProvenanceAcrossBatches(t *testing.T) {
	e := newEnv(t, Options{BatchEntries: 1})
	now := time.Now().UTC()
	header, err := event.APICall{Time: now, Source: event.ImportEventSource, Name: event.ImportEventName, Region: "us-east-1",
		RecipientAccountID: "000000000000", Identity: event.UserIdentity{Type: "IAMUser", AccessKeyID: "AKIAADMIN"},
		AdditionalEventData: event.ImportHeaderData("imp-1", 3, strings.Repeat("a", 64))}.Record()
	if err != nil {
		t.Fatal(err)
	}
	forged, err := event.APICall{Time: now, Source: event.ImportEventSource, Name: event.ImportEventName, Region: "us-east-1",
		EventID: "forged", RecipientAccountID: "000000000000", Identity: event.UserIdentity{Type: "IAMUser", AccessKeyID: "AKIAFORGED"},
		AdditionalEventData: event.ImportHeaderData("forged", 2, strings.Repeat("b", 64))}.Record()
	if err != nil {
		t.Fatal(err)
	}
	e.append(mgmt("before", now).json(), header.Raw, mgmt("imp-a", now).json(), mgmt("imp-b", now).json(), forged.Raw,
		mgmt("after-1", now).json(), mgmt("after-2", now).json())
	want := map[string]string{"before": "", "imp-a": "imp-1", "imp-b": "imp-1", "forged": "imp-1", "after-1": "", "after-2": "", header.EventID: ""}
	for id, imp := range want {
		p := e.lookup(Query{Region: "us-east-1", Attributes: []Attribute{{Key: event.AttrEventID, Value: id}}})
		if len(p.Events) != 1 {
			t.Fatalf("%s: %d events", id, len(p.Events))
		}
		got := ""
		if pr := p.Events[0].Import; pr != nil {
			got = pr.ImportID
			if pr.AccessKeyID != "AKIAADMIN" || pr.Records != 3 {
				t.Errorf("%s: provenance %+v", id, *pr)
			}
		}
		if got != imp {
			t.Errorf("%s: import %q, want %q", id, got, imp)
		}
	}
	// The time plan (no attributes) reports the same.
	for _, ev := range e.lookup(Query{Region: "us-east-1"}).Events {
		got := ""
		if ev.Import != nil {
			got = ev.Import.ImportID
		}
		if got != want[ev.EventID] {
			t.Errorf("time plan: %s: import %q, want %q", ev.EventID, got, want[ev.EventID])
		}
	}
}
