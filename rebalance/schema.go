package rebalance

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// EnsureSchema creates the moved tables on the target where they are
// missing, with their indexes, constraints, defaults and owned sequences,
// from the source's definitions (pg_dump --schema-only). Tables already
// there must have the source's columns (names and types), or it fails
// with a *SchemaMismatchError. Missing schemas are created; anything else
// a table's definition refers to (functions of its triggers and
// defaults, tables its foreign keys reference, roles) must exist on the
// target already, as it does on shards that share one schema.
func (m *Mover) EnsureSchema(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	var missing []Table
	for _, t := range m.Tables {
		src, err := m.tableOID(ctx, onSource, t)
		if err != nil {
			return err
		}
		if src == 0 {
			return fmt.Errorf("rebalance %s: table %s does not exist on the source", m.Job, t)
		}
		dst, err := m.tableOID(ctx, onTarget, t)
		if err != nil {
			return err
		}
		if dst == 0 {
			missing = append(missing, t)
			continue
		}
		if err := m.compareColumns(ctx, t, src, dst); err != nil {
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	script, err := m.dump(ctx, missing)
	if err != nil {
		return err
	}
	return m.runScript(ctx, script)
}

// columns reads a table's live columns: name and type.
func columns(ctx context.Context, conn *pgx.Conn, oid uint32) (map[string]string, error) {
	rows, err := conn.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, oid)
	if err != nil {
		return nil, err
	}
	cols := map[string]string{}
	var name, typ string
	_, err = pgx.ForEachRow(rows, []any{&name, &typ}, func() error {
		cols[name] = typ
		return nil
	})
	return cols, err
}

// compareColumns checks that the target's table has the source's columns.
// Logical replication matches columns by name, so their order does not
// matter, but a type or a column of one side only would break the copy or
// the checksums.
func (m *Mover) compareColumns(ctx context.Context, t Table, src, dst uint32) error {
	sc, err := columns(ctx, m.Source, src)
	if err != nil {
		return fmt.Errorf("rebalance %s: reading the columns of %s on the source: %w", m.Job, t, err)
	}
	dc, err := columns(ctx, m.Target, dst)
	if err != nil {
		return fmt.Errorf("rebalance %s: reading the columns of %s on the target: %w", m.Job, t, err)
	}
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(sc)) {
		switch dt, ok := dc[name]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("column %s (%s) is missing on the target", name, sc[name]))
		case dt != sc[name]:
			problems = append(problems, fmt.Sprintf("column %s is %s on the source but %s on the target", name, sc[name], dt))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(dc)) {
		if _, ok := sc[name]; !ok {
			problems = append(problems, fmt.Sprintf("column %s (%s) exists only on the target", name, dc[name]))
		}
	}
	if _, ok := sc[t.Key]; !ok {
		problems = append(problems, fmt.Sprintf("the key column %s does not exist", t.Key))
	}
	if len(problems) > 0 {
		return &SchemaMismatchError{Table: t, Problems: problems}
	}
	return nil
}

// dump runs pg_dump for the tables' definitions.
func (m *Mover) dump(ctx context.Context, tables []Table) (string, error) {
	bin := m.PgDump
	if bin == "" {
		bin = "pg_dump"
	}
	args := []string{"--schema-only", "--no-publications", "--no-subscriptions", "--strict-names", "--dbname=" + m.SourceDSN}
	for _, t := range tables {
		// In a pattern, quoted names are taken literally: no wildcards.
		args = append(args, "--table="+t.sql())
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("rebalance %s: pg_dump of the tables' definitions from the source: %w: %s", m.Job, err, strings.TrimSpace(stderr.String()))
	}
	var b strings.Builder
	for _, s := range schemas(tables) {
		fmt.Fprintf(&b, "CREATE SCHEMA IF NOT EXISTS %s;\n", ident(s))
	}
	// Recent pg_dump versions frame the script in psql meta-commands
	// (\restrict); they are not SQL, and a schema-only dump of tables has
	// nothing else starting with a backslash at the start of a line.
	// Fences of earlier moves from the source stay out: their functions
	// are not on the target, and the target owns what they refuse.
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		if line := sc.Text(); !strings.HasPrefix(line, `\`) && !fenceTrigger.MatchString(line) {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String(), sc.Err()
}

// fenceTrigger matches a fence's CREATE TRIGGER in a pg_dump script,
// which pg_dump writes on one line.
var fenceTrigger = regexp.MustCompile(`^CREATE TRIGGER sg_[a-z][a-z0-9_]*_fence BEFORE INSERT OR DELETE OR UPDATE ON .* EXECUTE FUNCTION .*\.sg_[a-z][a-z0-9_]*_fence_[0-9]+\(\);$`)

// schemas lists the non-public schemas of tables, once each.
func schemas(tables []Table) []string {
	var out []string
	for _, t := range tables {
		if s := t.schema(); s != "public" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// runScript runs a pg_dump script on the target, on a connection of its
// own because the script changes session settings (search_path among
// them) that must not stay on m.Target. The statements of one simple
// query run as one transaction: the tables appear together or not at all.
func (m *Mover) runScript(ctx context.Context, script string) error {
	conn, err := pgx.ConnectConfig(ctx, m.Target.Config())
	if err != nil {
		return fmt.Errorf("rebalance %s: connecting to the target to create the tables: %w", m.Job, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, script); err != nil {
		return fmt.Errorf("rebalance %s: creating the tables on the target: %w", m.Job, err)
	}
	return nil
}
