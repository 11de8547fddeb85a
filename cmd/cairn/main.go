// Command cairn is a self-hosted audit trail that speaks AWS CloudTrail.
//
// Each subcommand lives in its own file; main only dispatches, so that a
// subcommand can be read and tested on its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command runs one subcommand with its arguments (without the name).
type command struct {
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	summary string
}

func commands() map[string]command {
	return map[string]command{
		"serve":         {runServe, "run the Cairn server (CloudTrail API, event history, delivery)"},
		"version":       {runVersion, "print the version"},
		"keys":          {runKeys, "manage access keys (create, list, delete) and export the digest-signing public keys"},
		"buckets":       {runBuckets, "manage buckets of the object store: create, list"},
		"lookup":        {runLookup, "search the event history (LookupEvents) from the command line"},
		"import":        {runImport, "import CloudTrail records into a running server"},
		"lake":          {runLake, "CloudTrail Lake chores: list and create event data stores, import trail logs"},
		"query":         {runQuery, "run a CloudTrail Lake SQL query and print its rows (table, CSV or JSON)"},
		"validate-logs": {runValidateLogs, "validate digest and log files like aws cloudtrail validate-logs, with more checks"},
		"bench":         {runBench, "benchmarks: ingest, lookup and s3proxy against running servers, delivery in-process"},
	}
}

func main() {
	ctx, stop := signalContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "cairn: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ec exitCode
		if errors.As(err, &ec) {
			return int(ec)
		}
		fmt.Fprintf(stderr, "cairn %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// verb is one subcommand of a command that has several (cairn keys
// create, cairn bench lookup, ...).
type verb struct {
	name string
	run  func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// dispatch runs the verb args[0] names, so that every command with verbs
// answers a missing, unknown or -h verb the same way: its usage on stderr
// and an error that lists the verbs.
func dispatch(ctx context.Context, usage string, verbs []verb, args []string, stdout, stderr io.Writer) error {
	names := make([]string, len(verbs))
	for i, v := range verbs {
		names[i] = v.name
	}
	list := strings.Join(names, ", ")
	if i := strings.LastIndex(list, ", "); i >= 0 {
		list = list[:i] + " or " + list[i+2:]
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing subcommand: " + list)
	}
	for _, v := range verbs {
		if v.name == args[0] {
			return v.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprint(stderr, usage)
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return flag.ErrHelp
	}
	return fmt.Errorf("unknown subcommand %q: want %s", args[0], list)
}

// exitCode lets a subcommand choose its exit status without printing an
// error (validate-logs exits 1 after printing its own findings).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: cairn <command> [flags]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'cairn <command> -h' for the command's flags.")
}
