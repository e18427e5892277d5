// Package bench runs `make bench`: it compares shardgate with PostgreSQL
// reached directly and with pgbouncer, by running pgbench against all three
// on one real cluster in one run, and reports throughput, latency, their
// ratios and the proxies' CPU time per transaction.
//
// Running all targets in the same run, interleaved combination by
// combination, matters on a small shared machine: absolute numbers drift
// from run to run, ratios taken seconds apart drift much less, and CPU time
// per transaction, read from /proc, hardly drifts at all.
//
// The parts worth unit tests (parsing pgbench output and /proc/PID/stat,
// rendering configs and the report) are plain functions; Run wires them to
// the cluster, the proxies and pgbench.
//
// Its process helpers (StartProc, StartShardgate, BuildShardgate and
// their kin) also serve other benchmark tools, such as
// test/cmd/rebalancebench, so that child processes are started, named,
// logged and stopped the same way everywhere.
package bench
