package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// The flag handling every subcommand shares, so that they all answer -h,
// misplaced flags and stray arguments alike.

// usageWithFlags makes -h (and a flag error) print the subcommand's usage
// text and then its flags.
func usageWithFlags(fs *flag.FlagSet, usage string, stderr io.Writer) {
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintln(stderr, "\nflags:")
		fs.PrintDefaults()
	}
}

// parseInterspersed parses flags that may come after positional arguments
// ("delete CKIA… --data-dir d"), which flag.Parse alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseNoArgs parses the flags of a subcommand that takes no positional
// arguments: any left over are an error, after the usage.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(pos, " "))
	}
	return nil
}
