package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/cairn-audit/cairn/internal/auth"
	"github.com/cairn-audit/cairn/internal/datadir"
)

const keysUsage = `usage:
  cairn keys create --name NAME [--role read-only|admin] [--data-dir DIR]
  cairn keys list [--data-dir DIR]
  cairn keys delete [--data-dir DIR] ACCESS_KEY_ID
  cairn keys export-public [--region R] --out FILE   digest-signing public keys, for offline validate-logs

The data directory defaults to $CAIRN_DATA_DIR, else ./cairn-data. These
commands are safe to run while 'cairn serve' uses the same directory; the
server notices new and deleted keys within a second.
`

// runKeys manages access keys (`cairn keys create|list|delete`) and
// exports the digest-signing public keys (`cairn keys export-public`).
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, keysUsage, []verb{{"create", keysCreate}, {"list", keysList}, {"delete", keysDelete},
		{"export-public", keysExportPublic}}, args, stdout, stderr)
}

// keysFlags is a FlagSet with the --data-dir every subcommand takes.
func keysFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("cairn keys "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", datadir.FromEnv(os.LookupEnv), "directory that holds Cairn's state (env CAIRN_DATA_DIR)")
	usageWithFlags(fs, keysUsage, stderr)
	return fs, dir
}

// openExisting opens the store of a data directory that must already exist,
// so that a mistyped --data-dir is reported instead of silently creating an
// empty store.
func openExisting(ctx context.Context, dir string) (*auth.Store, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	return auth.OpenContext(ctx, dir)
}

func keysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := keysFlags("create", stderr)
	name := fs.String("name", "", "user name of the key's identity (required; IAM user-name rules)")
	// Least privilege by default: an admin key must be asked for.
	role := fs.String("role", string(auth.RoleReadOnly), "read-only or admin")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *name == "" {
		fs.Usage()
		return errors.New("--name is required")
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return err
	}
	if err := auth.ValidateName(*name); err != nil {
		return err
	}
	store, err := auth.OpenContext(ctx, *dir)
	if err != nil {
		return err
	}
	k, secret, err := store.Create(ctx, *name, r)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created %s access key for user %q.\n\n", k.Role, k.Name)
	fmt.Fprintf(stdout, "Access key ID:     %s\n", k.AccessKeyID)
	fmt.Fprintf(stdout, "Secret access key: %s\n\n", secret)
	fmt.Fprintln(stdout, "The secret is shown only now; Cairn cannot show it again. For the AWS CLI and")
	fmt.Fprintln(stdout, "SDKs, add this to ~/.aws/credentials (rename the profile as you like):")
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, auth.CredentialsFile(auth.AdminProfile, k.AccessKeyID, secret))
	return nil
}

func keysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := keysFlags("list", stderr)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	store, err := openExisting(ctx, *dir)
	if err != nil {
		return err
	}
	keys, err := store.List(ctx)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		fmt.Fprintln(stdout, "No access keys.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCESS KEY ID\tNAME\tROLE\tCREATED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.AccessKeyID, k.Name, k.Role, k.Created.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func keysDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := keysFlags("delete", stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errors.New("delete takes exactly one ACCESS_KEY_ID")
	}
	store, err := openExisting(ctx, *dir)
	if err != nil {
		return err
	}
	if err := store.Delete(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Deleted access key %s.\n", pos[0])
	return nil
}
