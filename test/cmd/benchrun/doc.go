// Command benchrun serves `make bench`: in one run on one freshly started
// PostgreSQL cluster it benchmarks, with pgbench, the database reached
// directly, through shardgate and through pgbouncer (installed with apt-get
// when missing and possible), and prints per-workload tables of
// throughput, latency, shardgate's throughput ratios and each proxy's CPU
// time per transaction. The same tables are written as markdown to --out.
//
// Usage:
//
//	benchrun [--quick] [--duration 10s] [--clients 1,16,64]
//	         [--protocols simple,extended,prepared] [--workloads select-only,tpc-b]
//	         [--targets direct,shardgate,pgbouncer] [--pool-size 64] [--scale 10]
//	         [--shards 1] [--replicas 0] [--proxy-bin PATH] [--out bench-results.md]
//	         [--raw DIR] [--strict]
//
// With --sharding it runs the sharding benchmark instead (make
// bench-sharding; bench.RunSharding): on three fresh primaries, one holding
// every row and two holding the same rows split by a hash map, pgbench
// point selects by key (simple, extended, prepared; 16 and 64 clients) go
// through shardgate with two shards and a map, through shardgate with one
// shard and no map, and to PostgreSQL directly, and the tables show the
// tps ratio sg2/sg1 (target >= 0.95) and each proxy's CPU per transaction;
// then scatter queries over 1M rows (count, ORDER BY ... LIMIT, sum/avg,
// GROUP BY, a 1% filter) are timed through the sharded proxy against the
// unsharded server, median of --scatter-runs each:
//
//	benchrun --sharding [--quick] [--duration 8s] [--rounds 2] [--clients 16,64]
//	         [--protocols simple,extended,prepared] [--users 1000000] [--rows 1000000]
//	         [--scatter-runs 7] [--pool-size 64] [--proxy-bin PATH] [--out FILE] [--strict]
//	         [--perf DIR]
//
// --perf DIR records each proxy with `perf record -g` during the first
// round's point selects, to see where a proxy's CPU goes (perf report -i).
//
// Everything it starts (cluster, shardgate, pgbouncer) is stopped on exit
// and on Ctrl-C.
package main
