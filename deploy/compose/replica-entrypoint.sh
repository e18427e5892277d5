#!/usr/bin/env bash
# Entrypoint of a shard's streaming replica, in place of the postgres
# image's docker-entrypoint.sh (which would run initdb on the empty data
# directory and make a second primary).
#
# On the first start (no PG_VERSION in PGDATA) it waits for the primary with
# pg_isready and clones it with `pg_basebackup -R -X stream`, which also
# writes primary_conninfo (and primary_slot_name) to postgresql.auto.conf
# and creates standby.signal. On later starts it keeps the data directory.
# Then it runs its arguments, postgres and its -c settings, as the postgres
# user.
#
# Environment:
#   PRIMARY_HOST          the primary's host name (required)
#   PRIMARY_PORT          default 5432
#   REPLICATION_USER      default replicator
#   REPLICATION_PASSWORD  required
#   REPLICATION_SLOT      physical slot on the primary; empty for none
#   REPLICA_NAME          application_name towards the primary (shown in
#                         pg_stat_replication), default the host name
#   PRIMARY_WAIT_SECONDS  how long to wait for the primary, default 300
#   PGDATA                set by the image: /var/lib/postgresql/data
set -Eeuo pipefail

: "${PRIMARY_HOST:?set PRIMARY_HOST to the host name of the primary}"
: "${PRIMARY_PORT:=5432}"
: "${REPLICATION_USER:=replicator}"
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"
: "${REPLICATION_SLOT:=}"
: "${REPLICA_NAME:=${HOSTNAME:-replica}}"
: "${PRIMARY_WAIT_SECONDS:=300}"
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

# Like the image's entrypoint: no arguments or flags only mean postgres.
if [ "$#" -eq 0 ] || [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

case "$PGDATA" in
/ | '')
	log "refusing PGDATA='$PGDATA'"
	exit 1
	;;
esac

# As root: make the data directory the postgres user's, then come back as
# it. A fresh volume is root's or 1777; postgres wants 0700.
if [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
	chmod 0700 "$PGDATA"
	exec gosu postgres bash "$0" "$@"
fi

# conninfo_quote VALUE: VALUE as a libpq connection string value.
conninfo_quote() {
	local bs=\\ q=\' v=$1
	v=${v//"$bs"/"$bs$bs"}
	v=${v//"$q"/"$bs$q"}
	printf "'%s'" "$v"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	log "waiting for the primary $PRIMARY_HOST:$PRIMARY_PORT"
	deadline=$((SECONDS + PRIMARY_WAIT_SECONDS))
	until pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPLICATION_USER" -d postgres; do
		if ((SECONDS >= deadline)); then
			log "the primary $PRIMARY_HOST:$PRIMARY_PORT is not ready after ${PRIMARY_WAIT_SECONDS}s"
			exit 1
		fi
		sleep 1
	done

	# Leftovers of an interrupted clone: pg_basebackup wants an empty
	# directory, and without PG_VERSION this is no usable cluster.
	find "$PGDATA" -mindepth 1 -delete

	log "cloning $PRIMARY_HOST:$PRIMARY_PORT into $PGDATA"
	# The password goes into the connection string, so that -R writes it to
	# primary_conninfo and the walreceiver can log in after restarts.
	conninfo="host=$(conninfo_quote "$PRIMARY_HOST") port=$(conninfo_quote "$PRIMARY_PORT")"
	conninfo+=" user=$(conninfo_quote "$REPLICATION_USER") password=$(conninfo_quote "$REPLICATION_PASSWORD")"
	conninfo+=" application_name=$(conninfo_quote "$REPLICA_NAME")"
	slot=()
	if [ -n "$REPLICATION_SLOT" ]; then
		slot=(--slot "$REPLICATION_SLOT")
	fi
	pg_basebackup --pgdata "$PGDATA" --dbname "$conninfo" \
		--write-recovery-conf --wal-method stream --checkpoint fast \
		"${slot[@]}"
	chmod 0700 "$PGDATA"
	log "clone done"
else
	log "data directory already holds a cluster; starting it"
fi

exec "$@"
