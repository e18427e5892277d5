// Command rebalancebench serves `make bench-rebalance`: it measures
// online moves (shardgate rebalance move) on a fresh two-shard cluster
// while clients write through shardgate, and prints the copy rate and the
// distribution of the cutovers' write pauses.
//
// Usage:
//
//	rebalancebench [--quick] [--rows 1000000] [--cutovers 10] [--clients 8]
//	               [--rate 2000] [--max-pause 1s] [--proxy-bin PATH] [--keep-logs]
//
// The run, all on one machine:
//
//  1. Two shards (primaries only: a move reads from and writes to
//     primaries), the catalog database on s0, one shardgate following the
//     catalog, and a hash distribution t(id bigint primary key, a bigint,
//     b text, c timestamptz), about 100 bytes a row, whose map gives the
//     whole hash space to s0 as [,0) and [0,), s1 owning nothing.
//  2. --rows rows COPYed straight into s0, then ANALYZE.
//  3. Copy rate: [0,) (half the rows) moves to s1 while --clients clients
//     update and insert rows through shardgate across the key space,
//     --rate writes per second in all (the default leaves the 2-core
//     machine headroom; --rate 0 saturates it, which mostly measures
//     the apply worker's share of the CPU), then back to s0 with no
//     load.
//  4. Write pauses: --cutovers moves of [0, 2^60) (1/16 of the rows) back
//     and forth between s0 and s1 under the same load. For each, the
//     tool's write pause (from `rebalance status`) and the longest
//     latency any client saw for one write to a key of the moving range
//     during the whole move.
//  5. Checks: no client errors, no update that found no row, the shards'
//     row count and sum(a) equal to what the clients' successful writes
//     imply, and `rebalance verify` (placement).
//
// The move tool is the same shardgate binary, run as a child process
// exactly as an operator would, its output kept in the run's log
// directory (printed with --keep-logs, removed otherwise).
//
// Every process it starts (cluster, shardgate, a running move) is stopped
// and its temporary directories removed on exit and on Ctrl-C.
package main
