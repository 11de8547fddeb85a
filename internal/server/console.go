package server

import "net/http"

// mountConsole serves the web console on Cairn's own listener. The console
// is being built (issue 7); until then nothing is mounted.
func (s *Server) mountConsole(mux *http.ServeMux) error {
	_ = mux
	return nil
}
