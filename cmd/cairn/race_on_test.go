//go:build race

package main

// raceEnabled: the race detector slows a process down several times
// over; timing bounds scale by raceFactor.
const raceEnabled = true
