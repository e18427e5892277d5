// Package evloop runs the proxy's sockets on one event loop: an OS thread
// waiting in epoll(7) and doing its reads and writes with raw system
// calls, as pgbouncer does in C.
//
// Why: a goroutine per socket direction costs about 17 us of CPU per
// pooled transaction on a small host (two goroutine wake-ups, the
// netpoller's extra EAGAIN reads, the scheduler), against about 11 us for
// an epoll loop (measured with test/cmd/relayfloor). The proxy's steady
// state, a transaction-mode client sending a statement and its server
// answering, needs no goroutine at all: the loop calls the proxy's
// handlers when a socket is ready, and they run without blocking.
//
// A socket the loop watches is a Conn. It is taken out of Go's netpoller
// (so that only one poller wakes for it) and still behaves as a net.Conn
// for goroutines: a Read or Write that would block waits for the loop's
// readiness report, with deadlines. While a handler is installed, the loop
// owns the socket's reads: Read never waits and reports ErrWouldBlock,
// and the handler runs on the loop whenever the socket is ready.
package evloop
