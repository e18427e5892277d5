package router

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestPlanWrites covers INSERT, UPDATE and DELETE.
func TestPlanWrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql       string
		want      routeWant
		reference bool
		newKey    *Value
		insert    []Value // Insert.Keys; nil: no split
	}{
		{sql: "INSERT INTO users (id, name) VALUES (1, 'a')", want: keyed(lit("1"))},
		{sql: "INSERT INTO users (name, id) VALUES ($1, $2) RETURNING id", want: keyed(par(2))},
		{sql: "INSERT INTO users (id, name) VALUES ('7'::int8, 'a') ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name", want: keyed(litT("7", "int8"))},
		{sql: "INSERT INTO users (id, name) SELECT $1, $2", want: keyed(par(1))},
		{sql: "INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b'), (1, 'c') ON CONFLICT DO NOTHING RETURNING *",
			want: keyed(lit("1"), lit("2")), insert: keys(lit("1"), lit("2"), lit("1"))},
		{sql: "INSERT INTO orders (user_id, total) VALUES (1, (SELECT rate FROM currencies WHERE code = 'EUR'))", want: keyed(lit("1"))},
		{sql: "INSERT INTO users (id) VALUES (NULL)", want: keyed(Value{Null: true})},
		{sql: "INSERT INTO users VALUES (1, 'a')", want: refusedWith("INSERT into sharded table users needs a column list")},
		{sql: "INSERT INTO users DEFAULT VALUES", want: refusedWith("needs a column list")},
		{sql: "INSERT INTO users (name) VALUES ('a')", want: refusedWith("does not give its sharding key id")},
		{sql: "INSERT INTO users (id, name) VALUES (DEFAULT, 'a')", want: refusedWith("the sharding key id of row 1 of the INSERT into users is not a literal or a parameter")},
		{sql: "INSERT INTO users (id, name) VALUES (1, 'a'), (1 + 1, 'b')", want: refusedWith("row 2")},
		{sql: "INSERT INTO users (id, name) SELECT id, name FROM users", want: refusedWith("INSERT ... SELECT into sharded table users is not supported")},
		{sql: "INSERT INTO users (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET id = 2", want: refusedWith("ON CONFLICT DO UPDATE must not change the sharding key")},
		{sql: "INSERT INTO users (id) VALUES (1) RETURNING (SELECT count(*) FROM orders)", want: refusedWith("not tied by the sharding key")},
		{sql: "INSERT INTO users (id) VALUES (1) RETURNING (SELECT count(*) FROM orders WHERE user_id = 1)", want: keyed(lit("1"))},
		{sql: "WITH x AS (INSERT INTO orders (user_id) VALUES (1) RETURNING *) SELECT * FROM x", want: refusedWith("an INSERT into sharded table orders inside WITH")},
		{sql: "INSERT INTO countries (code) VALUES ('fr')", want: everyShard, reference: true},
		{sql: "INSERT INTO countries (code) SELECT code FROM currencies", want: everyShard, reference: true},
		{sql: "INSERT INTO countries (code) SELECT country FROM users", want: refusedWith("the write to reference table countries also involves users")},
		{sql: "INSERT INTO countries (code) SELECT src FROM logs", want: refusedWith("the write to reference table countries also involves logs")},
		{sql: "INSERT INTO logs (msg) VALUES ('x')", want: defShard},
		{sql: "INSERT INTO logs (msg) SELECT name FROM countries", want: defShard},
		{sql: "INSERT INTO logs (msg) SELECT name FROM users", want: refusedWith("logs is not sharded")},
		// UPDATE.
		{sql: "UPDATE users SET name = 'x' WHERE id = 4", want: keyed(lit("4"))},
		{sql: "UPDATE users SET name = 'x'", want: scatter},
		{sql: "UPDATE users SET id = 5 WHERE id = 4", want: keyed(lit("4")), newKey: vp(lit("5"))},
		{sql: "UPDATE users SET id = $1::int8, name = $2 WHERE id = $3", want: keyed(par(3)), newKey: vp(parT(1, "int8"))},
		{sql: "UPDATE users SET (name, id) = ('n', 6) WHERE id = 4", want: keyed(lit("4")), newKey: vp(lit("6"))},
		{sql: "UPDATE users SET id = id WHERE id = 4", want: keyed(lit("4"))},
		{sql: "UPDATE users SET id = id + 1 WHERE id = 4", want: refusedWith("UPDATE of the sharding key id of users to an expression")},
		{sql: "UPDATE users u SET n = (SELECT count(*) FROM orders o WHERE o.user_id = u.id)", want: scatter},
		{sql: "UPDATE orders o SET total = 0 FROM users u WHERE u.id = o.user_id AND u.id = 2", want: keyed(lit("2"))},
		{sql: "UPDATE orders o SET total = 0 FROM users u WHERE u.name = o.note", want: refusedWith("join of orders and users")},
		{sql: "UPDATE orders o SET rate = c.rate FROM currencies c WHERE c.code = o.cur", want: scatter},
		{sql: "UPDATE orders o SET x = 1 FROM logs l WHERE l.id = o.id", want: refusedWith("logs is not sharded")},
		{sql: "UPDATE countries SET name = 'x'", want: everyShard, reference: true},
		{sql: "UPDATE countries SET n = (SELECT count(*) FROM users)", want: refusedWith("the write to reference table countries also involves users")},
		{sql: "UPDATE logs SET x = 1", want: defShard},
		// DELETE.
		{sql: "DELETE FROM orders WHERE user_id = $1", want: keyed(par(1))},
		{sql: "DELETE FROM orders WHERE total = 0 RETURNING *", want: scatter},
		{sql: "DELETE FROM orders o USING users u WHERE o.user_id = u.id AND u.id = 3", want: keyed(lit("3"))},
		{sql: "DELETE FROM orders o USING users u WHERE o.note = u.name", want: refusedWith("join of orders and users")},
		{sql: "DELETE FROM countries WHERE code = 'fr'", want: everyShard, reference: true},
		{sql: "DELETE FROM logs", want: defShard},
		{sql: "MERGE INTO logs l USING logs2 s ON s.id = l.id WHEN MATCHED THEN DELETE", want: defShard},
		{sql: "MERGE INTO users u USING logs s ON s.id = u.id WHEN MATCHED THEN DELETE", want: refusedWith("MERGE involving users")},
		{sql: "MERGE INTO logs l USING countries s ON s.id = l.id WHEN MATCHED THEN DELETE", want: refusedWith("MERGE involving countries")},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			t.Parallel()
			p := planOf(t, tc.sql)
			checkRoute(t, tc.sql, p, tc.want)
			if tc.want.refused != "" {
				return
			}
			if !p.Write {
				t.Errorf("not a write")
			}
			if p.Reference != tc.reference {
				t.Errorf("Reference %v", p.Reference)
			}
			if !reflect.DeepEqual(p.NewKey, tc.newKey) {
				t.Errorf("NewKey %+v, want %+v", p.NewKey, tc.newKey)
			}
			var split []Value
			if p.Insert != nil {
				split = p.Insert.Keys
			}
			if !reflect.DeepEqual(split, tc.insert) {
				t.Errorf("Insert %+v, want %+v", split, tc.insert)
			}
		})
	}
}

func TestInsertSQLFor(t *testing.T) {
	t.Parallel()
	p := planOf(t, "INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b''s'), (3, E'c\\n') ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id")
	if p.Insert == nil {
		t.Fatalf("no split: %+v", p)
	}
	tests := []struct {
		rows []int
		want string
	}{
		{[]int{0, 2}, "INSERT INTO users (id, name) VALUES (1, 'a'), (3, 'c\n') ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id"},
		{[]int{1}, "INSERT INTO users (id, name) VALUES (2, 'b''s') ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id"},
	}
	for _, tc := range tests {
		got, err := p.Insert.SQLFor(tc.rows)
		if err != nil || got != tc.want {
			t.Errorf("SQLFor(%v) = %q, %v\nwant %q", tc.rows, got, err, tc.want)
		}
	}
	for _, rows := range [][]int{{}, {1, 0}, {3}, {-1}} {
		if _, err := p.Insert.SQLFor(rows); err == nil {
			t.Errorf("SQLFor(%v): no error", rows)
		}
	}
	// The plan is shared: SQLFor must leave it as it was.
	if again, _ := p.Insert.SQLFor([]int{0, 1, 2}); again != "INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b''s'), (3, 'c\n') ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id" {
		t.Errorf("SQLFor of every row: %q", again)
	}
	withParams := planOf(t, "INSERT INTO users (id, name) VALUES ($1, $2), ($3, $4)")
	if withParams.Insert == nil {
		t.Fatal("no split with parameters")
	}
	if _, err := withParams.Insert.SQLFor([]int{0}); !errors.Is(err, ErrInsertParams) {
		t.Errorf("SQLFor with parameters: %v", err)
	}
}

func TestInsertSQLForParams(t *testing.T) {
	t.Parallel()
	// $5 outside the rows stays, renumbered after the kept rows' own.
	p := planOf(t, "INSERT INTO users (id, name) VALUES ($1, $2), ($3, $4), (7, $4 || 'x') ON CONFLICT (id) DO UPDATE SET name = $5 RETURNING id")
	if p.Insert == nil {
		t.Fatalf("no split: %+v", p)
	}
	tests := []struct {
		rows   []int
		want   string
		params []int
	}{
		{[]int{0}, "INSERT INTO users (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = $3 RETURNING id", []int{1, 2, 5}},
		{[]int{1, 2}, "INSERT INTO users (id, name) VALUES ($1, $2), (7, $2 || 'x') ON CONFLICT (id) DO UPDATE SET name = $3 RETURNING id", []int{3, 4, 5}},
		{[]int{2}, "INSERT INTO users (id, name) VALUES (7, $1 || 'x') ON CONFLICT (id) DO UPDATE SET name = $2 RETURNING id", []int{4, 5}},
	}
	for _, tc := range tests {
		got, params, err := p.Insert.SQLForParams(tc.rows)
		if err != nil || got != tc.want || !slices.Equal(params, tc.params) {
			t.Errorf("SQLForParams(%v) = %q %v, %v\nwant %q %v", tc.rows, got, params, err, tc.want, tc.params)
		}
	}
	// The plan is shared: renumbering must leave it as it was.
	if got, params, _ := p.Insert.SQLForParams([]int{0, 1, 2}); !slices.Equal(params, []int{1, 2, 3, 4, 5}) || !strings.Contains(got, "($1, $2), ($3, $4), (7, $4 || 'x')") {
		t.Errorf("SQLForParams of every row: %q %v", got, params)
	}
}

func TestPlanCopy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sql  string
		want routeWant
		copy *CopyInfo
		ref  bool
	}{
		{sql: "COPY orders (user_id, total) FROM STDIN WITH (FORMAT csv, HEADER)", want: scatter,
			copy: &CopyInfo{From: true, Table: testSchema.tables["orders"], Columns: []string{"user_id", "total"}, Format: "csv",
				Delimiter: ",", Null: "", Quote: `"`, Escape: `"`, Header: true, KeyIndex: 0}},
		{sql: "COPY orders FROM STDIN", want: scatter,
			copy: &CopyInfo{From: true, Table: testSchema.tables["orders"], Format: "text", Delimiter: "\t", Null: `\N`, KeyIndex: -1}},
		{sql: "COPY orders (total, user_id) FROM STDIN WITH (FORMAT text, DELIMITER '|', NULL 'nil')", want: scatter,
			copy: &CopyInfo{From: true, Table: testSchema.tables["orders"], Columns: []string{"total", "user_id"}, Format: "text",
				Delimiter: "|", Null: "nil", KeyIndex: 1}},
		{sql: "COPY orders FROM STDIN CSV HEADER QUOTE '''' ESCAPE '\\'", want: scatter,
			copy: &CopyInfo{From: true, Table: testSchema.tables["orders"], Format: "csv", Delimiter: ",", Quote: "'", Escape: `\`, Header: true, KeyIndex: -1}},
		{sql: "COPY orders FROM STDIN (FORMAT binary)", want: scatter,
			copy: &CopyInfo{From: true, Table: testSchema.tables["orders"], Format: "binary", KeyIndex: -1}},
		{sql: "COPY orders (total) FROM STDIN", want: refusedWith("COPY into sharded table orders must include its sharding key user_id")},
		{sql: "COPY orders FROM STDIN WITH (ENCODING 'latin1')", want: refusedWith("ENCODING")},
		{sql: "COPY orders FROM '/tmp/x'", want: refusedWith("server file or program")},
		{sql: "COPY orders TO PROGRAM 'gzip'", want: refusedWith("server file or program")},
		{sql: "COPY countries FROM STDIN", want: everyShard, ref: true,
			copy: &CopyInfo{From: true, Table: TableInfo{Kind: TableReference}, Format: "text", Delimiter: "\t", Null: `\N`, KeyIndex: -1}},
		{sql: "COPY logs FROM STDIN", want: defShard},
		{sql: "COPY logs TO '/tmp/x'", want: defShard},
		{sql: "COPY countries TO STDOUT", want: anyShard},
		{sql: "COPY orders TO STDOUT WITH (FORMAT csv, HEADER true)", want: scatter,
			copy: &CopyInfo{Table: testSchema.tables["orders"], Format: "csv", Delimiter: ",", Quote: `"`, Escape: `"`, Header: true, KeyIndex: -1}},
		{sql: "COPY (SELECT * FROM users WHERE id = 1) TO STDOUT", want: keyed(lit("1"))},
		{sql: "COPY (SELECT * FROM users) TO STDOUT", want: scatter},
		{sql: "COPY (SELECT * FROM users ORDER BY id) TO STDOUT", want: refusedWith("COPY of a query whose rows from several shards must be merged")},
		{sql: "COPY (SELECT * FROM users u JOIN orders o ON o.note = u.name) TO STDOUT", want: refusedWith("join of users and orders")},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			t.Parallel()
			p := planOf(t, tc.sql)
			checkRoute(t, tc.sql, p, tc.want)
			if tc.want.refused != "" {
				return
			}
			if !reflect.DeepEqual(p.Copy, tc.copy) {
				t.Errorf("Copy\n got %+v\nwant %+v", p.Copy, tc.copy)
			}
			if p.Reference != tc.ref {
				t.Errorf("Reference %v", p.Reference)
			}
		})
	}
}
