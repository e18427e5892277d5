// Command relayfloor is a plain TCP relay in two I/O designs, to measure
// the least CPU a Go proxy can spend per transaction on this machine,
// before any PostgreSQL protocol work:
//
//   - goroutine: two goroutines per connection copying bytes, blocking in
//     Go's netpoller; the design shardgate's proxy uses today.
//   - epoll: one OS thread running a level-triggered epoll loop over raw
//     non-blocking sockets with raw system calls, as pgbouncer does in C.
//
// It neither parses nor pools: each client gets its own server connection.
// Run pgbench through each (and through pgbouncer) and compare the relay's
// CPU per transaction, as the README's benchmark section does:
//
//	go run ./test/cmd/relayfloor --listen 127.0.0.1:7001 --target 127.0.0.1:5432 --mode goroutine
//	go run ./test/cmd/relayfloor --listen 127.0.0.1:7002 --target 127.0.0.1:5432 --mode epoll
//
// Both run with GOMAXPROCS=1, as the benchmark runs shardgate.
package main
