//go:build !linux

package s3test

import "os/exec"

// StartChild starts cmd; the returned channel yields Wait's result.
func StartChild(cmd *exec.Cmd) (<-chan error, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return exited, nil
}
