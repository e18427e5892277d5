#!/usr/bin/env bash
# Initialises a shard primary. The postgres image runs the files of
# /docker-entrypoint-initdb.d once, on the first start with an empty data
# directory, against a temporary server reachable only over the Unix
# socket; the real server starts after, with the pg_hba.conf written here.
#
# Creates:
#   - role app (LOGIN, password APP_PASSWORD) and database app owned by it;
#   - role REPLICATION_USER (REPLICATION, password REPLICATION_PASSWORD)
#     for the shard's streaming replica;
#   - the physical replication slot REPLICATION_SLOT, used by the replica,
#     so that the primary keeps the WAL the replica has not received yet.
#
# It works whether the entrypoint runs it (executable) or sources it, so it
# neither exits nor changes shell options beyond the entrypoint's own.
set -Eeo pipefail

psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password \
	--username "$POSTGRES_USER" --dbname postgres \
	--set app_password="${APP_PASSWORD:-app}" \
	--set repl_user="${REPLICATION_USER:-replicator}" \
	--set repl_password="${REPLICATION_PASSWORD:-replicator}" \
	--set repl_slot="${REPLICATION_SLOT:-replica1}" <<-'EOSQL'
	CREATE ROLE app LOGIN PASSWORD :'app_password';
	CREATE DATABASE app OWNER app;
	CREATE ROLE :"repl_user" WITH LOGIN REPLICATION PASSWORD :'repl_password';
	SELECT pg_create_physical_replication_slot(:'repl_slot');
EOSQL

# Who may connect over TCP. pg_hba.conf is read top down, first match wins:
# above this come initdb's trust lines for the Unix socket and 127.0.0.1
# (used by the healthchecks) and the image's "host all all all
# scram-sha-256". samenet is any address on a subnet the server is attached
# to, here the compose network. pg_basebackup copies this file to the
# replica.
cat >>"$PGDATA/pg_hba.conf" <<-EOF_HBA

	# added by deploy/compose/init-primary.sh
	host  replication  ${REPLICATION_USER:-replicator}  samenet  scram-sha-256
	host  all          all                               samenet  scram-sha-256
EOF_HBA
