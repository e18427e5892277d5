package differential

import (
	"fmt"
	"strings"
)

// Reads: by key, by several keys, over every shard with every merge the
// proxy does, and of reference and unsharded tables.
var readTemplates = []template{
	{60, (*Workload).pointUser},
	{25, (*Workload).pointOrders},
	{15, (*Workload).pointJoin},
	{30, (*Workload).multiKey},
	{25, (*Workload).scatterFilter},
	{45, (*Workload).orderLimit},
	{15, (*Workload).orderTies},
	{35, (*Workload).aggregate},
	{40, (*Workload).groupBy},
	{15, (*Workload).distinct},
	{20, (*Workload).joinScatter},
	{15, (*Workload).referenceRead},
	{10, (*Workload).unshardedRead},
	{30, (*Workload).eventsRead},
	{30, (*Workload).tenantsRead},
	{10, (*Workload).subquery},
	{5, (*Workload).noTable},
	{8, (*Workload).maybeRefused},
	{6, (*Workload).script},
}

const userCols = "id, name, score, country, created"

var total = Order{Total: true}

func (w *Workload) pointUser() Step {
	b, id := w.sql(), w.user()
	var sql string
	switch w.r.IntN(4) {
	case 0:
		sql = fmt.Sprintf("select %s from users where id = %s", userCols, b.int(id))
	case 1:
		sql = fmt.Sprintf("select u.name, u.score from users as u where u.id = %s and u.created >= date '2024-01-01'", b.int(id))
	case 2:
		sql = fmt.Sprintf("select * from users where %s = id", b.int(id))
	default:
		sql = fmt.Sprintf("select count(*), max(name) from users where id = %s", b.int(id))
	}
	st := w.query("select.point", b, sql, total)
	st.Keys = []Key{userKey(id)}
	return st
}

func (w *Workload) pointOrders() Step {
	b, id := w.sql(), w.user()
	var sql string
	o := total
	switch w.r.IntN(4) {
	case 0:
		sql = fmt.Sprintf("select user_id, id, amount, status from orders where user_id = %s order by id", b.int(id))
	case 1:
		sql = fmt.Sprintf("select id, amount from orders where user_id = %s", b.int(id))
		o = Order{}
	case 2:
		sql = fmt.Sprintf("select sum(amount), avg(amount), count(*) from orders where user_id = %s", b.int(id))
	default:
		sql = fmt.Sprintf("select status, amount from orders where user_id = %s and id = %s", b.int(id), b.int(int64(1+w.r.IntN(6))))
	}
	st := w.query("select.point", b, sql, o)
	st.Keys = []Key{userKey(id)}
	return st
}

func (w *Workload) pointJoin() Step {
	b, id := w.sql(), w.user()
	var sql string
	switch w.r.IntN(3) {
	case 0:
		sql = fmt.Sprintf("select u.id, u.name, o.id, o.amount, o.status from users u join orders o on o.user_id = u.id where u.id = %s order by o.id", b.int(id))
	case 1:
		sql = fmt.Sprintf("select u.name, count(o.id), sum(o.amount) from users u left join orders o on o.user_id = u.id where u.id = %s group by u.name", b.int(id))
	default:
		sql = fmt.Sprintf("select u.name, c.name from users u join countries c on c.code = u.country where u.id = %s", b.int(id))
	}
	st := w.query("select.point-join", b, sql, total)
	st.Keys = []Key{userKey(id)}
	return st
}

func (w *Workload) multiKey() Step {
	b := w.sql()
	ids := w.users(2+w.r.IntN(6), false)
	var sql string
	o := total
	switch w.r.IntN(5) {
	case 0:
		sql = fmt.Sprintf("select id, name, score from users where %s order by id", b.intList("id", ids))
	case 1:
		sql = fmt.Sprintf("select id, name from users where %s", b.intList("id", ids))
		o = Order{}
	case 2:
		sql = fmt.Sprintf("select user_id, count(*), sum(amount) from orders where %s group by user_id order by user_id", b.intList("user_id", ids))
	case 3:
		sql = fmt.Sprintf("select count(*), sum(score), avg(score) from users where %s", b.intList("id", ids))
	default:
		sql = fmt.Sprintf("select u.id, o.id, o.amount from users u join orders o on o.user_id = u.id where %s order by o.amount desc, u.id, o.id limit 5", b.intList("u.id", ids))
	}
	st := w.query("select.multi-key", b, sql, o)
	st.Keys = userKeys(ids)
	return st
}

func (w *Workload) scatterFilter() Step {
	b := w.sql()
	var sql string
	switch w.r.IntN(4) {
	case 0:
		lo := int64(w.r.IntN(150) - 50)
		sql = fmt.Sprintf("select id, name, score from users where score between %s and %s", b.int(lo), b.int(lo+int64(w.r.IntN(40))))
	case 1:
		sql = fmt.Sprintf("select user_id, id, amount from orders where status = %s and amount > %s", b.text(pick(w.r, statuses)), b.num(w.amount()))
	case 2:
		sql = fmt.Sprintf("select id, country from users where country = %s or score is null", b.text(pick(w.r, countryCodes)))
	default:
		sql = "select id, name from users where country is null"
	}
	st := w.query("select.scatter", b, sql, Order{})
	st.AllShards = true
	return st
}

// userOrders are ORDER BY lists for users that end in the unique id.
var userOrders = []string{
	"score desc nulls last, id", "name, id", "created desc, id desc", "country nulls first, score, id",
	"id desc", "score, name desc, id", "country desc nulls last, id", "created, name, id",
}

func (w *Workload) orderLimit() Step {
	b := w.sql()
	var sql string
	switch w.r.IntN(3) {
	case 0, 1:
		cols := userCols
		if w.r.IntN(2) == 0 {
			// A lone *: the merge finds the sort columns by name.
			cols = pick(w.r, []string{"*", "users.*", "u.*"})
		}
		sql = fmt.Sprintf("select %s from users", cols)
		if cols == "u.*" {
			sql += " u"
		}
		if w.r.IntN(3) == 0 {
			sql += fmt.Sprintf(" where score > %s", b.int(int64(w.r.IntN(100))))
		}
		sql += " order by " + pick(w.r, userOrders)
	default:
		sql = "select user_id, id, amount, status from orders order by " +
			pick(w.r, []string{"amount desc, user_id, id", "status, amount, user_id desc, id", "user_id, id", "id desc, user_id"})
	}
	sql += w.limit(b)
	st := w.query("select.order-limit", b, sql, total)
	st.AllShards = true
	return st
}

// limit makes a LIMIT/OFFSET clause, or none.
func (w *Workload) limit(b *sqlb) string {
	var s string
	switch w.r.IntN(5) {
	case 0:
		return ""
	case 1:
		s = " limit " + b.int(int64(w.r.IntN(30)))
	case 2:
		s = fmt.Sprintf(" limit %s offset %s", b.int(int64(1+w.r.IntN(20))), b.int(int64(w.r.IntN(300))))
	case 3:
		s = " offset " + b.int(int64(w.r.IntN(400)))
	default:
		s = " limit " + b.int(int64(1+w.r.IntN(10)))
	}
	return s
}

// orderTies sorts by columns with many equal values: rows of a group may
// come in any order, and LIMIT may cut the edge groups anywhere.
func (w *Workload) orderTies() Step {
	b := w.sql()
	var sql string
	o := Order{Keys: []int{0}}
	switch w.r.IntN(3) {
	case 0:
		sql = "select country, score from users order by country" + pick(w.r, []string{"", " desc", " nulls first"})
	case 1:
		sql = "select status, amount, user_id from orders order by status, amount desc"
		o.Keys = []int{0, 1}
	default:
		sql = "select kind, id from events order by kind desc"
	}
	if l := w.limit(b); l != "" {
		sql += l
		o.Cut = true
	}
	st := w.query("select.order-ties", b, sql, o)
	st.AllShards = true
	return st
}

var userAggs = []string{
	"count(*)", "count(score)", "sum(score)", "min(score)", "max(score)", "avg(score)",
	"min(name)", "max(name)", "min(created)", "max(created)", "bool_and(score > 0)", "bool_or(country = 'DE')",
	"count(country)", "sum(id)", "avg(id)", "max(id)", "min(id)",
}

var orderAggs = []string{"count(*)", "sum(amount)", "avg(amount)", "min(amount)", "max(amount)", "sum(id)", "max(status)"}

func (w *Workload) aggregate() Step {
	b := w.sql()
	var sql string
	if w.r.IntN(3) > 0 {
		sql = fmt.Sprintf("select %s from users", strings.Join(some(w.r, userAggs, 1, 5), ", "))
		if w.r.IntN(2) == 0 {
			sql += fmt.Sprintf(" where score < %s", b.int(int64(w.r.IntN(200))))
		}
	} else {
		aggs := some(w.r, orderAggs, 1, 4)
		sql = fmt.Sprintf("select %s from orders", strings.Join(aggs, ", "))
		if w.r.IntN(2) == 0 {
			sql += fmt.Sprintf(" where status = %s", b.text(pick(w.r, statuses)))
		}
	}
	st := w.query("select.aggregate", b, sql, total)
	st.AllShards = true
	return st
}

func (w *Workload) groupBy() Step {
	b := w.sql()
	var sql string
	o := total
	switch w.r.IntN(6) {
	case 0, 1:
		sql = fmt.Sprintf("select country, %s from users", strings.Join(some(w.r, userAggs, 1, 4), ", "))
		if w.r.IntN(3) == 0 {
			sql += fmt.Sprintf(" where created > %s", b.date(w.date()))
		}
		sql += " group by country"
		sql += w.having(b, []string{"count(*) > 20", "sum(score) > 500", "avg(score) >= 70", "max(score) < 195 and count(*) >= 3", "country <> 'US'", "min(name) > 'c'", "not (count(*) < 10 or sum(score) is null)", "count(*) between 10 and 40"})
		switch w.r.IntN(4) {
		case 0:
			o = Order{}
		case 1:
			sql += " order by count(*) desc, country"
		case 2:
			sql += " order by country desc nulls last" + w.limit(b)
		default:
			sql += " order by 1 nulls first"
		}
	case 2, 3:
		aggs := some(w.r, orderAggs, 1, 4)
		sql = fmt.Sprintf("select status, %s from orders", strings.Join(aggs, ", "))
		sql += " group by status"
		sql += w.having(b, []string{"sum(amount) > 20000", "count(*) > 150", "avg(amount) < 500", "status in ('new', 'paid')"})
		if w.r.IntN(2) == 0 {
			sql += " order by status"
		} else {
			o = Order{}
		}
	case 4:
		sql = "select user_id, count(*), sum(amount), max(amount) from orders group by user_id" +
			w.having(b, []string{"count(*) >= 3", "sum(amount) > 1500", "max(amount) < 100"}) + " order by user_id" + w.limit(b)
	default:
		switch w.r.IntN(3) {
		case 0:
			sql = "select created, count(*) from users group by created order by created" + w.limit(b)
		case 1:
			sql = "select score % 7 as bucket, count(*), sum(score) from users where score is not null group by score % 7 order by bucket"
		default:
			sql = "select country, created, count(*) from users group by country, created order by country, created" + w.limit(b)
		}
	}
	cat := "select.group-by"
	if strings.Contains(sql, " between ") || strings.Contains(sql, " in (") || strings.Contains(sql, " is null") {
		// HAVING merges only comparisons with constants.
		cat = "maybe.refused.having"
	}
	st := w.query(cat, b, sql, o)
	st.AllShards = true
	return st
}

func (w *Workload) having(b *sqlb, conds []string) string {
	if w.r.IntN(2) == 0 {
		return ""
	}
	return " having " + pick(w.r, conds)
}

func (w *Workload) distinct() Step {
	b := w.sql()
	var sql string
	o := total
	switch w.r.IntN(5) {
	case 0:
		sql = "select distinct country from users"
		o = Order{}
	case 1:
		sql = "select distinct country from users order by country"
	case 2:
		sql = "select distinct status from orders order by 1 desc"
	case 3:
		sql = fmt.Sprintf("select distinct country, score > %s as high from users order by 1, 2", b.int(int64(w.r.IntN(100))))
	default:
		sql = "select distinct kind from events order by kind limit 3"
	}
	st := w.query("select.distinct", b, sql, o)
	st.AllShards = true
	return st
}

func (w *Workload) joinScatter() Step {
	b := w.sql()
	var sql string
	switch w.r.IntN(4) {
	case 0:
		sql = "select u.country, count(*), sum(o.amount) from users u join orders o on o.user_id = u.id group by u.country order by u.country nulls first"
	case 1:
		sql = fmt.Sprintf("select u.id, u.name, o.id, o.amount from users u join orders o on o.user_id = u.id where o.amount > %s order by o.amount desc, u.id, o.id", b.num(w.amount())) + w.limit(b)
	case 2:
		sql = "select u.id, count(o.id) from users u left join orders o on u.id = o.user_id group by u.id order by u.id" + w.limit(b)
	default:
		sql = "select c.name, count(*), avg(u.score) from users u join countries c on c.code = u.country group by c.name order by c.name"
	}
	st := w.query("select.join", b, sql, total)
	st.AllShards = true
	return st
}

func (w *Workload) referenceRead() Step {
	b := w.sql()
	var sql string
	switch w.r.IntN(3) {
	case 0:
		sql = "select code, name from countries order by code"
	case 1:
		sql = "select count(*), min(name) from countries"
	default:
		sql = fmt.Sprintf("select name from countries where code = %s", b.text(pick(w.r, countryCodes)))
	}
	return w.query("select.reference", b, sql, total)
}

func (w *Workload) unshardedRead() Step {
	b := w.sql()
	var sql string
	switch w.r.IntN(3) {
	case 0:
		sql = fmt.Sprintf("select id, note from audit where id > %s order by id limit 10", b.int(w.audit()))
	case 1:
		sql = "select count(*), max(id), min(note) from audit"
	default:
		sql = fmt.Sprintf("select note from audit where id = %s", b.int(w.audit()))
	}
	st := w.query("select.unsharded", b, sql, total)
	st.Keys = []Key{OnDefault}
	return st
}

func (w *Workload) eventsRead() Step {
	b := w.sql()
	var st Step
	switch w.r.IntN(6) {
	case 0, 1:
		id := w.event()
		st = w.query("select.point", b, fmt.Sprintf("select id, kind, payload from events where id = %s", b.int(id)), total)
		st.Keys = []Key{eventKey(id)}
	case 2:
		var ids []int64
		for range 2 + w.r.IntN(4) {
			ids = append(ids, w.event())
		}
		st = w.query("select.multi-key", b, fmt.Sprintf("select id, kind from events where %s", b.intList("id", ids)), Order{})
		for _, id := range ids {
			st.Keys = append(st.Keys, eventKey(id))
		}
	case 3:
		lo := w.event()
		st = w.query("select.scatter", b, fmt.Sprintf("select id, kind from events where id >= %s and id < %s order by id", b.int(lo), b.int(lo+int64(w.r.IntN(600)))), total)
		st.AllShards = true
	case 4:
		st = w.query("select.group-by", b, "select kind, count(*), min(id), max(id), count(payload) from events group by kind order by kind", total)
		st.AllShards = true
	default:
		st = w.query("select.order-limit", b, "select id, payload from events order by id desc"+w.limit(b), total)
		st.AllShards = true
	}
	return st
}

func (w *Workload) tenantsRead() Step {
	b := w.sql()
	var st Step
	switch w.r.IntN(6) {
	case 0, 1:
		t := w.tenant()
		st = w.query("select.point", b, fmt.Sprintf("select id, plan, seats from tenants where id = %s", b.text(t)), total)
		st.Keys = []Key{tenantKey(t)}
	case 2:
		ts := make([]string, 0, 4)
		for range 2 + w.r.IntN(3) {
			ts = append(ts, w.tenant())
		}
		st = w.query("select.multi-key", b, fmt.Sprintf("select id, seats from tenants where %s order by id", b.textList("id", ts)), total)
		for _, t := range ts {
			st.Keys = append(st.Keys, tenantKey(t))
		}
	case 3:
		st = w.query("select.group-by", b, "select plan, count(*), sum(seats), avg(seats), min(id), max(id) from tenants group by plan order by plan", total)
		st.AllShards = true
	case 4:
		st = w.query("select.order-limit", b, "select id, plan from tenants order by id"+w.limit(b), total)
		st.AllShards = true
	default:
		st = w.query("select.aggregate", b, fmt.Sprintf("select count(*), sum(seats), max(id), min(id) from tenants where seats > %s", b.int(int64(w.r.IntN(40)))), total)
		st.AllShards = true
	}
	return st
}

func (w *Workload) subquery() Step {
	b := w.sql()
	var sql string
	switch w.r.IntN(3) {
	case 0:
		sql = fmt.Sprintf("select id, name from users u where exists (select 1 from orders o where o.user_id = u.id and o.status = %s) order by id limit 10", b.text(pick(w.r, statuses)))
	case 1:
		sql = fmt.Sprintf("select count(*) from users where id in (select user_id from orders where amount > %s)", b.num(w.amount()))
	default:
		sql = "select u.id, (select count(*) from orders o where o.user_id = u.id) from users u where u.score > 150 order by u.id"
	}
	st := w.query("select.subquery", b, sql, total)
	st.AllShards = true
	return st
}

func (w *Workload) noTable() Step {
	b := w.sql()
	sql := fmt.Sprintf("select %s::int8 * 2, 'x' || %s::text", b.int(int64(w.r.IntN(1000))), b.text(pick(w.r, names)))
	return w.query("select.no-table", b, sql, total)
}

// maybeRefused are constructs the proxy may refuse over several shards;
// if it answers, the answer must be right.
func (w *Workload) maybeRefused() Step {
	q := pick(w.r, []struct {
		name, sql string
		o         Order
	}{
		{"count-distinct", "select count(distinct country) from users", total},
		{"string-agg", "select string_agg(name, ',' order by name) from users where score > 190", total},
		{"window", "select id, row_number() over (order by id) from users order by id limit 5", total},
		{"aggregate-expression", "select sum(score) + 1 from users", total},
		{"union", "select id from users where score > 195 union select id from events where id < 20 order by 1", total},
		{"distinct-on", "select distinct on (country) country, id from users order by country, id", total},
		{"with-ties", "select id from users order by score, id fetch first 3 rows with ties", total},
		{"for-update", "select id, name from users where score > 190 for update", Order{}},
		{"rollup", "select country, count(*) from users group by rollup (country) order by 1, 2", total},
		{"join-off-key", "select u.id from users u join orders o on o.id = u.id order by 1 limit 3", total},
		{"join-unsharded", "select a.id, x.id from audit a join users x on x.id = a.id order by 1", total},
		{"copy-query", "copy (select id, name from users where score > 190) to stdout", Order{}},
	})
	st := w.query("maybe.refused."+q.name, &sqlb{}, q.sql, q.o)
	if strings.HasPrefix(q.sql, "copy") {
		st.Kind, st.Mode, st.Formats = KindCopyTo, 0, nil
	}
	st.AllShards = true
	return st
}

// script sends several statements in one simple Query message.
func (w *Workload) script() Step {
	id := w.user()
	st := Step{Category: "script", Kind: KindScript}
	switch w.r.IntN(3) {
	case 0:
		st.SQL, st.AllShards = "select count(*) from users; select count(*) from orders", true
	case 1:
		st.SQL = fmt.Sprintf("select name from users where id = %d; select count(*) from orders where user_id = %d", id, id)
		st.Keys = []Key{userKey(id)}
	default:
		st.SQL = "select code from countries order by code limit 2; select count(*) from audit"
	}
	return st
}
