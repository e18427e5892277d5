// Package catalog keeps the shard map in a PostgreSQL database, the
// catalog, shared by every proxy of a fleet.
//
// The catalog is a schema shardgate in one database (Setup creates it):
//
//	map                 one row: the map's version, its spec as JSON (a
//	                    shardmap.Spec) and the shard names it was written for
//	directory           (distribution, key) -> shard, for directory
//	                    distributions
//	twophase_decisions  the two-phase transactions decided to commit
//	proxies             a heartbeat row per running proxy
//
// A proxy opens a Store (Open), which seeds an empty catalog with the
// config file's map; a catalog that already holds one wins. It loads the
// map (Load), built over its own shards with the catalog's Directory, and
// follows changes with Watch: triggers NOTIFY a LISTEN connection within
// milliseconds, and a version poll every second catches what they miss.
// A map that does not build is refused and the one in force stays.
//
// The map changes by SetSpec (or `shardgate shardmap apply`), which
// writes a whole new spec as the next version in one transaction.
//
// The Directory caches entries in memory, bounded; Watch drops the ones
// changed or deleted in the catalog. New entries are recorded with
// INSERT ... ON CONFLICT DO NOTHING, so two proxies placing one key at
// once agree on its shard.
package catalog
