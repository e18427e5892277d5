// Command rywload serves `make bench-ryw`: a load test of shardgate's
// read-your-writes guarantee. It starts a PostgreSQL cluster (one primary,
// two streaming replicas) and shardgate in-process, in transaction mode,
// and runs many clients, each with its own connection, that either insert
// a row and read it back at once or just read. A read-back that misses the
// client's own row is a stale read, and there must be none.
//
// Meanwhile WAL replay is paused and resumed at random on the replicas, so
// that they keep falling behind: shardgate (ryw=lsn) must send each read
// to a replica that has replayed the client's last commit, or to the
// primary. The same workload then runs with every read on the primary, to
// show what read-your-writes with replica reads costs or saves, and,
// finally, with the guarantee off while no replica replays, to show that
// the check does catch stale reads when there are some.
//
// It prints throughput, stale reads, the share of reads replicas served
// and latency percentiles per mode, and exits 1 on any stale read, on any
// statement that failed or got no answer within 15s, when a proxy's
// sessions do not end after its clients left, when replicas served under
// 70% of the plain reads with read-your-writes on, or when the ryw=off
// check saw no stale read. A hung statement or shutdown also gets the
// process's goroutines, shardgate's included, dumped to a file.
//
// Usage:
//
//	rywload [--quick] [--duration 60s] [--clients 64] [--write-share 0.3]
//	        [--stale-check 5s] [--sync-commit] [--seed N]
package main
