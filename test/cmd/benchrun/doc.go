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
// Everything it starts (cluster, shardgate, pgbouncer) is stopped on exit
// and on Ctrl-C.
package main
