package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cairn-audit/cairn/internal/datadir"
	"github.com/cairn-audit/cairn/internal/objstore"
	"github.com/cairn-audit/cairn/internal/objstore/stores"
)

const bucketsUsage = `usage:
  cairn buckets create NAME [--store URL] [--data-dir DIR]
  cairn buckets list [--store URL] [--data-dir DIR]
  cairn buckets upload BUCKET DIR [--prefix P] [--store URL] [--data-dir DIR]

A trail can only deliver to a bucket that exists, as in AWS; these commands
make and show buckets in the object store 'cairn serve' delivers to.
upload copies the files under DIR into BUCKET, each under its path
relative to DIR (after --prefix): how trail log files you already have
(an AWSLogs/ tree) get into the store for a Lake import (StartImport).

The store defaults to file://<data-dir>/buckets and the data directory to
./cairn-data; CAIRN_STORE and CAIRN_DATA_DIR set them, and flags win over
both. For an s3:// store (s3://HOST[:PORT]?region=R&tls=false) credentials
come from CAIRN_S3_ACCESS_KEY_ID and CAIRN_S3_SECRET_ACCESS_KEY, else from
the AWS SDK's default chain. Bucket names follow S3's rules.
`

// runBuckets manages buckets of the object store: `cairn buckets create|list`.
func runBuckets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, bucketsUsage, []verb{{"create", bucketsCreate}, {"list", bucketsList}, {"upload", bucketsUpload}}, args, stdout, stderr)
}

// bucketsFlags holds the flags every buckets subcommand takes.
type bucketsFlags struct {
	fs                *flag.FlagSet
	store, dataDir    *string
	s3KeyID, s3Secret *string
	positionals       []string
	storeURL          string
}

// parseBucketsFlags parses args (flags may follow the bucket name) and
// settles the store URL: flag, then CAIRN_* environment, then default.
func parseBucketsFlags(name string, args []string, stderr io.Writer) (*bucketsFlags, error) {
	fs := flag.NewFlagSet("cairn buckets "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &bucketsFlags{
		fs:       fs,
		store:    fs.String("store", "", "object store URL: file://DIR or s3://HOST[:PORT]?region=..&tls=false (env CAIRN_STORE; default file://<data-dir>/buckets)"),
		dataDir:  fs.String("data-dir", datadir.Default, "directory that holds Cairn's state (env CAIRN_DATA_DIR)"),
		s3KeyID:  fs.String("s3-access-key-id", "", "access key for an s3:// store (env CAIRN_S3_ACCESS_KEY_ID; default: the AWS SDK's credential chain)"),
		s3Secret: fs.String("s3-secret-access-key", "", "secret key for an s3:// store; prefer the env CAIRN_S3_SECRET_ACCESS_KEY"),
	}
	usageWithFlags(fs, bucketsUsage, stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	f.positionals = pos
	if _, err := applySettings(fs, "", os.LookupEnv); err != nil {
		return nil, err
	}
	f.storeURL = *f.store
	if f.storeURL == "" {
		u, err := datadir.StoreURL(*f.dataDir)
		if err != nil {
			return nil, err
		}
		f.storeURL = u
	}
	return f, nil
}

func (f *bucketsFlags) open(ctx context.Context) (objstore.Store, error) {
	return stores.Open(ctx, f.storeURL, stores.Options{AccessKeyID: *f.s3KeyID, SecretAccessKey: *f.s3Secret})
}

func bucketsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseBucketsFlags("create", args, stderr)
	if err != nil {
		return err
	}
	if len(f.positionals) != 1 {
		f.fs.Usage()
		if len(f.positionals) == 0 {
			return errors.New("missing bucket name")
		}
		return fmt.Errorf("unexpected arguments: %s", strings.Join(f.positionals[1:], " "))
	}
	name := f.positionals[0]
	// Check before opening, so a typo never creates a store directory.
	if err := objstore.ValidBucketName(name); err != nil {
		return err
	}
	store, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.CreateBucket(ctx, name); err != nil {
		if errors.Is(err, objstore.ErrBucketExists) {
			return fmt.Errorf("bucket %s already exists in %s", name, f.storeURL)
		}
		return fmt.Errorf("create bucket %s in %s: %w", name, f.storeURL, err)
	}
	fmt.Fprintf(stdout, "Created bucket %s in %s\n", name, f.storeURL)
	return nil
}

func bucketsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseBucketsFlags("list", args, stderr)
	if err != nil {
		return err
	}
	if len(f.positionals) > 0 {
		f.fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(f.positionals, " "))
	}
	if dir, ok := strings.CutPrefix(f.storeURL, "file://"); ok && dir != "" {
		// Listing must not create the store directory as a side effect
		// (opening a file store would): no directory means no buckets.
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stdout, "No buckets in %s.\n", f.storeURL)
			return nil
		}
	}
	store, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	buckets, err := store.ListBuckets(ctx)
	if err != nil {
		return fmt.Errorf("list buckets in %s: %w", f.storeURL, err)
	}
	if len(buckets) == 0 {
		fmt.Fprintf(stdout, "No buckets in %s.\n", f.storeURL)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCREATED")
	for _, b := range buckets {
		created := "-"
		if !b.CreationDate.IsZero() {
			created = b.CreationDate.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\n", b.Name, created)
	}
	return tw.Flush()
}

func bucketsUpload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	prefixArgs, rest := cutFlag(args, "prefix")
	f, err := parseBucketsFlags("upload", rest, stderr)
	if err != nil {
		return err
	}
	if len(f.positionals) != 2 {
		f.fs.Usage()
		return errors.New("upload needs a BUCKET and a DIR")
	}
	bucket, dir := f.positionals[0], f.positionals[1]
	prefix := strings.Trim(prefixArgs, "/")
	if prefix != "" {
		prefix += "/"
	}
	store, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	n := 0
	var size int64
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		file, err := os.Open(path)
		if err != nil {
			return err
		}
		defer file.Close()
		st, err := file.Stat()
		if err != nil {
			return err
		}
		key := prefix + filepath.ToSlash(rel)
		opts := objstore.PutOptions{}
		if strings.HasSuffix(key, ".gz") {
			opts.ContentType = "application/json"
			opts.ContentEncoding = "gzip"
		}
		if err := store.Put(ctx, bucket, key, file, st.Size(), opts); err != nil {
			return fmt.Errorf("upload %s to %s/%s: %w", path, bucket, key, err)
		}
		n++
		size += st.Size()
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Uploaded %d files (%d bytes) to %s in %s\n", n, size, bucket, f.storeURL)
	return nil
}

// cutFlag takes --name VALUE or --name=VALUE out of args.
func cutFlag(args []string, name string) (string, []string) {
	var val string
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--"+name || a == "-"+name:
			if i+1 < len(args) {
				val = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--"+name+"=") || strings.HasPrefix(a, "-"+name+"="):
			_, val, _ = strings.Cut(a, "=")
		default:
			out = append(out, a)
		}
	}
	return val, out
}
