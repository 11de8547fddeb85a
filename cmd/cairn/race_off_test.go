//go:build !race

package main

// raceEnabled says the test binary (and so every `cairn serve` child it
// starts, which is the same binary) runs under the race detector.
const raceEnabled = false
