package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestReplicaLifecycle(t *testing.T) {
	begin := time.Now()
	c := ForTest(t, Options{
		Shards:    1,
		Replicas:  1,
		Users:     []User{{Name: "app", Password: "app"}},
		Databases: []Database{{Name: "app", Owner: "app"}},
	})
	t.Logf("1 shard x 1 replica started in %v", time.Since(begin))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	primary, replica := c.Shards[0].Primary, c.Shards[0].Replicas[0]

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func(h *Host) string {
		t.Helper()
		n, err := h.QueryString(ctx, "SELECT count(*) FROM t")
		must(err)
		return n
	}
	replicate := func() {
		t.Helper()
		lsn, err := primary.CurrentLSN(ctx)
		must(err)
		must(replica.WaitReplayed(ctx, lsn))
	}

	// Users authenticate with SCRAM, on replicas too: roles predate the clone.
	conn, err := pgx.Connect(ctx, replica.DSN("app", "app", "app"))
	must(err)
	var who string
	must(conn.QueryRow(ctx, "SELECT current_user").Scan(&who))
	conn.Close(ctx)
	if who != "app" {
		t.Fatalf("current_user = %q, want app", who)
	}
	if conn, err := pgx.Connect(ctx, primary.DSN("app", "wrong", "app")); err == nil {
		conn.Close(ctx)
		t.Fatal("connected with a wrong password")
	}

	must(primary.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"))
	replicate()
	if n := count(replica); n != "1" {
		t.Fatalf("replica sees %s rows, want 1", n)
	}

	must(replica.PauseReplay(ctx))
	must(primary.Exec(ctx, "INSERT INTO t VALUES ($1)", 2))
	lsn, err := primary.CurrentLSN(ctx)
	must(err)
	// Once the replica has received the WAL, only the pause keeps the row
	// hidden, so the check below really exercises it.
	must(poll(ctx, 10*time.Millisecond, func() (bool, error) {
		v, err := replica.QueryString(ctx, "SELECT pg_last_wal_receive_lsn() >= $1::pg_lsn", lsn)
		return v == "t", err
	}, func() error { return context.DeadlineExceeded }))
	if n := count(replica); n != "1" {
		t.Fatalf("paused replica sees %s rows, want 1", n)
	}
	must(replica.ResumeReplay(ctx))
	must(replica.WaitReplayed(ctx, lsn))
	if n := count(replica); n != "2" {
		t.Fatalf("resumed replica sees %s rows, want 2", n)
	}

	must(primary.Kill())
	if err := primary.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("killed primary still answers")
	}
	must(primary.Start())
	if n := count(primary); n != "2" {
		t.Fatalf("restarted primary sees %s rows, want 2", n)
	}

	must(replica.Promote(ctx))
	rec, err := replica.InRecovery(ctx)
	must(err)
	if rec {
		t.Fatal("promoted replica is still in recovery")
	}
	must(replica.Exec(ctx, "INSERT INTO t VALUES (3)"))
	if n := count(replica); n != "3" {
		t.Fatalf("promoted replica sees %s rows, want 3", n)
	}
}

func TestDSNQuoting(t *testing.T) {
	h := &Host{Port: 5432}
	got := h.DSN("a b", `it's\`, "")
	want := `host=127.0.0.1 port=5432 user='a b' password='it\'s\\' dbname='' sslmode=disable`
	if got != want {
		t.Fatalf("DSN = %s, want %s", got, want)
	}
}
