// Package rebalance moves a slice of a distribution (a hash range, a key
// range or directory keys) from one shard's primary to another's while
// traffic flows. This file describes the data path, Mover; the move's
// plan, catalog record and cutover build on it.
//
// A Mover uses PostgreSQL's built-in logical replication (wal_level =
// logical on the source):
//
//	EnsureSchema     tables missing on the target are created from the
//	                 source's definitions (pg_dump --schema-only)
//	StartCopy        publication on the source, each table filtered to the
//	                 range by Filter; slot; subscription on the target,
//	                 which copies the existing rows, then applies changes
//	Progress         per-table copy state and rows, slot lag
//	WaitCaughtUp     marker row written on the source, awaited on the
//	                 target: everything committed before is there
//	Fence / Unfence  triggers on the source refusing writes to the range
//	StopReplication  subscription, slots, publication, markers dropped
//	Verify           row counts and checksums of the range on both sides
//	Cleanup          the range deleted from the source in batches
//	Discard          abort: replication stopped, the target's copy deleted,
//	                 the fence dropped
//
// A move goes EnsureSchema, StartCopy, WaitCaughtUp (while the proxies
// freeze the range), Fence, WaitCaughtUp, the owner switch in the map,
// StopReplication, Verify, Cleanup; or, before the switch, Discard. The
// fence outlives the move: it keeps refusing stale writes to the old
// owner. A later move bringing the range back to that shard must drop it
// (Unfence with the old move's Job) before the switch.
//
// Every object is named after Mover.Job (say m12), so that a method
// called by a fresh process after a crash finds what an earlier one
// created, does only what is missing, and undoes it all:
//
//	source  publication sg_m12, logical slot sg_m12 (pgoutput),
//	        table public.sg_m12_marker,
//	        trigger sg_m12_fence on each table, calling
//	        function <table's schema>.sg_m12_fence_<table oid>
//	target  subscription sg_m12, table public.sg_m12_marker
//
// The subscription's initial copy also creates slots named
// pg_<subscription oid>_sync_<table oid>_<target system id> on the
// source; DROP SUBSCRIPTION drops them, and StopReplication drops any an
// unreachable source kept.
//
// Row placement is shardmap's: Filter hashes with the server's own
// hashint8extended, hashtextextended and uuid_hash_extended (seed 0),
// which shardmap.HashInt, HashText and HashUUID reproduce, and compares
// text ranges in the C collation, as shardmap does.
package rebalance
