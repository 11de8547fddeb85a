package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cairn-audit/cairn/internal/awsproto"
	"github.com/cairn-audit/cairn/internal/selector"
	"github.com/cairn-audit/cairn/internal/trail"
)

// trailForm is the create-trail wizard and the edit form: every option the
// CloudTrail console offers, as the form posts it.
type trailForm struct {
	Name            string
	MultiRegion     bool
	BucketMode      string // "existing" or "new"
	Bucket          string
	NewBucket       string
	Prefix          string
	KMS             string
	Validation      bool
	SNS             string
	Global          bool
	Mgmt            bool
	MgmtRW          string // All, ReadOnly, WriteOnly
	ExcludeKMS      bool
	ExcludeRDSData  bool
	DataS3          bool
	DataS3Values    string
	DataLambda      bool
	DataLambdaVals  string
	SelectorMode    string // "basic" or "advanced"
	Advanced        string // AdvancedEventSelectors as JSON
	TagKeys, TagVal []string
}

// formErrors are messages by field name ("" for the form as a whole).
type formErrors map[string]string

func defaultTrailForm() trailForm {
	return trailForm{MultiRegion: true, BucketMode: "existing", Validation: true, Global: true, Mgmt: true, MgmtRW: "All", SelectorMode: "basic",
		TagKeys: make([]string, 3), TagVal: make([]string, 3)}
}

func parseTrailForm(r *http.Request) trailForm {
	on := func(k string) bool { return r.PostFormValue(k) == "on" }
	f := trailForm{
		Name:           strings.TrimSpace(r.PostFormValue("name")),
		MultiRegion:    on("multi_region"),
		BucketMode:     r.PostFormValue("bucket_mode"),
		Bucket:         r.PostFormValue("bucket"),
		NewBucket:      strings.TrimSpace(r.PostFormValue("new_bucket")),
		Prefix:         strings.TrimSpace(r.PostFormValue("prefix")),
		KMS:            strings.TrimSpace(r.PostFormValue("kms")),
		Validation:     on("validation"),
		SNS:            strings.TrimSpace(r.PostFormValue("sns")),
		Global:         on("global"),
		Mgmt:           on("mgmt"),
		MgmtRW:         r.PostFormValue("mgmt_rw"),
		ExcludeKMS:     on("exclude_kms"),
		ExcludeRDSData: on("exclude_rdsdata"),
		DataS3:         on("data_s3"),
		DataS3Values:   r.PostFormValue("data_s3_values"),
		DataLambda:     on("data_lambda"),
		DataLambdaVals: r.PostFormValue("data_lambda_values"),
		SelectorMode:   r.PostFormValue("selector_mode"),
		Advanced:       r.PostFormValue("advanced"),
		TagKeys:        r.PostForm["tag_key"],
		TagVal:         r.PostForm["tag_value"],
	}
	if f.BucketMode != "new" {
		f.BucketMode = "existing"
	}
	if f.SelectorMode != "advanced" {
		f.SelectorMode = "basic"
	}
	if !slices.Contains([]string{"All", "ReadOnly", "WriteOnly"}, f.MgmtRW) {
		f.MgmtRW = "All"
	}
	for len(f.TagKeys) < 3 {
		f.TagKeys = append(f.TagKeys, "")
	}
	for len(f.TagVal) < len(f.TagKeys) {
		f.TagVal = append(f.TagVal, "")
	}
	return f
}

// formFromTrail fills the edit form from a stored trail.
func formFromTrail(t trail.Trail) trailForm {
	f := defaultTrailForm()
	f.Name, f.MultiRegion, f.Bucket, f.Prefix = t.Name, t.IsMultiRegionTrail, t.S3BucketName, t.S3KeyPrefix
	f.KMS, f.Validation, f.SNS, f.Global = t.KmsKeyId, t.LogFileValidationEnabled, t.SnsTopicName, t.IncludeGlobalServiceEvents
	basic, advanced := t.Selectors()
	if len(advanced) > 0 {
		f.SelectorMode = "advanced"
		b, _ := json.MarshalIndent(advanced, "", "  ")
		f.Advanced = string(b)
		return f
	}
	f.Mgmt = false
	for _, s := range basic {
		if s.IncludeManagementEvents == nil || *s.IncludeManagementEvents {
			f.Mgmt = true
			if s.ReadWriteType != nil {
				f.MgmtRW = *s.ReadWriteType
			}
			f.ExcludeKMS = slices.Contains(s.ExcludeManagementEventSources, "kms.amazonaws.com")
			f.ExcludeRDSData = slices.Contains(s.ExcludeManagementEventSources, "rdsdata.amazonaws.com")
		}
		for _, d := range s.DataResources {
			if d.Type == nil {
				continue
			}
			switch *d.Type {
			case "AWS::S3::Object":
				f.DataS3, f.DataS3Values = true, strings.Join(d.Values, "\n")
			case "AWS::Lambda::Function":
				f.DataLambda, f.DataLambdaVals = true, strings.Join(d.Values, "\n")
			}
		}
	}
	return f
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// selectorsBody is PutEventSelectors' request for the form, or nil when
// the form asks for CloudTrail's default selection (all management events).
func (f trailForm) selectorsBody(trailARN string) (map[string]any, error) {
	if f.SelectorMode == "advanced" {
		var adv []selector.AdvancedEventSelector
		if err := json.Unmarshal([]byte(f.Advanced), &adv); err != nil {
			return nil, fmt.Errorf("the advanced event selectors must be a JSON array of selectors: %v", err)
		}
		return map[string]any{"TrailName": trailARN, "AdvancedEventSelectors": adv}, nil
	}
	rw := f.MgmtRW
	sel := selector.EventSelector{ReadWriteType: &rw, IncludeManagementEvents: &f.Mgmt, DataResources: []selector.DataResource{}, ExcludeManagementEventSources: []string{}}
	if f.Mgmt && f.ExcludeKMS {
		sel.ExcludeManagementEventSources = append(sel.ExcludeManagementEventSources, "kms.amazonaws.com")
	}
	if f.Mgmt && f.ExcludeRDSData {
		sel.ExcludeManagementEventSources = append(sel.ExcludeManagementEventSources, "rdsdata.amazonaws.com")
	}
	if f.DataS3 {
		vals := lines(f.DataS3Values)
		if len(vals) == 0 {
			vals = []string{"arn:aws:s3"}
		}
		t := "AWS::S3::Object"
		sel.DataResources = append(sel.DataResources, selector.DataResource{Type: &t, Values: vals})
	}
	if f.DataLambda {
		vals := lines(f.DataLambdaVals)
		if len(vals) == 0 {
			vals = []string{"arn:aws:lambda"}
		}
		t := "AWS::Lambda::Function"
		sel.DataResources = append(sel.DataResources, selector.DataResource{Type: &t, Values: vals})
	}
	if f.Mgmt && rw == "All" && len(sel.DataResources) == 0 && len(sel.ExcludeManagementEventSources) == 0 {
		return nil, nil
	}
	return map[string]any{"TrailName": trailARN, "EventSelectors": []selector.EventSelector{sel}}, nil
}

// fieldFor guesses which field an API validation message is about, so it
// can be shown next to it; it is shown at the top of the form too.
func fieldFor(code, msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(code, "Bucket") || strings.Contains(m, "bucket"):
		return "bucket"
	case strings.Contains(code, "Kms") || strings.Contains(m, "kms"):
		return "kms"
	case strings.Contains(code, "Sns") || strings.Contains(m, "topic"):
		return "sns"
	case strings.Contains(code, "Prefix") || strings.Contains(m, "prefix"):
		return "prefix"
	case strings.Contains(code, "Selector") || strings.Contains(m, "selector"):
		return "selectors"
	case strings.Contains(code, "Tag") || strings.Contains(m, "tag"):
		return "tags"
	case strings.Contains(code, "TrailName") || strings.Contains(code, "TrailAlreadyExists") || strings.Contains(m, "trail name"):
		return "name"
	}
	return ""
}

type trailFormData struct {
	Form    trailForm
	Errors  formErrors
	Buckets []string
	Edit    bool
	Action  string
	Trail   *trail.Trail
}

func (c *Console) trailNewPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.renderTrailForm(w, r, s, http.StatusOK, defaultTrailForm(), nil, nil)
}

func (c *Console) renderTrailForm(w http.ResponseWriter, r *http.Request, s *session, status int, f trailForm, errs formErrors, t *trail.Trail) {
	buckets, err := c.be.Buckets(r.Context())
	if err != nil {
		c.log.Warn("console: list buckets", "err", err)
	}
	d := trailFormData{Form: f, Errors: errs, Buckets: buckets, Edit: t != nil, Action: Prefix + "trails/new", Trail: t}
	title := "Create trail"
	if t != nil {
		d.Action = trailURL(*t) + "/edit"
		title = "Edit trail " + t.Name
	}
	c.render(w, r, status, "trail_form", view{Title: title, Nav: "trails", Error: errs[""], Data: d})
}

func trailURL(t trail.Trail) string {
	return Prefix + "trails/" + url.PathEscape(t.HomeRegion) + "/" + url.PathEscape(t.Name)
}

// apiError splits an operation's error into the field it concerns and
// the API's own message.
func apiError(err error) (string, string) {
	e := awsproto.AsError(err)
	msg := e.Message
	if msg == "" {
		msg = e.Code
	}
	return fieldFor(e.Code, msg), msg
}

func (c *Console) call(r *http.Request, s *session, region, op string, body any) ([]byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s request: %w", op, err)
	}
	return c.be.Call(r.Context(), Call{Caller: s.Caller(), Meta: meta(r), Region: region, Operation: op, Body: raw})
}

func (c *Console) trailCreate(w http.ResponseWriter, r *http.Request, s *session) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	f := parseTrailForm(r)
	region := s.Region()
	errs := formErrors{}
	fail := func(field, msg string) {
		errs[field] = msg
		if field != "" {
			errs[""] = "The trail was not created: " + msg
		}
		c.renderTrailForm(w, r, s, http.StatusBadRequest, f, errs, nil)
	}
	bucket := f.Bucket
	if f.BucketMode == "new" {
		bucket = f.NewBucket
		if bucket == "" {
			fail("bucket", "Enter a name for the new bucket.")
			return
		}
	}
	if f.SelectorMode == "advanced" {
		if _, err := f.selectorsBody(""); err != nil {
			fail("selectors", err.Error())
			return
		}
	}
	in := map[string]any{
		"Name": f.Name, "S3BucketName": bucket, "IsMultiRegionTrail": f.MultiRegion,
		"EnableLogFileValidation": f.Validation, "IncludeGlobalServiceEvents": f.Global,
	}
	if f.Prefix != "" {
		in["S3KeyPrefix"] = f.Prefix
	}
	if f.KMS != "" {
		in["KmsKeyId"] = f.KMS
	}
	if f.SNS != "" {
		in["SnsTopicName"] = f.SNS
	}
	var tags []map[string]string
	for i, k := range f.TagKeys {
		if k = strings.TrimSpace(k); k != "" {
			tags = append(tags, map[string]string{"Key": k, "Value": strings.TrimSpace(f.TagVal[i])})
		}
	}
	if len(tags) > 0 {
		in["TagsList"] = tags
	}
	if f.BucketMode == "new" {
		if err := c.be.CreateBucket(r.Context(), s.Caller(), meta(r), region, bucket); err != nil {
			_, msg := apiError(err)
			fail("bucket", msg)
			return
		}
		f.BucketMode, f.Bucket = "existing", bucket
	}
	out, err := c.call(r, s, region, "CreateTrail", in)
	if err != nil {
		fail(apiError(err))
		return
	}
	var created struct{ TrailARN string }
	_ = json.Unmarshal(out, &created)
	t := trail.Trail{Name: f.Name, HomeRegion: region}
	// The trail exists from here on; what follows is reported on its page
	// rather than by pretending the creation failed.
	var later []string
	if body, err := f.selectorsBody(created.TrailARN); err != nil {
		later = append(later, err.Error())
	} else if body != nil {
		if _, err := c.call(r, s, region, "PutEventSelectors", body); err != nil {
			_, msg := apiError(err)
			later = append(later, "Event selectors were not saved: "+msg)
		}
	}
	// The CloudTrail console starts logging as soon as it creates a trail.
	if _, err := c.call(r, s, region, "StartLogging", map[string]string{"Name": created.TrailARN}); err != nil {
		_, msg := apiError(err)
		later = append(later, "Logging was not started: "+msg)
	}
	if len(later) > 0 {
		s.setFlash("Trail created, but: "+strings.Join(later, " "), true)
	} else {
		s.setFlash("Trail "+f.Name+" created; logging started.", false)
	}
	http.Redirect(w, r, trailURL(t), http.StatusSeeOther)
}

// trailFrom finds the trail the path names.
func (c *Console) trailFrom(w http.ResponseWriter, r *http.Request) (trail.Trail, bool) {
	region, name := r.PathValue("region"), r.PathValue("name")
	all, err := c.be.Trails(r.Context())
	if err != nil {
		c.log.Error("console: list trails", "err", err)
		http.Error(w, "could not read the trails", http.StatusInternalServerError)
		return trail.Trail{}, false
	}
	for _, t := range all {
		if t.HomeRegion == region && t.Name == name {
			return t, true
		}
	}
	c.render(w, r, http.StatusNotFound, "error", view{Title: "Trail not found", Nav: "trails", Error: fmt.Sprintf("There is no trail %q in %s.", name, region)})
	return trail.Trail{}, false
}

func (c *Console) trailEditPage(w http.ResponseWriter, r *http.Request, s *session) {
	t, ok := c.trailFrom(w, r)
	if !ok {
		return
	}
	c.renderTrailForm(w, r, s, http.StatusOK, formFromTrail(t), nil, &t)
}

func (c *Console) trailUpdate(w http.ResponseWriter, r *http.Request, s *session) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	t, ok := c.trailFrom(w, r)
	if !ok {
		return
	}
	f := parseTrailForm(r)
	f.Name = t.Name
	errs := formErrors{}
	fail := func(field, msg string) {
		errs[field] = msg
		errs[""] = "Not saved: " + msg
		c.renderTrailForm(w, r, s, http.StatusBadRequest, f, errs, &t)
	}
	bucket := f.Bucket
	if f.BucketMode == "new" {
		bucket = f.NewBucket
		if err := c.be.CreateBucket(r.Context(), s.Caller(), meta(r), t.HomeRegion, bucket); err != nil {
			_, msg := apiError(err)
			fail("bucket", msg)
			return
		}
	}
	sels, err := f.selectorsBody(t.ARN())
	if err != nil {
		fail("selectors", err.Error())
		return
	}
	in := map[string]any{
		"Name": t.ARN(), "S3BucketName": bucket, "S3KeyPrefix": f.Prefix, "SnsTopicName": f.SNS, "KmsKeyId": f.KMS,
		"IsMultiRegionTrail": f.MultiRegion, "EnableLogFileValidation": f.Validation, "IncludeGlobalServiceEvents": f.Global,
	}
	if _, err := c.call(r, s, t.HomeRegion, "UpdateTrail", in); err != nil {
		fail(apiError(err))
		return
	}
	if sels == nil {
		// Back to the default selection, unless it is already in effect.
		if t.HasCustomEventSelectors {
			sels = map[string]any{"TrailName": t.ARN(), "EventSelectors": selector.Default()}
		}
	}
	if sels != nil {
		if _, err := c.call(r, s, t.HomeRegion, "PutEventSelectors", sels); err != nil {
			// UpdateTrail is in effect (and recorded) by now: say so rather
			// than "Not saved", which would hide a change that was made.
			field, msg := apiError(err)
			if field == "" {
				field = "selectors"
			}
			errs[field] = msg
			errs[""] = "The trail's settings were saved, but its event selectors were not: " + msg
			c.renderTrailForm(w, r, s, http.StatusBadRequest, f, errs, &t)
			return
		}
	}
	s.setFlash("Changes saved.", false)
	http.Redirect(w, r, trailURL(t), http.StatusSeeOther)
}

func (c *Console) trailLogging(w http.ResponseWriter, r *http.Request, s *session) {
	t, ok := c.trailFrom(w, r)
	if !ok {
		return
	}
	op := "StopLogging"
	if r.PostFormValue("logging") == "on" {
		op = "StartLogging"
	}
	if _, err := c.call(r, s, t.HomeRegion, op, map[string]string{"Name": t.ARN()}); err != nil {
		_, msg := apiError(err)
		s.setFlash(msg, true)
	} else if op == "StartLogging" {
		s.setFlash("Logging started for "+t.Name+".", false)
	} else {
		s.setFlash("Logging stopped for "+t.Name+".", false)
	}
	back := trailURL(t)
	if r.PostFormValue("back") == "list" {
		back = Prefix + "trails"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (c *Console) trailDeletePage(w http.ResponseWriter, r *http.Request, s *session) {
	t, ok := c.trailFrom(w, r)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "trail_delete", view{Title: "Delete trail " + t.Name, Nav: "trails", Data: trailFormData{Trail: &t}})
}

func (c *Console) trailDelete(w http.ResponseWriter, r *http.Request, s *session) {
	t, ok := c.trailFrom(w, r)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != t.Name {
		c.render(w, r, http.StatusBadRequest, "trail_delete", view{Title: "Delete trail " + t.Name, Nav: "trails",
			Error: "Type the trail's name to confirm.", Data: trailFormData{Trail: &t}})
		return
	}
	if _, err := c.call(r, s, t.HomeRegion, "DeleteTrail", map[string]string{"Name": t.ARN()}); err != nil {
		_, msg := apiError(err)
		c.render(w, r, http.StatusBadRequest, "trail_delete", view{Title: "Delete trail " + t.Name, Nav: "trails", Error: msg, Data: trailFormData{Trail: &t}})
		return
	}
	s.setFlash("Trail "+t.Name+" deleted.", false)
	http.Redirect(w, r, Prefix+"trails", http.StatusSeeOther)
}

func (c *Console) trailsPage(w http.ResponseWriter, r *http.Request, s *session) {
	all, err := c.be.Trails(r.Context())
	if err != nil {
		c.log.Error("console: list trails", "err", err)
		c.render(w, r, http.StatusInternalServerError, "error", view{Title: "Trails", Nav: "trails", Error: "The trails could not be read."})
		return
	}
	c.render(w, r, http.StatusOK, "trails", view{Title: "Trails", Nav: "trails", Data: trailsData{Trails: trailRows(all), Now: c.now()}})
}

type trailsData struct {
	Trails []trailRow
	Now    any
}

// trailRow is a trail with its page's URL, for templates.
type trailRow struct {
	trail.Trail
	URL, ARN string
}

func trailRows(all []trail.Trail) []trailRow {
	out := make([]trailRow, len(all))
	for i, t := range all {
		out[i] = trailRow{Trail: t, URL: trailURL(t), ARN: t.ARN()}
	}
	slices.SortFunc(out, func(a, b trailRow) int { return strings.Compare(a.HomeRegion+"/"+a.Name, b.HomeRegion+"/"+b.Name) })
	return out
}

type trailDetailData struct {
	T         trailRow
	Tags      []struct{ Key, Value string }
	Basic     []selector.EventSelector
	Advanced  string
	Now       any
	Errors    []string
	Selectors string
}

func (c *Console) trailDetail(w http.ResponseWriter, r *http.Request, s *session) {
	t, ok := c.trailFrom(w, r)
	if !ok {
		return
	}
	d := trailDetailData{T: trailRow{Trail: t, URL: trailURL(t), ARN: t.ARN()}, Now: c.now()}
	out, err := c.be.Read(r.Context(), Call{Caller: s.Caller(), Meta: meta(r), Region: t.HomeRegion, Operation: "ListTags", Body: mustJSON(map[string][]string{"ResourceIdList": {t.ARN()}})})
	if err == nil {
		var lt struct {
			ResourceTagList []struct {
				TagsList []struct{ Key, Value string }
			}
		}
		if json.Unmarshal(out, &lt) == nil && len(lt.ResourceTagList) > 0 {
			d.Tags = lt.ResourceTagList[0].TagsList
		}
	} else if !errors.Is(err, r.Context().Err()) {
		c.log.Warn("console: list a trail's tags", "err", err)
	}
	basic, advanced := t.Selectors()
	d.Basic = basic
	if len(advanced) > 0 {
		b, _ := json.MarshalIndent(advanced, "", "  ")
		d.Advanced = string(b)
	}
	st := t.Status
	for _, e := range []struct{ what, err string }{
		{"Log file delivery", st.LatestDeliveryError},
		{"Digest delivery", st.LatestDigestDeliveryError},
		{"SNS notification", st.LatestNotificationError},
		{"CloudWatch Logs delivery", st.LatestCloudWatchLogsDeliveryError},
	} {
		if e.err != "" {
			d.Errors = append(d.Errors, e.what+": "+e.err)
		}
	}
	c.render(w, r, http.StatusOK, "trail", view{Title: "Trail " + t.Name, Nav: "trails", Data: d})
}
