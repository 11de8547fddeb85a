package digest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/cairn-audit/cairn/internal/delivery"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/state"
	"github.com/cairn-audit/cairn/internal/trail"
)

// Digest interval limits (Options.Interval).
const (
	DefaultInterval = time.Hour
	MinInterval     = time.Minute
	MaxInterval     = 24 * time.Hour
)

// The writer's durable state, in the state store:
//
//	digest/trail/<trail ARN>                                  -> trailRec
//	digest/pending/<trail ARN>/<region>/<20-digit last seq>/<key> -> pendingFile
//	digest/chain/<trail ARN>/<region>                         -> chainRec
//
// A log file is recorded as pending (Record, called by delivery before its
// cursor moves) and removed in the same transaction that records the digest
// listing it. RecordedThrough makes a replayed batch a no-op.
const (
	stateTrailPrefix   = "digest/trail/"
	statePendingPrefix = "digest/pending/"
	stateChainPrefix   = "digest/chain/"
)

type trailRec struct {
	// RecordedThrough is the Last journal sequence of the newest batch
	// recorded: batches of a trail come in increasing ranges, so one at or
	// below it is a replay after a crash.
	RecordedThrough uint64
	// Regions are the source regions that ever had a log file.
	Regions []string `json:",omitempty"`
}

type pendingFile struct {
	Bucket, Key                      string
	SHA256                           string
	NewestEventTime, OldestEventTime time.Time
	DeliveredAt                      time.Time
}

// chainRec is the state of one trail+region digest chain.
type chainRec struct {
	// Session is the trail's StartLoggingTime the chain belongs to: a
	// different one means logging was stopped and started again, which
	// starts a new chain.
	Session time.Time `json:",omitzero"`
	Closed  bool      `json:",omitempty"`
	// Start is where the next digest starts: the previous digest's end,
	// or the chain's start.
	Start time.Time
	// Where the trail delivers (kept for the final digest of a deleted
	// trail).
	Bucket, Prefix, Account, TrailName, HomeRegion string
	// The previous digest; LastKey is empty for a new chain.
	LastBucket, LastKey, LastHash, LastSig string `json:",omitempty"`
	// PendingEnd is the end time chosen for the digest being written,
	// stored before the object is: a restart rewrites the same key rather
	// than leaving an orphan digest.
	PendingEnd time.Time `json:",omitzero"`
	// PendingFiles are the state keys of the log files the pending digest
	// lists, fixed with PendingEnd: a log file recorded later (delivery
	// records a file some time after the moment it stamps it with, longer
	// under load or across a restart) waits for the next digest instead of
	// changing the bytes of a digest whose PUT may already have landed.
	PendingFiles []string `json:"PendingFiles"`
	// LastWritten is the newest digest's end (for truncation checks).
	LastWritten time.Time `json:",omitzero"`
}

// Trails is what the writer needs from the trail service.
type Trails interface {
	All(ctx context.Context) ([]trail.Trail, error)
	RecordDigestDelivery(ctx context.Context, trailARN string, at time.Time, errText string) error
}

var _ Trails = (*trail.Service)(nil)

// Options configure a Writer.
type Options struct {
	// Interval is the time a digest covers: 1 minute to 24 hours, zero
	// means CloudTrail's hour.
	Interval time.Duration
	// Poll is how often Run looks for due digests; zero means
	// min(Interval/6, 10 s).
	Poll time.Duration
	// Clock is the time digests are stamped with; nil means time.Now.
	// Tests drive a chain in simulated time by setting it and calling Tick.
	Clock  func() time.Time
	Logger *slog.Logger

	// testHook, if set, is called at each stage of a digest write; an
	// error aborts the write there (crash simulation).
	testHook func(stage string) error
}

// Writer writes digest files for every logging trail with log file
// validation enabled.
type Writer struct {
	st     *state.Store
	trails Trails
	store  objstore.Store
	keys   *Keys
	opts   Options
	log    *slog.Logger
}

// NewWriter makes a Writer; Run (or Tick) makes it write.
func NewWriter(st *state.Store, trails Trails, store objstore.Store, keys *Keys, opts Options) (*Writer, error) {
	if st == nil || trails == nil || store == nil || keys == nil {
		return nil, errors.New("digest: state store, trails, object store and keys are all required")
	}
	switch {
	case opts.Interval == 0:
		opts.Interval = DefaultInterval
	case opts.Interval < MinInterval || opts.Interval > MaxInterval:
		return nil, fmt.Errorf("digest: interval %s is outside %s to %s", opts.Interval, MinInterval, MaxInterval)
	}
	if opts.Poll <= 0 {
		opts.Poll = min(opts.Interval/6, 10*time.Second)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Writer{st: st, trails: trails, store: store, keys: keys, opts: opts, log: opts.Logger.With("component", "digest")}, nil
}

// Interval is the configured digest interval.
func (w *Writer) Interval() time.Duration { return w.opts.Interval }

func (w *Writer) hook(stage string) error {
	if w.opts.testHook != nil {
		return w.opts.testHook(stage)
	}
	return nil
}

func pendingPrefix(arn, region string) string { return statePendingPrefix + arn + "/" + region + "/" }
func chainKey(arn, region string) string      { return stateChainPrefix + arn + "/" + region }

// Record is delivery's Options.OnLogFiles: it records written log files
// for the next digest of their trail and region. A batch already recorded
// (a replay after a crash: same range, same keys) changes nothing, so no
// file is listed twice; a crash before Record returned makes delivery
// replay the batch, so no file is lost.
func (w *Writer) Record(ctx context.Context, files []delivery.LogFileDelivered) error {
	byTrail := map[string][]delivery.LogFileDelivered{}
	for _, f := range files {
		byTrail[f.TrailARN] = append(byTrail[f.TrailARN], f)
	}
	for arn, fs := range byTrail {
		err := w.st.Update(ctx, func(tx *state.Tx) error {
			var tr trailRec
			if _, err := tx.Get(stateTrailPrefix+arn, &tr); err != nil {
				return err
			}
			last := fs[0].Last
			if last <= tr.RecordedThrough {
				return nil // a replayed batch
			}
			for _, f := range fs {
				if !regionOK(f.Region) {
					return fmt.Errorf("log file %s has an unusable region %q", f.Key, f.Region)
				}
				pf := pendingFile{Bucket: f.Bucket, Key: f.Key, SHA256: hex.EncodeToString(f.SHA256[:]),
					NewestEventTime: f.NewestEventTime.UTC(), OldestEventTime: f.OldestEventTime.UTC(), DeliveredAt: f.DeliveredAt.UTC()}
				if err := tx.Put(fmt.Sprintf("%s%020d/%s", pendingPrefix(arn, f.Region), f.Last, f.Key), pf); err != nil {
					return err
				}
				if !slices.Contains(tr.Regions, f.Region) {
					tr.Regions = append(tr.Regions, f.Region)
					slices.Sort(tr.Regions)
				}
			}
			tr.RecordedThrough = last
			return tx.Put(stateTrailPrefix+arn, tr)
		})
		if err != nil {
			return fmt.Errorf("digest: record %d log files of %s: %w", len(fs), arn, err)
		}
	}
	return nil
}

// Run writes due digests until ctx ends.
func (w *Writer) Run(ctx context.Context) error {
	w.log.Info("digest writer started", "interval", w.opts.Interval, "poll", w.opts.Poll)
	t := time.NewTicker(w.opts.Poll)
	defer t.Stop()
	for {
		if err := w.Tick(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("writing digests failed; retrying at the next poll", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick writes every digest that is due now (by Options.Clock): the next
// digest of each logging trail with validation enabled whose interval has
// passed, and a final digest for chains whose trail stopped logging, turned
// validation off or was deleted.
func (w *Writer) Tick(ctx context.Context) error {
	now := w.opts.Clock().UTC()
	trails, err := w.trails.All(ctx)
	if err != nil {
		return fmt.Errorf("digest: list trails: %w", err)
	}
	var errs []error
	present := map[string]bool{}
	for i := range trails {
		t := &trails[i]
		arn := t.ARN()
		present[arn] = true
		var tr trailRec
		if err := w.st.View(ctx, func(r state.Reader) error { _, err := r.Get(stateTrailPrefix+arn, &tr); return err }); err != nil {
			errs = append(errs, fmt.Errorf("digest: load state of %s: %w", arn, err))
			continue
		}
		regions := tr.Regions
		if !slices.Contains(regions, t.HomeRegion) {
			regions = append(slices.Clone(regions), t.HomeRegion)
		}
		for _, r := range regions {
			if err := w.stepRegion(ctx, t, r, now); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := w.finishDeleted(ctx, present, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (w *Writer) loadChain(ctx context.Context, arn, region string) (chainRec, bool, error) {
	var ch chainRec
	var ok bool
	err := w.st.View(ctx, func(r state.Reader) error {
		var err error
		ok, err = r.Get(chainKey(arn, region), &ch)
		return err
	})
	if err != nil {
		return ch, false, fmt.Errorf("digest: load chain of %s in %s: %w", arn, region, err)
	}
	return ch, ok, nil
}

func (w *Writer) hasPending(ctx context.Context, arn, region string) (bool, error) {
	found := false
	err := w.st.View(ctx, func(r state.Reader) error {
		return r.Scan(pendingPrefix(arn, region), func(string, []byte) error {
			found = true
			return errStopScan
		})
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return found, err
}

var errStopScan = errors.New("stop")

// stepRegion writes the trail's digest for region when one is due.
func (w *Writer) stepRegion(ctx context.Context, t *trail.Trail, region string, now time.Time) error {
	arn := t.ARN()
	ch, ok, err := w.loadChain(ctx, arn, region)
	if err != nil {
		return err
	}
	active := t.Status.IsLogging && t.LogFileValidationEnabled
	iv := w.opts.Interval
	if active {
		session := t.Status.StartLoggingTime.UTC()
		if !ok || ch.Closed || !ch.Session.Equal(session) {
			// A new chain: the trail started logging (again), enabled
			// validation, or gained a region. CloudTrail's first digest
			// of a chain has null previous* fields.
			start := session.Truncate(time.Second)
			if start.IsZero() || now.Sub(start) > iv {
				start = now.Truncate(time.Second)
			}
			if ok && start.Before(ch.Start) {
				start = ch.Start
			}
			ch = chainRec{Session: session, Start: start, LastWritten: ch.LastWritten}
			ch.setTrail(t)
			if err := w.saveChain(ctx, arn, region, ch); err != nil {
				return err
			}
			w.log.Info("digest chain started", "trail", arn, "region", region, "start", start)
		}
		ch.setTrail(t)
		if ch.PendingEnd.IsZero() && now.Before(ch.Start.Add(iv)) {
			return nil
		}
		end := ch.Start.Add(iv)
		if now.Sub(end) >= iv {
			// Far behind (Cairn was down): one digest covers the gap.
			end = now.Truncate(time.Second)
		}
		return w.write(ctx, arn, region, ch, end, false)
	}
	if !ok {
		return w.dropPending(ctx, arn, region, t)
	}
	pending, err := w.hasPending(ctx, arn, region)
	if err != nil {
		return err
	}
	if ch.Closed && !pending {
		return nil
	}
	if ch.Closed && !t.LogFileValidationEnabled {
		return w.dropPending(ctx, arn, region, t)
	}
	// Stopped (or validation turned off): the final digest, and later
	// ones continuing the chain for files delivered after it (the last
	// batch of a stopped trail is written after StopLogging).
	ch.setTrail(t)
	return w.write(ctx, arn, region, ch, now.Truncate(time.Second), true)
}

// dropPending forgets files of a trail that writes no digests.
func (w *Writer) dropPending(ctx context.Context, arn, region string, t *trail.Trail) error {
	if t.LogFileValidationEnabled {
		return nil // kept for the chain that starts when logging does
	}
	return w.st.Update(ctx, func(tx *state.Tx) error {
		var keys []string
		if err := tx.Scan(pendingPrefix(arn, region), func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

func (ch *chainRec) setTrail(t *trail.Trail) {
	ch.Bucket, ch.Prefix, ch.Account, ch.TrailName, ch.HomeRegion = t.S3BucketName, t.S3KeyPrefix, t.AccountID, t.Name, t.HomeRegion
}

func (w *Writer) saveChain(ctx context.Context, arn, region string, ch chainRec) error {
	if err := w.st.Update(ctx, func(tx *state.Tx) error { return tx.Put(chainKey(arn, region), ch) }); err != nil {
		return fmt.Errorf("digest: save chain of %s in %s: %w", arn, region, err)
	}
	return nil
}

// finishDeleted writes the final digest of every open chain whose trail is
// gone, then forgets the trail's digest state.
func (w *Writer) finishDeleted(ctx context.Context, present map[string]bool, now time.Time) error {
	type gone struct{ arn, region string }
	var chains []gone
	err := w.st.View(ctx, func(r state.Reader) error {
		return r.Scan(stateChainPrefix, func(k string, _ []byte) error {
			rest := strings.TrimPrefix(k, stateChainPrefix)
			i := strings.LastIndexByte(rest, '/')
			if i > 0 && !present[rest[:i]] {
				chains = append(chains, gone{rest[:i], rest[i+1:]})
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("digest: scan chains: %w", err)
	}
	var errs []error
	for _, g := range chains {
		ch, ok, err := w.loadChain(ctx, g.arn, g.region)
		if err != nil || !ok {
			errs = append(errs, err)
			continue
		}
		if !ch.Closed {
			if err := w.write(ctx, g.arn, g.region, ch, now.Truncate(time.Second), true); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		err = w.st.Update(ctx, func(tx *state.Tx) error {
			var keys []string
			if err := tx.Scan(pendingPrefix(g.arn, g.region), func(k string, _ []byte) error { keys = append(keys, k); return nil }); err != nil {
				return err
			}
			keys = append(keys, chainKey(g.arn, g.region), stateTrailPrefix+g.arn)
			for _, k := range keys {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("digest: forget deleted trail %s: %w", g.arn, err))
		}
	}
	return errors.Join(errs...)
}

// write writes the chain's next digest, ending at end (or at the end an
// interrupted attempt chose), then records it as the chain's newest.
func (w *Writer) write(ctx context.Context, arn, region string, ch chainRec, end time.Time, closeChain bool) error {
	// Files delivered up to the end; later ones wait for the next digest.
	// The set is chosen once, with the end, and stored before the object is
	// written, so every attempt at this digest writes the same bytes.
	if ch.PendingEnd.IsZero() {
		if !end.After(ch.Start) {
			end = ch.Start.Add(time.Second)
		}
		files, err := w.deliveredBy(ctx, arn, region, end)
		if err != nil {
			return err
		}
		ch.PendingEnd, ch.PendingFiles = end, make([]string, len(files))
		for i, f := range files {
			ch.PendingFiles[i] = f.stateKey
		}
		if err := w.saveChain(ctx, arn, region, ch); err != nil {
			return err
		}
	}
	end = ch.PendingEnd
	if err := w.hook("planned"); err != nil {
		return err
	}
	var files []keyedFile
	var err error
	if ch.PendingFiles == nil {
		// Planned by a Cairn that did not store the set.
		files, err = w.deliveredBy(ctx, arn, region, end)
	} else {
		files, err = w.loadPending(ctx, ch.PendingFiles)
	}
	if err != nil {
		return fmt.Errorf("digest: load pending log files of %s in %s: %w", arn, region, err)
	}

	loc := Location{Prefix: ch.Prefix, Account: ch.Account, SourceRegion: region, TrailName: ch.TrailName, HomeRegion: ch.HomeRegion}
	key := loc.Key(end)
	d := &Digest{
		AWSAccountID:             ch.Account,
		DigestStartTime:          FormatTime(ch.Start),
		DigestEndTime:            FormatTime(end),
		DigestS3Bucket:           ch.Bucket,
		DigestS3Object:           key,
		DigestSignatureAlgorithm: SignatureAlgorithm,
		LogFiles:                 make([]LogFile, 0, len(files)),
	}
	var newest, oldest time.Time
	for _, k := range files {
		f := k.f
		d.LogFiles = append(d.LogFiles, LogFile{S3Bucket: f.Bucket, S3Object: f.Key, HashValue: f.SHA256, HashAlgorithm: HashAlgorithm,
			NewestEventTime: FormatTime(f.NewestEventTime), OldestEventTime: FormatTime(f.OldestEventTime)})
		if newest.IsZero() || f.NewestEventTime.After(newest) {
			newest = f.NewestEventTime
		}
		if oldest.IsZero() || f.OldestEventTime.Before(oldest) {
			oldest = f.OldestEventTime
		}
	}
	if !newest.IsZero() {
		d.NewestEventTime, d.OldestEventTime = strp(FormatTime(newest)), strp(FormatTime(oldest))
	}
	if ch.LastKey != "" {
		d.PreviousDigestS3Bucket = strp(ch.LastBucket)
		d.PreviousDigestS3Object = strp(ch.LastKey)
		d.PreviousDigestHashValue = strp(ch.LastHash)
		d.PreviousDigestHashAlgorithm = strp(HashAlgorithm)
		d.PreviousDigestSignature = strp(ch.LastSig)
	}
	sk, err := w.keys.SigningKey(ctx, region, end)
	if err != nil {
		return err
	}
	d.DigestPublicKeyFingerprint = sk.Fingerprint
	body, hashHex, sigHex, err := Seal(d, sk)
	if err != nil {
		return err
	}
	err = w.store.Put(ctx, ch.Bucket, key, bytes.NewReader(body), int64(len(body)), objstore.PutOptions{
		ContentType: "application/json",
		// No Content-Encoding: CloudTrail stores digests as plain
		// objects whose bytes are gzip, and the CLI gunzips them itself.
		Metadata: map[string]string{MetaSignature: sigHex, MetaSignatureAlgorithm: SignatureAlgorithm},
	})
	now := w.opts.Clock()
	if err != nil {
		if rerr := w.trails.RecordDigestDelivery(ctx, arn, now, delivery.ErrorCode(err, false)); rerr != nil && !errors.Is(rerr, trail.ErrNotFound) {
			w.log.Warn("recording the digest delivery status failed", "trail", arn, "err", rerr)
		}
		return fmt.Errorf("digest: write s3://%s/%s: %w", ch.Bucket, key, err)
	}
	if err := w.hook("put"); err != nil {
		return err
	}
	err = w.st.Update(ctx, func(tx *state.Tx) error {
		for _, k := range files {
			if err := tx.Delete(k.stateKey); err != nil {
				return err
			}
		}
		ch.LastBucket, ch.LastKey, ch.LastHash, ch.LastSig = ch.Bucket, key, hashHex, sigHex
		ch.Start, ch.PendingEnd, ch.PendingFiles, ch.LastWritten = end, time.Time{}, nil, end
		ch.Closed = closeChain
		return tx.Put(chainKey(arn, region), ch)
	})
	if err != nil {
		return fmt.Errorf("digest: record digest s3://%s/%s (it will be rewritten): %w", ch.Bucket, key, err)
	}
	if rerr := w.trails.RecordDigestDelivery(ctx, arn, now, ""); rerr != nil && !errors.Is(rerr, trail.ErrNotFound) {
		w.log.Warn("recording the digest delivery status failed", "trail", arn, "err", rerr)
	}
	w.log.Debug("digest written", "trail", arn, "region", region, "key", key, "log_files", len(files), "final", closeChain)
	return nil
}

// keyedFile is a pending log file and its state key.
type keyedFile struct {
	stateKey string
	f        pendingFile
}

// deliveredBy lists the trail's pending log files in region delivered up
// to end, in state-key order.
func (w *Writer) deliveredBy(ctx context.Context, arn, region string, end time.Time) ([]keyedFile, error) {
	var files []keyedFile
	err := w.st.View(ctx, func(r state.Reader) error {
		return r.Scan(pendingPrefix(arn, region), func(k string, v []byte) error {
			var pf pendingFile
			if err := jsonUnmarshal(v, &pf); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			if !pf.DeliveredAt.Truncate(time.Second).After(end) {
				files = append(files, keyedFile{k, pf})
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("digest: load pending log files of %s in %s: %w", arn, region, err)
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].stateKey < files[j].stateKey })
	return files, nil
}

// loadPending reads the pending log files stored under keys, in order.
// They are deleted together with the chain's PendingFiles, so each should
// be there; one that is not (its trail's files were dropped meanwhile) is
// left out rather than holding the chain for ever.
func (w *Writer) loadPending(ctx context.Context, keys []string) ([]keyedFile, error) {
	files := make([]keyedFile, 0, len(keys))
	err := w.st.View(ctx, func(r state.Reader) error {
		for _, k := range keys {
			var pf pendingFile
			ok, err := r.Get(k, &pf)
			if err != nil {
				return fmt.Errorf("read %s: %w", k, err)
			}
			if !ok {
				w.log.Warn("a log file planned for a digest is no longer pending; the digest leaves it out", "state_key", k)
				continue
			}
			files = append(files, keyedFile{k, pf})
		}
		return nil
	})
	return files, err
}

// Seal serializes d, signs it with sk (filling nothing in d: the
// fingerprint must already be set) and gzips it. It returns the object
// body, the hex SHA-256 of the uncompressed JSON (the next digest's
// previousDigestHashValue) and the hex signature (its metadata and the next
// digest's previousDigestSignature). Everything is deterministic, so a
// rewrite after a crash produces the same object.
func Seal(d *Digest, sk *SigningKey) (body []byte, hashHex, sigHex string, err error) {
	raw, err := d.Marshal()
	if err != nil {
		return nil, "", "", err
	}
	sum := sha256.Sum256(raw)
	hashHex = hex.EncodeToString(sum[:])
	sig, err := sk.Sign(StringToSign(d, hashHex))
	if err != nil {
		return nil, "", "", err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, "", "", fmt.Errorf("digest: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, "", "", fmt.Errorf("digest: gzip: %w", err)
	}
	return buf.Bytes(), hashHex, hex.EncodeToString(sig), nil
}
