package datadir

import (
	"fmt"
	"path/filepath"
)

// Default is the data directory when neither --data-dir nor
// CAIRN_DATA_DIR names one.
const Default = "./cairn-data"

// EnvVar names the data directory for every command.
const EnvVar = "CAIRN_DATA_DIR"

// FromEnv is the data directory a command uses when no --data-dir is
// given: CAIRN_DATA_DIR when set and not empty, else Default. lookupEnv is
// os.LookupEnv outside tests.
func FromEnv(lookupEnv func(string) (string, bool)) string {
	if v, ok := lookupEnv(EnvVar); ok && v != "" {
		return v
	}
	return Default
}

// Path is the entry name (Journal, State, ...) of the data directory dir.
func Path(dir, name string) string { return filepath.Join(dir, name) }

// StoreURL is the object store of a data directory when --store is not
// given: the file store in its Buckets directory, as an absolute file://
// URL so that it means the same whatever the working directory.
func StoreURL(dir string) (string, error) {
	abs, err := filepath.Abs(Path(dir, Buckets))
	if err != nil {
		return "", fmt.Errorf("resolve the default object store under %s: %w", dir, err)
	}
	return "file://" + abs, nil
}
