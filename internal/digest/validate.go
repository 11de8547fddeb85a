package digest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/cairn-audit/cairn/internal/objstore"
)

// ValidateOptions say what to validate and where.
type ValidateOptions struct {
	TrailARN string
	// Start and End bound the digests validated, as the CLI's
	// --start-time/--end-time (End zero means Now).
	Start, End time.Time
	Now        time.Time
	Bucket     string
	Prefix     string
	// Account overrides the ARN's account (--account-id).
	Account string
	// SourceRegion is the region whose digests are validated (the CLI's
	// --region).
	SourceRegion string
	Store        objstore.Store
	// PublicKeys returns the source region's keys valid in [start, end].
	PublicKeys func(ctx context.Context, start, end time.Time) ([]PublicKey, error)
	// LatestDigestDelivery is GetTrailStatus's LatestDigestDeliveryTime
	// (zero when unknown, offline): a newest digest older than it means
	// the newest digests were deleted.
	LatestDigestDelivery time.Time
	// Parallel is how many objects are read at once; zero means 16.
	Parallel int
	Verbose  bool
	// Out and Err receive the CLI-style report.
	Out, Err io.Writer
}

// Result counts what Validate found.
type Result struct {
	ValidDigests, InvalidDigests int
	// ValidBackfillDigests and InvalidBackfillDigests count the
	// "_backfill" digests, walked after the regular ones (CLI v1.45).
	ValidBackfillDigests, InvalidBackfillDigests int
	ValidLogs, InvalidLogs                       int
	// Problems are the INVALID lines (and Cairn's extra findings), in
	// report order.
	Problems []string
	// FoundStart and FoundEnd are the "Results found" range (zero: none).
	FoundStart, FoundEnd time.Time
}

// OK reports whether nothing was invalid.
func (r *Result) OK() bool {
	return r.InvalidDigests == 0 && r.InvalidBackfillDigests == 0 && r.InvalidLogs == 0
}

var trailARNRE = regexp.MustCompile(`^arn:.+:cloudtrail:(.+):(\d{12}):trail/(.+)$`)

type fetched struct {
	key     string
	bucket  string
	raw     []byte // uncompressed JSON
	d       *Digest
	meta    map[string]string
	missing bool
	err     string // "invalid format" and the like
	trailer bool   // bytes after the gzip stream
}

// Display is the CLI's date display format.
const Display = "2006-01-02T15:04:05Z"

// Validate checks a trail's digest chain and log files the way `aws
// cloudtrail validate-logs` does, and also reports what the CLI cannot see:
// digests whose successor recorded a different hash or signature, more than
// one consecutive digest deleted, the newest digests deleted (online),
// log files no digest lists, data after a gzip stream and breaks in time
// continuity. It writes the CLI's report to Out/Err and returns the counts;
// an error means the validation could not run (unreadable store, no keys).
func Validate(ctx context.Context, o ValidateOptions) (*Result, error) {
	m := trailARNRE.FindStringSubmatch(o.TrailARN)
	if m == nil {
		return nil, fmt.Errorf("invalid trail ARN provided: %s", o.TrailARN)
	}
	home, account, name := m[1], m[2], m[3]
	if o.Account != "" {
		account = o.Account
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.End.IsZero() {
		o.End = o.Now
	}
	o.Start, o.End = o.Start.UTC().Truncate(time.Second), o.End.UTC().Truncate(time.Second)
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Err == nil {
		o.Err = io.Discard
	}
	if o.SourceRegion == "" {
		o.SourceRegion = home
	}
	loc := Location{Prefix: o.Prefix, Account: account, SourceRegion: o.SourceRegion, TrailName: name, HomeRegion: home}
	v := &validator{o: o, loc: loc, res: &Result{}}
	fmt.Fprintf(o.Out, "Validating log files for trail %s between %s and %s\n\n", o.TrailARN, o.Start.Format(Display), o.End.Format(Display))
	if err := v.run(ctx); err != nil {
		return nil, err
	}
	v.summary()
	return v.res, nil
}

type validator struct {
	o   ValidateOptions
	loc Location
	res *Result

	doubleSpaced bool
	cache        map[string]*fetched
	referenced   map[string]bool // log file keys digests list
	hash         *hasher
}

func (v *validator) status(msg string, isErr bool) {
	if isErr {
		v.res.Problems = append(v.res.Problems, msg)
		if v.doubleSpaced {
			fmt.Fprintf(v.o.Err, "%s\n\n", msg)
		} else {
			fmt.Fprintf(v.o.Err, "\n%s\n\n", msg)
		}
		v.doubleSpaced = true
		return
	}
	if v.o.Verbose {
		v.doubleSpaced = false
		fmt.Fprintf(v.o.Out, "%s\n", msg)
	}
}

func s3url(bucket, key string) string { return "s3://" + bucket + "/" + key }

// listDigests lists the location's digest keys in [start, end+1h], oldest
// first, as the CLI does (listing after the key start-1min would have):
// the regular ones and, apart, the backfill ones.
func (v *validator) listDigests(ctx context.Context, bucket string) (regular, backfill []string, err error) {
	re := v.loc.KeyRE()
	after := v.loc.Key(v.o.Start.Add(-time.Minute))
	hi := v.o.End.Add(time.Hour)
	err = v.listKeys(ctx, bucket, v.loc.Dir(), after, func(key string) error {
		if !re.MatchString(key) {
			return nil
		}
		t, ok := KeyEndTime(key)
		if !ok || t.Before(v.o.Start) || t.After(hi) {
			return nil
		}
		if strings.HasSuffix(key, backfillSuffix) {
			backfill = append(backfill, key)
		} else {
			regular = append(regular, key)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list digests in s3://%s/%s: %w", bucket, v.loc.Dir(), err)
	}
	byEnd := func(keys []string) {
		sort.Slice(keys, func(i, j int) bool {
			ti, _ := KeyEndTime(keys[i])
			tj, _ := KeyEndTime(keys[j])
			if !ti.Equal(tj) {
				return ti.Before(tj)
			}
			return keys[i] < keys[j]
		})
	}
	byEnd(regular)
	byEnd(backfill)
	return regular, backfill, nil
}

// leanGetter is a store with a cheaper read path than Get (the S3
// backend's GetLean: one signed net/http GET instead of the SDK's
// middleware stack), which matters when reading thousands of objects.
type leanGetter interface {
	GetLean(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error)
}

// leanLister is a store with a cheaper listing of keys alone (the S3
// backend's ListKeysLean).
type leanLister interface {
	ListKeysLean(ctx context.Context, bucket, prefix, startAfter string, fn func(key string) error) error
}

func (v *validator) listKeys(ctx context.Context, bucket, prefix, startAfter string, fn func(key string) error) error {
	if l, ok := v.o.Store.(leanLister); ok {
		return l.ListKeysLean(ctx, bucket, prefix, startAfter, fn)
	}
	return v.o.Store.List(ctx, bucket, prefix, startAfter, func(oi objstore.ObjectInfo) error { return fn(oi.Key) })
}

// get reads an object as it is stored. A store that checks an object's
// metadata against its body on read (the file store) is asked for the
// body even when they disagree: a tampered file is what validation must
// judge by the digest's hash and report, not an I/O error that stops it.
// The metadata as stored comes along (a digest's signature in it then
// fails to verify, as it does for the AWS CLI on S3).
func (v *validator) get(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	if g, ok := v.o.Store.(objstore.AsStoredGetter); ok {
		rc, info, _, err := g.GetAsStored(ctx, bucket, key)
		return rc, info, err
	}
	if g, ok := v.o.Store.(leanGetter); ok {
		return g.GetLean(ctx, bucket, key)
	}
	return v.o.Store.Get(ctx, bucket, key)
}

// inflater is a reusable gunzip: a buffered reader and a gzip reader
// (each holds tens of KiB of tables and buffers), pooled because a
// validation inflates one per object.
type inflater struct {
	br *bufio.Reader
	zr gzip.Reader
}

var inflaters = sync.Pool{New: func() any { return &inflater{br: bufio.NewReaderSize(nil, 32<<10)} }}

// gunzipOne reads exactly one gzip member and reports whether anything
// follows it.
func gunzipOne(r io.Reader, w io.Writer) (trailer bool, err error) {
	z := inflaters.Get().(*inflater)
	defer func() {
		z.br.Reset(nil)
		inflaters.Put(z)
	}()
	z.br.Reset(r)
	if err := z.zr.Reset(z.br); err != nil {
		return false, err
	}
	z.zr.Multistream(false)
	if _, err := z.zr.WriteTo(w); err != nil {
		return false, err
	}
	if err := z.zr.Close(); err != nil {
		return false, err
	}
	n, _ := io.Copy(io.Discard, z.br)
	return n > 0, nil
}

func (v *validator) fetch(ctx context.Context, bucket, key string) (*fetched, error) {
	if f, ok := v.cache[bucket+"/"+key]; ok {
		return f, nil
	}
	f := &fetched{key: key, bucket: bucket}
	rc, info, err := v.get(ctx, bucket, key)
	if errors.Is(err, objstore.ErrNotFound) {
		f.missing = true
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read digest s3://%s/%s: %w", bucket, key, err)
	}
	defer rc.Close()
	var raw bytes.Buffer
	src := &srcReader{r: rc}
	trailer, err := gunzipOne(src, &raw)
	if src.err != nil {
		return nil, fmt.Errorf("read digest s3://%s/%s: %w", bucket, key, src.err)
	}
	if err != nil {
		// As the CLI's zlib.decompress: a truncated or corrupt stream.
		f.err = "invalid format"
		return f, nil
	}
	f.raw, f.trailer, f.meta = raw.Bytes(), trailer, info.Metadata
	d, err := Parse(f.raw)
	if err != nil {
		f.err = "invalid format"
		return f, nil
	}
	f.d = d
	return f, nil
}

// prefetch reads the listed digests in parallel.
func (v *validator) prefetch(ctx context.Context, bucket string, keys []string) error {
	out := make([]*fetched, len(keys))
	errs := make([]error, len(keys))
	sem := make(chan struct{}, v.o.Parallel)
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = v.fetch(ctx, bucket, k)
			if f := out[i]; f != nil && f.d != nil {
				// Start reading its log files now, before the chain walk
				// has checked the digest: the walk uses the verdicts only
				// of digests it finds valid, and reading an object
				// changes nothing.
				for _, lf := range f.d.LogFiles {
					v.hash.submit(lf)
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, f := range out {
		v.cache[bucket+"/"+f.key] = f
	}
	return nil
}

// visit is one step of the walk, kept for the report.
type visit struct {
	f       *fetched
	invalid string // reason, empty when valid
	logs    []LogFile
	extra   []string // Cairn's extra findings about this digest
	gap     []string // a chain start's "No log files were delivered" note: from, to
}

// backfillSuffix ends the key of a backfill digest (reference §5.1): one
// CloudTrail delivers after the regular digest of its period, listing
// log files that digest missed.
const backfillSuffix = "_backfill.json.gz"

// MetaBackfillGenerationTimestamp is the metadata key (x-amz-meta-*) of a
// backfill digest saying when it was made; the CLI looks its signing key
// up around that time.
const MetaBackfillGenerationTimestamp = "backfill-generation-timestamp"

func (v *validator) run(ctx context.Context) error {
	v.cache = map[string]*fetched{}
	v.referenced = map[string]bool{}
	ctx, cancel := context.WithCancel(ctx)
	v.hash = newHasher(ctx, v, v.o.Parallel)
	defer v.hash.stop()
	defer cancel() // before stop: abandon reads nobody waits for
	// The log files in the bucket, for the "not listed in any digest"
	// check, listed while the digests are read and checked.
	logList := make(chan logListing, 1)
	go func() {
		keys, err := v.listLogs(ctx)
		logList <- logListing{keys, err}
	}()
	keyEnd := v.o.End.Add(2 * time.Hour)
	type pkAnswer struct {
		pks []PublicKey
		err error
	}
	pkc := make(chan pkAnswer, 1)
	go func() {
		pks, err := v.o.PublicKeys(ctx, v.o.Start, keyEnd)
		pkc <- pkAnswer{pks, err}
	}()
	bucket := v.o.Bucket
	listed, backfills, err := v.listDigests(ctx, bucket)
	if err != nil {
		return err
	}
	if err := v.prefetch(ctx, bucket, append(slices.Clone(listed), backfills...)); err != nil {
		return err
	}
	pka := <-pkc
	pks, err := pka.pks, pka.err
	if err != nil {
		return fmt.Errorf("list public keys: %w", err)
	}
	if len(pks) == 0 {
		return fmt.Errorf("no public keys found between %s and %s", v.o.Start.Format(Display), keyEnd.Format(Display))
	}
	keys := map[string]PublicKey{}
	for _, pk := range pks {
		keys[pk.Fingerprint] = pk
	}

	visits, err := v.walk(ctx, bucket, listed, keys, false)
	if err != nil {
		return err
	}
	// Then, as the CLI v1.45 does, the backfill digests: a chain of their
	// own, walked the same way.
	bfVisits, err := v.walk(ctx, bucket, backfills, keys, true)
	if err != nil {
		return err
	}

	// Hash every listed log file of the valid digests (most are being
	// read already, submitted when their digest was fetched).
	jobOf := map[*visit][]*hashJob{}
	for _, vis := range append(slices.Clone(visits), bfVisits...) {
		if vis.f == nil || vis.invalid != "" {
			continue
		}
		for _, lf := range vis.logs {
			jobOf[vis] = append(jobOf[vis], v.hash.submit(lf))
		}
	}
	for _, js := range jobOf {
		for _, j := range js {
			if err := j.wait(ctx); err != nil {
				return err
			}
		}
	}

	v.report(visits, jobOf, false)
	v.report(bfVisits, jobOf, true)
	// Truncation: the trail delivered a digest after the newest one here.
	var newestListed time.Time
	for _, vis := range visits {
		if vis.f != nil {
			if t, ok := KeyEndTime(vis.f.key); ok && t.After(newestListed) {
				newestListed = t
			}
		}
	}
	// A digest is delivered shortly after its end; the next one ends an
	// interval later. So a delivery an interval or more after the newest
	// digest here means newer digests existed.
	iv := v.interval(visits)
	if iv <= 0 {
		iv = time.Minute
	}
	if lt := v.o.LatestDigestDelivery.UTC().Truncate(time.Second); !lt.IsZero() && !lt.After(v.o.End.Add(time.Hour)) && !newestListed.IsZero() &&
		lt.Sub(newestListed) >= iv {
		v.res.InvalidDigests++
		v.status(fmt.Sprintf("Digest file\t%s\tINVALID: newest digest file(s) missing: the trail delivered a digest at %s (GetTrailStatus LatestDigestDeliveryTime) but the newest in s3://%s/%s ends at %s",
			s3url(v.o.Bucket, v.loc.Key(lt)), lt.Format(Display), v.o.Bucket, v.loc.Dir(), newestListed.Format(Display)), true)
	}
	ll := <-logList
	if ll.err != nil {
		return ll.err
	}
	v.unreferenced(ll.keys)
	return nil
}

// walk is the CLI's traversal of one list of digests (regular or
// backfill): newest listed digest, then previousDigestS3Object links;
// after a missing or invalid digest, or a chain start, the next older
// listed key. It checks each digest and returns the steps in walk order.
func (v *validator) walk(ctx context.Context, bucket string, listed []string, keys map[string]PublicKey, backfill bool) ([]*visit, error) {
	remaining := slices.Clone(listed)
	popBefore := func(before string) string {
		var bt time.Time
		if before != "" {
			bt, _ = KeyEndTime(before)
		}
		for len(remaining) > 0 {
			k := remaining[len(remaining)-1]
			remaining = remaining[:len(remaining)-1]
			if before == "" {
				return k
			}
			if t, _ := KeyEndTime(k); t.Before(bt) {
				return k
			}
		}
		return ""
	}
	var visits []*visit
	key := popBefore("")
	lastStart := time.Time{}
	if key != "" {
		lastStart, _ = KeyEndTime(key)
	}
	var newer *visit // the valid digest that led here through its previous* link
	var missingRun []string
	for key != "" && !v.o.Start.After(lastStart) {
		f, err := v.fetch(ctx, bucket, key)
		if err != nil {
			return nil, err
		}
		vis := &visit{f: f}
		visits = append(visits, vis)
		if f.missing {
			vis.invalid = "not found"
			missingRun = append(missingRun, key)
			newer = nil
			key = popBefore(key)
			continue
		}
		if backfill {
			if err := v.backfillKeys(ctx, f, keys); err != nil {
				return nil, err
			}
		}
		vis.invalid = v.check(f, keys)
		if vis.invalid != "" {
			newer = nil
			missingRun = nil
			key = popBefore(key)
			continue
		}
		d := f.d
		start, _ := ParseTime(d.DigestStartTime)
		end, _ := ParseTime(d.DigestEndTime)
		// Cairn's checks against the successor that named this digest.
		if newer != nil {
			nd := newer.f.d
			sum := sha256.Sum256(f.raw)
			if nd.PreviousDigestHashValue == nil || *nd.PreviousDigestHashValue != hex.EncodeToString(sum[:]) {
				vis.extra = append(vis.extra, "hash value doesn't match the previousDigestHashValue of "+s3url(newer.f.bucket, newer.f.key))
			}
			if nd.PreviousDigestSignature == nil || *nd.PreviousDigestSignature != f.meta[MetaSignature] {
				vis.extra = append(vis.extra, "signature doesn't match the previousDigestSignature of "+s3url(newer.f.bucket, newer.f.key))
			}
			// How backfill digests cover time is not specified (reference
			// §5.1), so continuity is checked in regular chains only.
			if ns, _ := ParseTime(nd.DigestStartTime); !backfill && !ns.Equal(end) {
				vis.extra = append(vis.extra, fmt.Sprintf("time continuity broken: it ends at %s but its successor starts at %s", end.Format(Display), ns.Format(Display)))
			}
		}
		if len(missingRun) > 0 && !backfill {
			// The digests after this one are gone. The newest missing
			// one's key gives its end; anything between this digest's end
			// and that is missing too.
			vis.extra = append(vis.extra, v.missingRunFinding(end, missingRun, visits)...)
		}
		missingRun = nil
		if f.trailer {
			vis.extra = append(vis.extra, "data after the end of the gzip stream")
		}
		vis.logs = d.LogFiles
		for _, lf := range d.LogFiles {
			v.referenced[lf.S3Bucket+"/"+lf.S3Object] = true
		}
		lastStart = start
		if d.PreviousDigestS3Bucket == nil || d.PreviousDigestS3Object == nil {
			newer = nil
			next := popBefore(key)
			if next != "" {
				nt, _ := KeyEndTime(next)
				visits = append(visits, &visit{gap: []string{nt.Format(Display), start.Format(Display)}})
			}
			key = next
			continue
		}
		newer = vis
		if *d.PreviousDigestS3Bucket != bucket {
			bucket = *d.PreviousDigestS3Bucket
			std, bf, err := v.listDigests(ctx, bucket)
			if err != nil {
				return nil, err
			}
			if backfill {
				std = bf
			}
			if err := v.prefetch(ctx, bucket, std); err != nil {
				return nil, err
			}
			remaining = slices.Clone(std)
		}
		key = *d.PreviousDigestS3Object
	}
	if len(missingRun) > 0 && !backfill {
		visits[len(visits)-1].extra = append(visits[len(visits)-1].extra,
			fmt.Sprintf("%d digest file(s) missing and no older digest in range", len(missingRun)))
	}
	return visits, nil
}

// backfillKeys adds the keys valid around a backfill digest's generation
// time when its key is not known yet, as the CLI does (it asks
// ListPublicKeys for generation time ± 1 h).
func (v *validator) backfillKeys(ctx context.Context, f *fetched, keys map[string]PublicKey) error {
	if f.d == nil {
		return nil
	}
	if _, ok := keys[f.d.DigestPublicKeyFingerprint]; ok {
		return nil
	}
	gen, err := parseGenerationTime(f.meta[MetaBackfillGenerationTimestamp])
	if err != nil {
		return nil // check reports the digest
	}
	pks, err := v.o.PublicKeys(ctx, gen.Add(-time.Hour), gen.Add(time.Hour))
	if err != nil {
		return fmt.Errorf("list public keys for backfill digest s3://%s/%s: %w", f.bucket, f.key, err)
	}
	for _, pk := range pks {
		keys[pk.Fingerprint] = pk
	}
	return nil
}

// parseGenerationTime reads a backfill-generation-timestamp. Its format
// is not published (the CLI hands it to dateutil, which takes almost
// anything): ISO 8601 / RFC 3339 forms and epoch seconds or milliseconds
// are accepted.
func parseGenerationTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "20060102T150405Z", "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		if n > 1e11 {
			return time.UnixMilli(n).UTC(), nil
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("backfill generation timestamp %q: not a time", s)
}

// report writes one walk's lines and counts, in walk order, as the CLI
// does: each digest, then its log files.
func (v *validator) report(visits []*visit, jobOf map[*visit][]*hashJob, backfill bool) {
	tag := ""
	if backfill {
		tag = "(backfill) "
	}
	for _, vis := range visits {
		if vis.gap != nil {
			// Informational, as in the CLI: a chain ended (StopLogging)
			// and a new one started. Written like an error, not counted.
			v.status(fmt.Sprintf("%sNo log files were delivered by CloudTrail between %s and %s", tag, vis.gap[0], vis.gap[1]), true)
			v.res.Problems = v.res.Problems[:len(v.res.Problems)-1]
			continue
		}
		url := s3url(vis.f.bucket, vis.f.key)
		invalid := func() {
			if backfill {
				v.res.InvalidBackfillDigests++
			} else {
				v.res.InvalidDigests++
			}
		}
		if vis.invalid != "" {
			invalid()
			msg := tag + "Digest file\t" + url + "\tINVALID: " + vis.invalid
			if vis.invalid == "public key not found" {
				msg = fmt.Sprintf("%sDigest file\t%s\tINVALID: public key not found in region %s for fingerprint %s", tag, url, v.loc.HomeRegion, vis.f.d.DigestPublicKeyFingerprint)
			}
			v.status(msg, true)
			continue
		}
		if len(vis.extra) > 0 {
			invalid()
			for _, e := range vis.extra {
				v.status(tag+"Digest file\t"+url+"\tINVALID: "+e, true)
			}
		} else {
			if backfill {
				v.res.ValidBackfillDigests++
			} else {
				v.res.ValidDigests++
			}
			v.status(tag+"Digest file\t"+url+"\tvalid", false)
		}
		start, _ := ParseTime(vis.f.d.DigestStartTime)
		end, _ := ParseTime(vis.f.d.DigestEndTime)
		v.track(start, end)
		for _, j := range jobOf[vis] {
			lu := s3url(j.lf.S3Bucket, j.lf.S3Object)
			if j.verdict == "" {
				v.res.ValidLogs++
				v.status("Log file\t"+lu+"\tvalid", false)
			} else {
				v.res.InvalidLogs++
				v.status("Log file\t"+lu+"\tINVALID: "+j.verdict, true)
			}
		}
	}
}

// missingRunFinding describes consecutive missing digests that end at the
// digest ending at end (the newest surviving one before them).
func (v *validator) missingRunFinding(end time.Time, run []string, visits []*visit) []string {
	oldestMissing := run[len(run)-1]
	mt, _ := KeyEndTime(oldestMissing)
	iv := v.interval(visits)
	if iv <= 0 {
		return nil
	}
	// Digests missing in all: the time between this digest's end and the
	// oldest named missing one's end, in intervals, plus that one; the
	// named ones were reported already.
	n := int((mt.Sub(end)+iv/2)/iv) - 1
	if n < 1 {
		return nil
	}
	return []string{fmt.Sprintf("%d more consecutive digest file(s) missing between %s and %s (deleted digests no surviving digest names)", n, end.Format(Display), mt.Format(Display))}
}

// interval estimates the digest interval: the most common duration of the
// valid digests read so far.
func (v *validator) interval(visits []*visit) time.Duration {
	counts := map[time.Duration]int{}
	best, bestN := time.Duration(0), 0
	for _, vis := range visits {
		if vis.f == nil || vis.f.d == nil {
			continue
		}
		s, _ := ParseTime(vis.f.d.DigestStartTime)
		e, _ := ParseTime(vis.f.d.DigestEndTime)
		d := e.Sub(s)
		counts[d]++
		if counts[d] > bestN {
			best, bestN = d, counts[d]
		}
	}
	return best
}

// check applies the CLI's per-digest checks; "" when valid.
func (v *validator) check(f *fetched, keys map[string]PublicKey) string {
	if f.err != "" {
		return f.err
	}
	if f.meta[MetaSignature] == "" || f.meta[MetaSignatureAlgorithm] == "" {
		return "signature verification failed"
	}
	if strings.HasSuffix(f.key, backfillSuffix) {
		// The CLI refuses a backfill digest without its generation time.
		if _, err := parseGenerationTime(f.meta[MetaBackfillGenerationTimestamp]); err != nil {
			return "invalid format"
		}
	}
	d := f.d
	if d.DigestS3Bucket != f.bucket || d.DigestS3Object != f.key {
		return "has been moved from its original location"
	}
	pk, ok := keys[d.DigestPublicKeyFingerprint]
	if !ok {
		return "public key not found"
	}
	sig, err := hex.DecodeString(f.meta[MetaSignature])
	if err != nil {
		return "signature verification failed"
	}
	sum := sha256.Sum256(f.raw)
	if err := Verify(pk.DER, StringToSign(d, hex.EncodeToString(sum[:])), sig); err != nil {
		return "signature verification failed"
	}
	return ""
}

func (v *validator) track(start, end time.Time) {
	start = maxTime(start, v.o.Start)
	end = minTime(end, v.o.End)
	if v.res.FoundStart.IsZero() || start.Before(v.res.FoundStart) {
		v.res.FoundStart = start
	}
	if v.res.FoundEnd.IsZero() || end.After(v.res.FoundEnd) {
		v.res.FoundEnd = end
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// hasher reads and hashes log files with a fixed number of workers, each
// (bucket, key, expected hash) once, in the order submitted: digests are
// fetched in parallel and each submits its log files as soon as it is
// parsed, so reading log files overlaps reading digests.
type hasher struct {
	ctx  context.Context
	v    *validator
	mu   sync.Mutex
	cond *sync.Cond
	q    []*hashJob
	m    map[hashKey]*hashJob
	done bool
	wg   sync.WaitGroup
}

type hashKey struct{ bucket, key, hash string }

// hashJob is one log file's verdict: "" valid, else the CLI's reason.
type hashJob struct {
	lf      LogFile
	ready   chan struct{}
	verdict string
	err     error
}

func (j *hashJob) wait(ctx context.Context) error {
	select {
	case <-j.ready:
		return j.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newHasher(ctx context.Context, v *validator, workers int) *hasher {
	h := &hasher{ctx: ctx, v: v, m: map[hashKey]*hashJob{}}
	h.cond = sync.NewCond(&h.mu)
	for range workers {
		h.wg.Go(h.work)
	}
	return h
}

// submit queues lf unless it is queued already, and returns its job.
func (h *hasher) submit(lf LogFile) *hashJob {
	k := hashKey{lf.S3Bucket, lf.S3Object, lf.HashValue}
	h.mu.Lock()
	defer h.mu.Unlock()
	if j, ok := h.m[k]; ok {
		return j
	}
	j := &hashJob{lf: lf, ready: make(chan struct{})}
	h.m[k] = j
	h.q = append(h.q, j)
	h.cond.Signal()
	return j
}

func (h *hasher) work() {
	for {
		h.mu.Lock()
		for len(h.q) == 0 && !h.done {
			h.cond.Wait()
		}
		if h.done {
			h.mu.Unlock()
			return
		}
		j := h.q[0]
		h.q[0] = nil
		h.q = h.q[1:]
		h.mu.Unlock()
		j.verdict, j.err = h.v.hashLog(h.ctx, j.lf)
		close(j.ready)
	}
}

// stop ends the workers; queued jobs nobody waits for are dropped.
func (h *hasher) stop() {
	h.mu.Lock()
	h.done = true
	h.cond.Broadcast()
	h.mu.Unlock()
	h.wg.Wait()
}

// hashLog is the CLI's log check plus the trailing-data check.
func (v *validator) hashLog(ctx context.Context, lf LogFile) (string, error) {
	rc, _, err := v.get(ctx, lf.S3Bucket, lf.S3Object)
	if errors.Is(err, objstore.ErrNotFound) {
		return "not found", nil
	}
	if err != nil {
		return "", fmt.Errorf("read log file s3://%s/%s: %w", lf.S3Bucket, lf.S3Object, err)
	}
	defer rc.Close()
	h := sha256.New()
	src := &srcReader{r: rc}
	trailer, err := gunzipOne(src, h)
	if src.err != nil {
		return "", fmt.Errorf("read log file s3://%s/%s: %w", lf.S3Bucket, lf.S3Object, src.err)
	}
	// The CLI inflates with zlib.decompressobj, which does not complain
	// about a stream that ends early: it hashes what it could inflate. So
	// a truncated file is a hash mismatch, and only a corrupt stream (bad
	// header, bad data, bad CRC) is "invalid format".
	truncated := errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
	if err != nil && !truncated {
		return "invalid format", nil
	}
	if hex.EncodeToString(h.Sum(nil)) != lf.HashValue {
		return "hash value doesn't match", nil
	}
	if truncated {
		return "gzip stream truncated after its content (its CRC and length are missing)", nil
	}
	if trailer {
		return "data after the end of the gzip stream (not covered by the digest's hash)", nil
	}
	return "", nil
}

// srcReader remembers the first error other than io.EOF that reading the
// object itself returned, so that a failed read (a dropped connection) is
// reported as what it is, not judged as a bad file.
type srcReader struct {
	r   io.Reader
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

type logListing struct {
	keys []string
	err  error
}

// listLogs lists the source region's log file keys delivered from a day
// before Start to a day after End (the validated digests cover a part of
// that), for unreferenced.
func (v *validator) listLogs(ctx context.Context) ([]string, error) {
	dir := v.loc.LogDir()
	after := dir + v.o.Start.Add(-24*time.Hour).Format("2006/01/02")
	stop := dir + v.o.End.Add(48*time.Hour).Format("2006/01/02")
	var keys []string
	err := v.listKeys(ctx, v.o.Bucket, dir, after, func(key string) error {
		if key > stop {
			return objstore.ErrStop
		}
		if _, ok := LogKeyTime(key); ok {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list log files in s3://%s/%s: %w", v.o.Bucket, dir, err)
	}
	return keys, nil
}

// unreferenced reports log files of the source region, delivered while the
// validated digests were being written, that no digest lists.
func (v *validator) unreferenced(keys []string) {
	if v.res.FoundStart.IsZero() {
		return
	}
	lo := v.res.FoundStart.Truncate(time.Minute)
	hi := v.res.FoundEnd
	for _, k := range keys {
		t, _ := LogKeyTime(k)
		if t.Before(lo) || t.Add(time.Minute).After(hi) {
			continue
		}
		if !v.referenced[v.o.Bucket+"/"+k] {
			v.res.InvalidLogs++
			v.status("Log file\t"+s3url(v.o.Bucket, k)+"\tINVALID: not listed in any digest file (added, or its digest is gone)", true)
		}
	}
}

func (v *validator) summary() {
	w := v.o.Out
	if !v.doubleSpaced {
		fmt.Fprint(w, "\n")
	}
	fmt.Fprintf(w, "Results requested for %s to %s\n", v.o.Start.Format(Display), v.o.End.Format(Display))
	r := v.res
	if r.ValidDigests+r.InvalidDigests+r.ValidBackfillDigests+r.InvalidBackfillDigests == 0 {
		fmt.Fprint(w, "No digests found\n")
		return
	}
	if r.FoundStart.IsZero() {
		fmt.Fprint(w, "No valid digests found in range\n")
	} else {
		fmt.Fprintf(w, "Results found for %s to %s:\n", r.FoundStart.Format(Display), r.FoundEnd.Format(Display))
	}
	ratio := func(valid, invalid int, name string) {
		if total := valid + invalid; total > 0 {
			fmt.Fprintf(w, "\n%d/%d %s files valid", valid, total, name)
			if invalid > 0 {
				fmt.Fprintf(w, ", %d/%d %s files INVALID", invalid, total, name)
			}
		}
	}
	ratio(r.ValidDigests, r.InvalidDigests, "digest")
	ratio(r.ValidBackfillDigests, r.InvalidBackfillDigests, "backfill digest")
	ratio(r.ValidLogs, r.InvalidLogs, "log")
	fmt.Fprint(w, "\n")
}
