package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shardgate/shardgate/shardmap"
	"github.com/shardgate/shardgate/test/cluster"
)

// buildShardgate builds the shardgate binary for tests that run it as a
// process of its own, to kill it.
func buildShardgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shardgate")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/shardgate/shardgate/cmd/shardgate")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// shardgateProcess is a running shardgate binary.
type shardgateProcess struct {
	cmd  *exec.Cmd
	addr string
	log  *strings.Builder
}

func startShardgate(t *testing.T, bin, config string) *shardgateProcess {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shardgate.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &shardgateProcess{log: &strings.Builder{}}
	p.cmd = exec.Command(bin, "serve", "-c", path)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	for _, line := range strings.Split(config, "\n") {
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "addr: "); ok && p.addr == "" {
			p.addr = a
		}
	}
	if !eventually(t, 30*time.Second, func() bool {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("shardgate did not start listening on %s:\n%s", p.addr, p.log)
	}
	return p
}

func (p *shardgateProcess) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestTwoPhaseKill kills the shardgate process (SIGKILL) between PREPARE
// TRANSACTION and COMMIT PREPARED, in the two places that matter: before
// the commit decision is recorded in the catalog, and after it with one
// shard committed and the other not. Restarted with the same node name,
// shardgate resolves the in-doubt transaction: rolled back in the first
// case, committed in the second. No shard keeps half of it.
func TestTwoPhaseKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	if pg == nil {
		t.Skip("no PostgreSQL cluster")
	}
	c := cluster.ForTest(t, cluster.Options{
		Shards:    2,
		Users:     []cluster.User{{Name: "app", Password: "app"}},
		Databases: []cluster.Database{{Name: "app", Owner: "app"}, {Name: "catalog", Owner: "app"}},
	})
	bin := buildShardgate(t)
	addr := freeAddr(t)
	config := fmt.Sprintf(`listen:
  addr: %s
pool:
  mode: transaction
users:
  - name: app
    password: app
    auth: scram-sha-256
shards:
  - name: s0
    hosts: [{ addr: %s, role: primary }]
  - name: s1
    hosts: [{ addr: %s, role: primary }]
sharding:
  distributions:
    - { name: users, method: hash, key_type: bigint, shards: [s0, s1], tables: [{ name: users, key: id }] }
  two_phase_commit: true
  node_name: killtest
catalog:
  dsn: postgres://app:app@%s/catalog?sslmode=disable
`, addr, c.Shards[0].Primary.Addr(), c.Shards[1].Primary.Addr(), c.Shards[1].Primary.Addr())
	ctx := ctxT(t)
	top := t
	p := startShardgate(t, bin, config)
	dsn := fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", addr)
	conn := connectDSN(t, dsn)
	if _, err := conn.Exec(ctx, "create table users (id bigint primary key, name text)"); err != nil {
		t.Fatalf("%v\n%s", err, p.log)
	}
	spec := shardmap.Spec{Distributions: []shardmap.DistributionSpec{{Name: "users", Method: shardmap.MethodHash, KeyType: "bigint", Shards: []string{"s0", "s1"},
		Tables: []shardmap.TableSpec{{Name: "users", Key: "id"}}}}}
	m, _ := shardmap.Build(spec, []string{"s0", "s1"}, 1, nil)
	a, b := twoKeysOnTwoShards(t, m.Distribution("users"))
	// The catalog is on s1: the second case makes s0's commits hang.
	catalog := connectDSN(t, c.Shards[1].Primary.DSN("app", "app", "catalog"))
	super0 := connectDSN(t, c.Shards[0].Primary.DSN("postgres", "", "postgres"))
	rows := func() int64 {
		return countOn(t, c, 0, "select count(*) from users") + countOn(t, c, 1, "select count(*) from users")
	}
	// commitBoth starts a transaction writing on both shards and sends
	// its COMMIT, which will not return: the process dies under it.
	commitBoth := func(id1, id2 int64) {
		conn := connectDSN(t, dsn)
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []int64{id1, id2} {
			if _, err := tx.Exec(ctx, "insert into users (id, name) values ($1, 'x')", id); err != nil {
				t.Fatal(err)
			}
		}
		go tx.Commit(context.Background())
	}
	waitPrepared := func(want0, want1 int64) {
		t.Helper()
		if !eventually(t, 20*time.Second, func() bool {
			got := preparedOn(t, c)
			return got[0] == want0 && got[1] == want1
		}) {
			t.Fatalf("prepared transactions %v, want [%d %d]\n%s", preparedOn(t, c), want0, want1, p.log)
		}
	}

	t.Run("killed before the decision", func(t *testing.T) {
		// Holding a lock on the decision table stops the commit after
		// both shards prepared.
		lock, err := catalog.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lock.Exec(ctx, "lock table shardgate.twophase_decisions in access exclusive mode"); err != nil {
			t.Fatal(err)
		}
		commitBoth(a, b)
		waitPrepared(1, 1)
		p.kill()
		lock.Rollback(ctx)
		if rows() != 0 {
			t.Fatal("rows visible before any commit")
		}
		p = startShardgate(top, bin, config) // it outlives the sub-test
		waitPrepared(0, 0)
		if n := rows(); n != 0 {
			t.Fatalf("%d rows after recovery, want 0: without a decision the transaction rolls back", n)
		}
	})

	t.Run("killed after the decision, one shard committed", func(t *testing.T) {
		lock, _ := catalog.Begin(ctx)
		lock.Exec(ctx, "lock table shardgate.twophase_decisions in access exclusive mode")
		commitBoth(a+2, b+2)
		waitPrepared(1, 1)
		// Shard s0 commits first. With a synchronous standby that never
		// answers, its COMMIT PREPARED is durable there but never
		// returns, so s1 is never told.
		setSync := func(sqls ...string) {
			for _, sql := range sqls {
				if _, err := super0.Exec(ctx, sql); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(300 * time.Millisecond) // the backends reload on their next command
		}
		// (The test servers run with synchronous_commit off, which would
		// skip the wait.)
		setSync("alter system set synchronous_standby_names = 'nobody'", "alter system set synchronous_commit = on", "select pg_reload_conf()")
		lock.Rollback(ctx) // the decision goes through
		if !eventually(t, 10*time.Second, func() bool {
			var n int
			catalog.QueryRow(ctx, "select count(*) from shardgate.twophase_decisions where commit").Scan(&n)
			return n == 1
		}) {
			t.Fatalf("the decision was not recorded\n%s", p.log)
		}
		time.Sleep(300 * time.Millisecond) // COMMIT PREPARED reaches s0 and waits
		p.kill()
		setSync("alter system reset synchronous_standby_names", "alter system reset synchronous_commit", "select pg_reload_conf()")
		waitPrepared(0, 1)
		if n := countOn(t, c, 1, "select count(*) from users"); n != 0 {
			t.Fatalf("shard s1 shows %d rows before recovery", n)
		}
		if n := countOn(t, c, 0, "select count(*) from users"); n != 1 {
			var ids []string
			for i := range c.Shards {
				rows := onShard(t, c, i, "select id::text from users")
				got, _ := pgx.CollectRows(rows, pgx.RowTo[string])
				ids = append(ids, fmt.Sprint(got))
			}
			t.Fatalf("shard s0 shows %d rows, want its committed 1; rows by shard %v, a+2=%d b+2=%d\n%s", n, ids, a+2, b+2, p.log)
		}
		p = startShardgate(top, bin, config) // it outlives the sub-test
		waitPrepared(0, 0)
		if n := rows(); n != 2 {
			t.Fatalf("%d rows after recovery, want 2: the recorded decision commits s1 too\n%s", n, p.log)
		}
		if !strings.Contains(p.log.String(), "resolved an in-doubt transaction") {
			t.Errorf("the restarted proxy did not say it resolved the transaction:\n%s", p.log)
		}
	})
}
