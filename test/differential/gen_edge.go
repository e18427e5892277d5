package differential

import (
	"fmt"
	"strconv"
	"strings"
)

// Edge cases: the many spellings of a key, range boundaries, empty
// inputs to aggregates, sort keys outside the select list, and
// statements the proxy may refuse (but must never answer wrongly).
var edgeTemplates = []template{
	{25, (*Workload).keyForms},
	{15, (*Workload).emptyAggregates},
	{20, (*Workload).hiddenSort},
	{12, (*Workload).maybeWrites},
	{8, (*Workload).maybeQueries},
	{6, (*Workload).txnSavepoint},
	{4, (*Workload).txnReadOnly},
}

// eventBounds are keys at the range boundaries of both test maps.
var eventBounds = []int64{-1, 0, 1, 599, 600, 601, 999, 1000, 1001, 1299, 1300, 1301}

// keyForms reads one key written in one of many ways PostgreSQL accepts.
func (w *Workload) keyForms() Step {
	switch w.r.IntN(3) {
	case 0:
		id := w.user()
		if w.r.IntN(3) == 0 {
			id = pick(w.r, extremeUsers)
		}
		s := strconv.FormatInt(id, 10)
		form := pick(w.r, []string{
			"id = '%s'", "id = %s::bigint", "id = (%s)", "%s = id", "id = '%s'::int8", "id in (%s)",
			"id = any(array[%s])", "id = any('{%s}'::bigint[])", "id between %s and %s", "id = %s and id = %s",
			"id = %s or false", "(id = %s)", "id = %s::numeric", "id = %s.0", "id = 0%s", "id = ' %s'",
		})
		cond := strings.ReplaceAll(form, "%s", s)
		if strings.HasPrefix(s, "-") && (strings.Contains(form, "0%s") || strings.Contains(form, "' %s'")) {
			cond = "id = " + s
		}
		st := w.query("select.key-forms", &sqlb{}, fmt.Sprintf("select id, name from users where %s", cond), total)
		st.Keys = []Key{userKey(id)}
		return st
	case 1:
		id := pick(w.r, eventBounds)
		if w.r.IntN(2) == 0 {
			id = w.event()
		}
		b := w.sql()
		st := w.query("select.key-forms", b, fmt.Sprintf("select id, kind from events where id = %s", b.int(id)), total)
		st.Keys = []Key{eventKey(id)}
		return st
	default:
		t := w.tenant()
		q := quote(t)
		form := pick(w.r, []string{"id = %s", "id = %s::text", "id = %s::varchar", "%s = id", "id in (%s)", "id = any(array[%s])", "id = (%s)"})
		if t == "über" && w.r.IntN(2) == 0 {
			q, form = `U&'\00fcber'`, "id = %s"
		}
		if t == "O'Brien" && w.r.IntN(2) == 0 {
			q, form = `E'O\'Brien'`, "id = %s"
		}
		st := w.query("select.key-forms", &sqlb{}, fmt.Sprintf("select id, seats from tenants where %s", strings.ReplaceAll(form, "%s", q)), total)
		st.Keys = []Key{tenantKey(t)}
		return st
	}
}

// emptyAggregates aggregates over no rows, or groups none.
func (w *Workload) emptyAggregates() Step {
	b := w.sql()
	var sql string
	switch w.r.IntN(4) {
	case 0:
		sql = fmt.Sprintf("select count(*), count(score), sum(score), avg(score), min(name), max(created), bool_and(score > 0) from users where score > %s", b.int(int64(195+w.r.IntN(20))))
	case 1:
		sql = fmt.Sprintf("select sum(amount), avg(amount), count(*) from orders where amount < %s", b.num(pick(w.r, []string{"0", "0.50", "1"})))
	case 2:
		sql = fmt.Sprintf("select country, count(*), avg(score) from users where score > %s group by country order by country", b.int(int64(190+w.r.IntN(20))))
	default:
		sql = "select kind, sum(id) from events where id < -1000 group by kind"
	}
	st := w.query("select.aggregate-empty", b, sql, total)
	st.AllShards = true
	return st
}

// hiddenSort sorts by columns the select list leaves out, or by
// aggregates, aliases and positions.
func (w *Workload) hiddenSort() Step {
	b := w.sql()
	var sql string
	switch w.r.IntN(6) {
	case 0:
		sql = "select name from users order by score desc nulls last, id"
	case 1:
		sql = "select id from users order by created, name, id"
	case 2:
		sql = "select country, avg(score) from users group by country order by avg(score) desc nulls last, country nulls first"
	case 3:
		sql = "select status as s, sum(amount) as total from orders group by status order by total desc, s"
	case 4:
		sql = "select user_id, max(amount) from orders group by user_id order by 2 desc, 1"
	default:
		sql = "select distinct country from users where country is not null order by country desc"
	}
	sql += w.limit(b)
	st := w.query("select.hidden-sort", b, sql, total)
	st.AllShards = true
	return st
}

// maybeWrites are writes the proxy may refuse; the placement check
// after the run catches one that ran in the wrong place.
func (w *Workload) maybeWrites() Step {
	b := w.sql()
	var sql, name string
	var keys []Key
	switch w.r.IntN(7) {
	case 0:
		name = "key-update"
		// Changing the key: allowed only when the new key stays on the
		// row's shard.
		from, to := w.user(), w.freshUser()
		sql, keys = fmt.Sprintf("update users set id = %s where id = %s", b.int(to), b.int(from)), []Key{userKey(from), userKey(to)}
	case 1:
		name = "key-expression"
		id := w.freshUser()
		sql, keys = fmt.Sprintf("insert into users (id, name, created) values (%d + 1, 'expr', date '2024-05-05')", id-1), []Key{userKey(id)}
	case 2:
		name = "insert-select"
		sql = "insert into audit (id, note) select id + 1000000, name from users where id < 5 on conflict do nothing"
	case 3:
		name = "delete-using"
		id := w.user()
		sql, keys = fmt.Sprintf("delete from orders o using users u where o.user_id = u.id and u.id = %s and u.score < 0", b.int(id)), []Key{userKey(id)}
	case 4:
		name = "update-from"
		id := w.user()
		sql, keys = fmt.Sprintf("update orders o set status = 'paid' from users u where o.user_id = u.id and u.id = %s and o.status = 'new'", b.int(id)), []Key{userKey(id)}
	case 5:
		name = "writing-cte"
		sql = "with moved as (delete from events where id < -40 returning id, kind, payload) select count(*) from moved"
	default:
		name = "column-defaults"
		id := w.freshUser()
		sql, keys = fmt.Sprintf("insert into users (id, name, created) values (%s, 'defaults', date '2024-06-06')", b.int(id)), []Key{userKey(id)}
	}
	st := w.write("maybe.refused.write."+name, b, sql, keys)
	if len(keys) == 0 {
		st.AllShards = true
	}
	return st
}

// maybeQueries are reads the proxy may refuse over several shards.
func (w *Workload) maybeQueries() Step {
	q := pick(w.r, [][2]string{
		{"cte", "with s as (select id, score from users where score > 150) select count(*) from s"},
		{"derived-table", "select count(*) from (select id from users where score > 10) s"},
		{"join-derived", "select u.id, x.n from users u join (select user_id, count(*) n from orders group by user_id) x on x.user_id = u.id where u.id = 5"},
		{"aggregate-filter", "select count(*) filter (where score > 0) from users"},
		{"like", "select id, name from users where name like 'zo%' order by id"},
		{"group-by-position", "select country, count(*) from users group by 1 order by 2 desc, 1 limit 3"},
		{"aggregate-expression", "select max(score) - min(score) from users"},
		{"scalar-subquery", "select id from users where id = (select max(user_id) from orders where user_id = 7)"},
	})
	st := w.query("maybe.refused."+q[0], &sqlb{}, q[1], total)
	st.AllShards = true
	return st
}

// txnSavepoint uses a savepoint, on one key's shard or over several.
func (w *Workload) txnSavepoint() Step {
	st := Step{Category: "txn.savepoint", Kind: KindTxn, Begin: "begin", Commit: w.r.IntN(2) == 0}
	ks := []int64{w.user()}
	if w.r.IntN(2) == 0 {
		ks = append(ks, w.user())
	}
	ctl := func(sql string) Step {
		return Step{Category: "txn.savepoint", Kind: KindQuery, SQL: sql, Mode: w.mode(), Order: total}
	}
	st.Body = append(st.Body, w.txnUser(ks[0]), ctl("savepoint a"), w.txnUser(ks[len(ks)-1]))
	if w.r.IntN(2) == 0 {
		st.Body = append(st.Body, ctl("rollback to savepoint a"))
	} else {
		st.Body = append(st.Body, ctl("release savepoint a"))
	}
	st.Body = append(st.Body, w.txnUser(ks[0]))
	return st
}

// txnReadOnly writes in a read-only transaction: refused by the server
// (25006) on both sides.
func (w *Workload) txnReadOnly() Step {
	k := w.user()
	st := Step{Category: "txn.read-only", Kind: KindTxn, Begin: pick(w.r, []string{"begin read only", "start transaction read only"}), Commit: true}
	st.Body = append(st.Body, w.txnUser(k), w.txnUser(k))
	return st
}
