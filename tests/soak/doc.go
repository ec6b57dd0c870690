// Package soak holds the agent's soak test (make soak; docs/RELIABILITY.md):
// a system-wide agent over processes and threads that come and go, shipping
// to a Pyroscope-compatible endpoint that goes down, slows, fails and comes
// back, killed with SIGKILL and restarted on the way; a recording endpoint
// checks that every batch arrived once and in order, or is accounted for.
// It is behind the `soak` build tag: not part of make test.
package soak
