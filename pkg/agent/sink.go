package agent

// Sink receives batches. Send is called from the agent's loop and must not
// block for long; a Sink that talks to the network queues. The Batch and its
// Profile must not be changed. Close flushes what can be flushed.
//
// A Sink may also have a Start() error method, which Agent.Start calls.
type Sink interface {
	Send(b *Batch) error
	Close() error
	String() string // where batches go, for logs
}
