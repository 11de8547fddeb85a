package s3test

import (
	"os/exec"
	"runtime"
	"syscall"
)

// StartChild starts cmd so that the kernel kills it if the test binary
// dies without running its cleanups (a panic, a -timeout, kill -9): no
// orphaned servers keep ports and temp directories alive. The death
// signal fires when the thread that started the child exits, so the
// child is started and waited for on one locked thread that lives exactly
// as long as the child. The returned channel yields Wait's result.
func StartChild(cmd *exec.Cmd) (<-chan error, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}
