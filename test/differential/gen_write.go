package differential

import (
	"fmt"
	"strings"
)

// Writes: by key, several rows at once, without a key, and to reference
// and unsharded tables.
var writeTemplates = []template{
	{40, (*Workload).insertOne},
	{25, (*Workload).insertMulti},
	{20, (*Workload).insertConflict},
	{40, (*Workload).updateByKey},
	{20, (*Workload).deleteByKey},
	{10, (*Workload).writeKeyList},
	{12, (*Workload).writeScatter},
	{10, (*Workload).writeReference},
	{10, (*Workload).writeUnsharded},
}

// userValues writes one users row's VALUES tuple.
func (w *Workload) userValues(b *sqlb, id int64) string {
	return fmt.Sprintf("(%s, %s, %s, %s, %s)", b.int(id), b.text(w.name(id)), b.any(w.score()), b.any(w.country()), b.date(w.date()))
}

func (w *Workload) orderValues(b *sqlb, user int64) string {
	return fmt.Sprintf("(%s, %s, %s, %s)", b.int(user), b.int(int64(1+w.r.IntN(8))), b.num(w.amount()), b.text(pick(w.r, statuses)))
}

func (w *Workload) eventValues(b *sqlb, id int64) string {
	return fmt.Sprintf("(%s, %s, %s)", b.int(id), b.text(pick(w.r, kinds)), b.any(w.payload()))
}

func (w *Workload) tenantValues(b *sqlb, t string) string {
	return fmt.Sprintf("(%s, %s, %s)", b.text(t), b.text(pick(w.r, plans)), b.int(int64(w.r.IntN(60))))
}

func (w *Workload) returning(sql string, cols string) (string, bool) {
	if w.r.IntN(4) == 0 {
		return sql + " returning " + cols, true
	}
	return sql, false
}

// rowsStep makes a write that may return rows (unordered).
func (w *Workload) rowsStep(category string, b *sqlb, sql string, ret bool, keys []Key) Step {
	if ret {
		st := w.query(category, b, sql, Order{})
		st.Keys = keys
		return st
	}
	return w.write(category, b, sql, keys)
}

func (w *Workload) insertOne() Step {
	b := w.sql()
	var sql string
	var key Key
	switch w.r.IntN(5) {
	case 0, 1:
		id := w.newUser()
		sql, key = "insert into users (id, name, score, country, created) values "+w.userValues(b, id), userKey(id)
	case 2:
		id := w.user()
		sql, key = "insert into orders (user_id, id, amount, status) values "+w.orderValues(b, id), userKey(id)
	case 3:
		id := w.newEvent()
		sql, key = "insert into events (id, kind, payload) values "+w.eventValues(b, id), eventKey(id)
	default:
		t := w.newTenant()
		sql, key = "insert into tenants (id, plan, seats) values "+w.tenantValues(b, t), tenantKey(t)
	}
	sql, ret := w.returning(sql, "*")
	return w.rowsStep("insert.one-row", b, sql, ret, []Key{key})
}

func (w *Workload) insertMulti() Step {
	b := w.sql()
	var tuples []string
	var keys []Key
	var sql string
	n := 2 + w.r.IntN(5)
	switch w.r.IntN(4) {
	case 0:
		for _, id := range w.users(n, true) {
			tuples, keys = append(tuples, w.userValues(b, id)), append(keys, userKey(id))
		}
		sql = "insert into users (id, name, score, country, created) values "
	case 1:
		for _, id := range w.users(n, false) {
			tuples, keys = append(tuples, w.orderValues(b, id)), append(keys, userKey(id))
		}
		sql = "insert into orders (user_id, id, amount, status) values "
	case 2:
		seen := map[int64]bool{}
		for range n {
			id := w.newEvent()
			if !seen[id] {
				seen[id] = true
				tuples, keys = append(tuples, w.eventValues(b, id)), append(keys, eventKey(id))
			}
		}
		sql = "insert into events (id, kind, payload) values "
	default:
		seen := map[string]bool{}
		for range n {
			t := w.newTenant()
			if !seen[t] {
				seen[t] = true
				tuples, keys = append(tuples, w.tenantValues(b, t)), append(keys, tenantKey(t))
			}
		}
		sql = "insert into tenants (id, plan, seats) values "
	}
	sql, ret := w.returning(sql+strings.Join(tuples, ", "), pick(w.r, []string{"*", "1"}))
	return w.rowsStep("insert.multi-row", b, sql, ret, keys)
}

func (w *Workload) insertConflict() Step {
	b := w.sql()
	multi := w.r.IntN(3) == 0
	n := 1
	if multi {
		n = 2 + w.r.IntN(4)
	}
	var tuples []string
	var keys []Key
	var sql string
	switch w.r.IntN(3) {
	case 0:
		for _, id := range w.users(n, false) {
			tuples, keys = append(tuples, w.userValues(b, id)), append(keys, userKey(id))
		}
		sql = "insert into users as u (id, name, score, country, created) values " + strings.Join(tuples, ", ") + pick(w.r, []string{
			" on conflict (id) do update set score = excluded.score, name = excluded.name",
			" on conflict (id) do update set score = coalesce(u.score, 0) + 1 where u.country is not null",
			" on conflict do nothing",
		})
	case 1:
		for _, id := range w.users(n, false) {
			tuples, keys = append(tuples, w.orderValues(b, id)), append(keys, userKey(id))
		}
		sql = "insert into orders (user_id, id, amount, status) values " + strings.Join(tuples, ", ") + pick(w.r, []string{
			" on conflict (user_id, id) do update set amount = orders.amount + excluded.amount, status = excluded.status",
			" on conflict (user_id, id) do nothing",
		})
	default:
		seen := map[string]bool{}
		for range n {
			t := w.tenant()
			if !seen[t] {
				seen[t] = true
				tuples, keys = append(tuples, w.tenantValues(b, t)), append(keys, tenantKey(t))
			}
		}
		sql = "insert into tenants (id, plan, seats) values " + strings.Join(tuples, ", ") +
			" on conflict (id) do update set seats = tenants.seats + excluded.seats, plan = excluded.plan"
	}
	sql, ret := w.returning(sql, "*")
	cat := "insert.on-conflict"
	if len(tuples) > 1 {
		cat = "insert.multi-row.on-conflict"
	}
	return w.rowsStep(cat, b, sql, ret, keys)
}

func (w *Workload) updateByKey() Step {
	b := w.sql()
	var sql string
	var key Key
	switch w.r.IntN(7) {
	case 0, 1:
		id := w.user()
		sql, key = fmt.Sprintf("update users set score = coalesce(score, 0) + %s where id = %s", b.int(int64(w.r.IntN(11)-5)), b.int(id)), userKey(id)
	case 2:
		id := w.user()
		sql, key = fmt.Sprintf("update users set name = %s, country = %s where id = %s", b.text(w.name(id)), b.any(w.country()), b.int(id)), userKey(id)
	case 3:
		id := w.user()
		sql, key = fmt.Sprintf("update orders set status = %s where user_id = %s and id = %s", b.text(pick(w.r, statuses)), b.int(id), b.int(int64(1+w.r.IntN(6)))), userKey(id)
	case 4:
		id := w.user()
		sql, key = fmt.Sprintf("update orders set amount = amount * 2 where user_id = %s and amount < %s", b.int(id), b.num("300")), userKey(id)
	case 5:
		id := w.event()
		sql, key = fmt.Sprintf("update events set payload = %s where id = %s", b.any(w.payload()), b.int(id)), eventKey(id)
	default:
		t := w.tenant()
		// May go below zero: a check violation on both sides.
		sql, key = fmt.Sprintf("update tenants set seats = seats - %s where id = %s", b.int(int64(w.r.IntN(25))), b.text(t)), tenantKey(t)
	}
	sql, ret := w.returning(sql, "*")
	return w.rowsStep("update.by-key", b, sql, ret, []Key{key})
}

func (w *Workload) deleteByKey() Step {
	b := w.sql()
	var sql string
	var key Key
	switch w.r.IntN(5) {
	case 0, 1:
		id := w.user()
		sql, key = fmt.Sprintf("delete from orders where user_id = %s and id = %s", b.int(id), b.int(int64(1+w.r.IntN(6)))), userKey(id)
	case 2:
		id := w.user()
		sql, key = fmt.Sprintf("delete from users where id = %s", b.int(id)), userKey(id)
	case 3:
		id := w.event()
		sql, key = fmt.Sprintf("delete from events where id = %s", b.int(id)), eventKey(id)
	default:
		t := w.tenant()
		sql, key = fmt.Sprintf("delete from tenants where id = %s", b.text(t)), tenantKey(t)
	}
	sql, ret := w.returning(sql, "*")
	return w.rowsStep("delete.by-key", b, sql, ret, []Key{key})
}

// writeKeyList updates or deletes rows of several keys: one statement
// over the shards of those keys.
func (w *Workload) writeKeyList() Step {
	b := w.sql()
	ids := w.users(2+w.r.IntN(4), false)
	var sql, cat string
	switch w.r.IntN(3) {
	case 0:
		sql, cat = fmt.Sprintf("update users set score = coalesce(score, 0) + 1 where %s", b.intList("id", ids)), "update.key-list"
	case 1:
		sql, cat = fmt.Sprintf("update orders set status = 'shipped' where status = 'paid' and %s", b.intList("user_id", ids)), "update.key-list"
	default:
		sql, cat = fmt.Sprintf("delete from orders where id > 4 and %s", b.intList("user_id", ids)), "delete.key-list"
	}
	sql, ret := w.returning(sql, "*")
	return w.rowsStep(cat, b, sql, ret, userKeys(ids))
}

// writeScatter updates or deletes without a key: every shard.
func (w *Workload) writeScatter() Step {
	b := w.sql()
	var sql, cat string
	switch w.r.IntN(6) {
	case 0:
		sql, cat = fmt.Sprintf("update users set score = score + 1 where country = %s and score < 190", b.text(pick(w.r, countryCodes))), "update.scatter"
	case 1:
		sql, cat = fmt.Sprintf("update orders set status = 'archived' where status = 'cancelled' and amount < %s", b.num(w.amount())), "update.scatter"
	case 2:
		sql, cat = fmt.Sprintf("update events set payload = null where kind = %s and id %% 7 = 0", b.text(pick(w.r, kinds))), "update.scatter"
	case 3:
		sql, cat = fmt.Sprintf("update tenants set seats = seats + 1 where plan = %s", b.text(pick(w.r, plans))), "update.scatter"
	case 4:
		sql, cat = fmt.Sprintf("delete from orders where status = 'archived' and amount < %s", b.num(w.amount())), "delete.scatter"
	default:
		sql, cat = fmt.Sprintf("delete from events where kind = %s and id %% 11 = %s", b.text(pick(w.r, kinds)), b.int(int64(w.r.IntN(11)))), "delete.scatter"
	}
	sql, ret := w.returning(sql, "*")
	st := w.rowsStep(cat, b, sql, ret, nil)
	st.AllShards = true
	return st
}

// writeReference writes the reference table: every shard, alike. The
// seeded countries keep their codes.
func (w *Workload) writeReference() Step {
	b := w.sql()
	code := fmt.Sprintf("X%d", w.r.IntN(10))
	var sql string
	switch w.r.IntN(5) {
	case 0, 1:
		sql = fmt.Sprintf("insert into countries (code, name) values (%s, %s) on conflict (code) do update set name = excluded.name", b.text(code), b.text(fmt.Sprintf("Extra %d", w.nextCountry)))
		w.nextCountry++
	case 2:
		sql = fmt.Sprintf("insert into countries (code, name) values (%s, %s)", b.text(code), b.text("Plain "+code))
	case 3:
		c := pick(w.r, countryCodes)
		sql = fmt.Sprintf("update countries set name = name || %s where code = %s and length(name) < 40", b.text("+"), b.text(c))
	default:
		sql = fmt.Sprintf("delete from countries where code = %s", b.text(code))
	}
	return w.write("reference.write", b, sql, nil)
}

func (w *Workload) writeUnsharded() Step {
	b := w.sql()
	var sql string
	switch w.r.IntN(4) {
	case 0, 1:
		id := w.nextAudit
		if w.r.IntN(6) == 0 {
			id = w.audit()
		} else {
			w.nextAudit++
		}
		sql = fmt.Sprintf("insert into audit (id, note) values (%s, %s)", b.int(id), b.text(fmt.Sprintf("note %d", w.r.IntN(1000))))
	case 2:
		sql = fmt.Sprintf("update audit set note = note || '!' where id = %s", b.int(w.audit()))
	default:
		sql = fmt.Sprintf("delete from audit where id = %s", b.int(w.audit()))
	}
	sql, ret := w.returning(sql, "id, note")
	return w.rowsStep("unsharded.write", b, sql, ret, []Key{OnDefault})
}
