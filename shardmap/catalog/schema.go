package catalog

// channel is the NOTIFY channel the catalog's triggers signal on. Payloads:
//
//	map <version>        the map row got a new version
//	key ["dist","key"]   a directory entry was changed or deleted
//	directory            the directory changed too much to name (flush all)
const channel = "shardgate_catalog"

// schemaLockKey serialises schema setup across proxies starting at once:
// CREATE ... IF NOT EXISTS alone races (two sessions can both find a table
// missing, and one then fails on the catalog's unique index). It is
// "shardgat" in ASCII, unlikely to collide with an application's keys.
const schemaLockKey int64 = 0x7368617264676174

// schemaVersion marks, as the comment on shardgate.map, a catalog whose
// schema is complete and current. Setup then changes nothing, so proxies
// may log in as a role that can read and write the tables but not own
// them, and a start takes no lock but the advisory one.
const schemaVersion = "shardgate catalog schema 3"

// schemaSQL creates the catalog, idempotently. It runs in one transaction
// after pg_advisory_xact_lock(schemaLockKey).
//
// map holds one row: the current shard map. directory_generation counts
// changes and deletions in the directory, so that the version poll also
// notices directory changes whose NOTIFY was lost. New directory entries
// bump nothing: no proxy can have cached a key that did not exist.
//
// Triggers are created only when missing, because DROP TRIGGER would take
// an exclusive lock on a table that running proxies are using.
const schemaSQL = `
CREATE SCHEMA IF NOT EXISTS shardgate;

CREATE TABLE IF NOT EXISTS shardgate.map (
	id boolean PRIMARY KEY DEFAULT true CHECK (id),
	version bigint NOT NULL CHECK (version > 0),
	spec jsonb NOT NULL,
	shards text[] NOT NULL,
	directory_generation bigint NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS shardgate.directory (
	distribution text NOT NULL,
	key text NOT NULL,
	shard text NOT NULL,
	PRIMARY KEY (distribution, key)
);

CREATE TABLE IF NOT EXISTS shardgate.twophase_decisions (
	gid text PRIMARY KEY,
	decided_at timestamptz NOT NULL DEFAULT now()
);
-- commit: the outcome recorded first, by the committing proxy (true) or
-- by a resolver that found the transaction in doubt (false). The primary
-- key makes the first one the only one.
ALTER TABLE shardgate.twophase_decisions ADD COLUMN IF NOT EXISTS commit boolean NOT NULL DEFAULT true;

-- map_acks: the last map version each proxy runs with nothing in flight
-- against its frozen ranges; an online move's cutover waits for them.
CREATE TABLE IF NOT EXISTS shardgate.map_acks (
	name text PRIMARY KEY,
	version bigint NOT NULL,
	acked_at timestamptz NOT NULL DEFAULT now()
);

-- moves: the online moves (shardgate rebalance), their phase and
-- figures, so that a stopped move resumes or aborts where it was.
CREATE TABLE IF NOT EXISTS shardgate.moves (
	id bigserial PRIMARY KEY,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	phase text NOT NULL,
	plan jsonb NOT NULL,
	figures jsonb NOT NULL DEFAULT '{}',
	error text NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS shardgate.proxies (
	name text PRIMARY KEY,
	addr text NOT NULL,
	started_at timestamptz NOT NULL,
	seen_at timestamptz NOT NULL
);

CREATE OR REPLACE FUNCTION shardgate.notify_map() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('shardgate_catalog', 'map ' || NEW.version);
	RETURN NULL;
END $$;

-- A changed or deleted entry is named, so proxies drop just that key; a
-- name too long for a NOTIFY payload (8000 bytes) flushes everything.
CREATE OR REPLACE FUNCTION shardgate.notify_directory_key() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	payload text := 'key ' || json_build_array(OLD.distribution, OLD.key)::text;
BEGIN
	IF octet_length(payload) > 7000 THEN
		payload := 'directory';
	END IF;
	PERFORM pg_notify('shardgate_catalog', payload);
	RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION shardgate.directory_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE shardgate.map SET directory_generation = directory_generation + 1;
	IF TG_OP = 'TRUNCATE' THEN
		PERFORM pg_notify('shardgate_catalog', 'directory');
	END IF;
	RETURN NULL;
END $$;

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'shardgate.map'::regclass AND tgname = 'map_inserted') THEN
		CREATE TRIGGER map_inserted AFTER INSERT ON shardgate.map
			FOR EACH ROW EXECUTE FUNCTION shardgate.notify_map();
	END IF;
	IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'shardgate.map'::regclass AND tgname = 'map_updated') THEN
		CREATE TRIGGER map_updated AFTER UPDATE ON shardgate.map
			FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
			EXECUTE FUNCTION shardgate.notify_map();
	END IF;
	IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'shardgate.directory'::regclass AND tgname = 'directory_key_changed') THEN
		CREATE TRIGGER directory_key_changed AFTER UPDATE OR DELETE ON shardgate.directory
			FOR EACH ROW EXECUTE FUNCTION shardgate.notify_directory_key();
	END IF;
	IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'shardgate.directory'::regclass AND tgname = 'directory_changed') THEN
		CREATE TRIGGER directory_changed AFTER UPDATE OR DELETE OR TRUNCATE ON shardgate.directory
			FOR EACH STATEMENT EXECUTE FUNCTION shardgate.directory_changed();
	END IF;
END $$;

COMMENT ON TABLE shardgate.map IS '` + schemaVersion + `';
`
