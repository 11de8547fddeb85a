package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

const lakeUsage = `usage: cairn lake VERB [flags]

CloudTrail Lake chores that take several AWS CLI calls (or JSON by hand):

  cairn lake stores                               list event data stores with status and retention
  cairn lake create NAME [--category C] [--retention DAYS] [--no-protection]
                                                  create a store of one event category (Management,
                                                  Data, ActivityAuditLog, ...)
  cairn lake import --store NAME s3://bucket/prefix [--start T] [--end T] [--wait]
                                                  copy a trail's log files into a store
  cairn lake imports                              list imports with their statistics

Stores are named by name, ID or ARN. --start/--end take RFC 3339 times, dates
(2024-05-01) or ages before now (7d, 2w), as cairn lookup's do. The connection flags are those of every client command.
`

// runLake is `cairn lake`.
func runLake(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, lakeUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errors.New("cairn lake needs a verb")
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("lake "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, lakeUsage); fs.PrintDefaults() }
	rf := addRemoteFlags(fs)
	switch verb {
	case "stores":
		if err := fs.Parse(args); err != nil {
			return err
		}
		client, _, err := rf.cloudTrail(ctx, nil)
		if err != nil {
			return err
		}
		return lakeStores(ctx, client, stdout)
	case "create":
		category := fs.String("category", "Management", "the store's event category")
		retention := fs.Int("retention", 0, "retention in days (default: CloudTrail's for the billing mode, 366)")
		noProtection := fs.Bool("no-protection", false, "create without termination protection")
		pos, err := parseInterspersed(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return errors.New("cairn lake create needs one store NAME")
		}
		client, _, err := rf.cloudTrail(ctx, nil)
		if err != nil {
			return err
		}
		in := &cloudtrail.CreateEventDataStoreInput{
			Name:                         aws.String(pos[0]),
			TerminationProtectionEnabled: aws.Bool(!*noProtection),
			AdvancedEventSelectors: []types.AdvancedEventSelector{{
				Name:           aws.String(*category + " events"),
				FieldSelectors: []types.AdvancedFieldSelector{{Field: aws.String("eventCategory"), Equals: []string{*category}}},
			}},
		}
		if *retention > 0 {
			in.RetentionPeriod = aws.Int32(int32(*retention))
		}
		out, err := client.CreateEventDataStore(ctx, in)
		if err != nil {
			return fmt.Errorf("CreateEventDataStore: %w", err)
		}
		fmt.Fprintf(stdout, "%s\t%s\n", aws.ToString(out.EventDataStoreArn), out.Status)
		return nil
	case "import":
		store := fs.String("store", "", "destination event data store (name, ID or ARN)")
		start := fs.String("start", "", "copy events from this time")
		end := fs.String("end", "", "copy events up to this time")
		wait := fs.Bool("wait", false, "wait for the import to end, showing its progress")
		pos, err := parseInterspersed(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 || *store == "" {
			return errors.New("cairn lake import needs --store and one s3://bucket/prefix")
		}
		client, creds, err := rf.cloudTrail(ctx, nil)
		if err != nil {
			return err
		}
		return lakeImport(ctx, client, creds.AccountID, rf.region, *store, pos[0], *start, *end, *wait, stdout, stderr)
	case "imports":
		if err := fs.Parse(args); err != nil {
			return err
		}
		client, _, err := rf.cloudTrail(ctx, nil)
		if err != nil {
			return err
		}
		return lakeImports(ctx, client, stdout)
	}
	fmt.Fprint(stderr, lakeUsage)
	return fmt.Errorf("cairn lake: unknown verb %q", verb)
}

func lakeStores(ctx context.Context, client *cloudtrail.Client, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSTATUS\tRETENTION\tPROTECTED")
	p := cloudtrail.NewListEventDataStoresPaginator(client, &cloudtrail.ListEventDataStoresInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("ListEventDataStores: %w", err)
		}
		for _, s := range page.EventDataStores {
			// The list's status, retention and protection members are
			// deprecated (AWS no longer sends them): ask each store.
			g, err := client.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: s.EventDataStoreArn})
			if err != nil {
				return fmt.Errorf("GetEventDataStore %s: %w", aws.ToString(s.EventDataStoreArn), err)
			}
			arn := aws.ToString(g.EventDataStoreArn)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%dd\t%v\n", aws.ToString(g.Name), arn[strings.LastIndexByte(arn, '/')+1:],
				g.Status, aws.ToInt32(g.RetentionPeriod), aws.ToBool(g.TerminationProtectionEnabled))
		}
	}
	return tw.Flush()
}

// optWhen is parseWhen for an optional flag.
func optWhen(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := parseWhen(s, time.Now())
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func lakeImport(ctx context.Context, client *cloudtrail.Client, account, region, store, uri, start, end string, wait bool, stdout, stderr io.Writer) error {
	id, err := resolveStoreID(ctx, client, store)
	if err != nil {
		return err
	}
	arn, err := client.GetEventDataStore(ctx, &cloudtrail.GetEventDataStoreInput{EventDataStore: aws.String(id)})
	if err != nil {
		return fmt.Errorf("GetEventDataStore: %w", err)
	}
	from, err := optWhen(start)
	if err != nil {
		return fmt.Errorf("--start: %w", err)
	}
	to, err := optWhen(end)
	if err != nil {
		return fmt.Errorf("--end: %w", err)
	}
	if account == "" {
		account = "000000000000"
	}
	out, err := client.StartImport(ctx, &cloudtrail.StartImportInput{
		Destinations: []string{aws.ToString(arn.EventDataStoreArn)},
		ImportSource: &types.ImportSource{S3: &types.S3ImportSource{
			S3LocationUri: aws.String(uri), S3BucketRegion: aws.String(region),
			// Cairn reads its own object store and assumes no role; the
			// model requires one, so a placeholder of the right form goes.
			S3BucketAccessRoleArn: aws.String("arn:aws:iam::" + account + ":role/cairn-import"),
		}},
		StartEventTime: from, EndEventTime: to,
	})
	if err != nil {
		return fmt.Errorf("StartImport: %w", err)
	}
	importID := aws.ToString(out.ImportId)
	fmt.Fprintln(stdout, importID)
	if !wait {
		return nil
	}
	for {
		g, err := client.GetImport(ctx, &cloudtrail.GetImportInput{ImportId: aws.String(importID)})
		if err != nil {
			return fmt.Errorf("GetImport: %w", err)
		}
		st := g.ImportStatistics
		fmt.Fprintf(stderr, "\rimport %s %s: %d/%d prefixes, %d files, %d events, %d failed", importID, g.ImportStatus,
			aws.ToInt64(st.PrefixesCompleted), aws.ToInt64(st.PrefixesFound), aws.ToInt64(st.FilesCompleted), aws.ToInt64(st.EventsCompleted), aws.ToInt64(st.FailedEntries))
		switch g.ImportStatus {
		case types.ImportStatusCompleted:
			fmt.Fprintln(stderr)
			return nil
		case types.ImportStatusFailed, types.ImportStatusStopped:
			fmt.Fprintln(stderr)
			return fmt.Errorf("import %s %s (see aws cloudtrail list-import-failures --import-id %s)", importID, g.ImportStatus, importID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func lakeImports(ctx context.Context, client *cloudtrail.Client, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMPORT\tSTATUS\tDESTINATION\tCREATED")
	p := cloudtrail.NewListImportsPaginator(client, &cloudtrail.ListImportsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("ListImports: %w", err)
		}
		for _, im := range page.Imports {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", aws.ToString(im.ImportId), im.ImportStatus, strings.Join(im.Destinations, ","),
				aws.ToTime(im.CreatedTimestamp).UTC().Format(time.RFC3339))
		}
	}
	return tw.Flush()
}
