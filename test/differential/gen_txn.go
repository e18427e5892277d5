package differential

import "fmt"

// Explicit transactions: on one key's shard, or on several shards.
var txnTemplates = []template{
	{60, (*Workload).txn},
}

func (w *Workload) txn() Step {
	st := Step{Category: "txn", Kind: KindTxn, Commit: w.r.IntN(10) < 7}
	st.Begin = pick(w.r, []string{"begin", "start transaction", "begin isolation level repeatable read", "begin transaction read write"})
	n := 2 + w.r.IntN(3)
	switch w.r.IntN(6) {
	case 0, 1:
		// One key: one shard.
		k := w.user()
		for range n {
			st.Body = append(st.Body, w.txnUser(k))
		}
	case 2:
		// Two users: one shard or two.
		ks := w.users(2, false)
		for i := range n {
			st.Body = append(st.Body, w.txnUser(ks[i%2]))
		}
	case 3:
		// A user and an event, then perhaps a tenant.
		st.Body = append(st.Body, w.txnUser(w.user()), w.txnEvent(w.event()))
		if n > 2 {
			st.Body = append(st.Body, w.txnTenant(w.tenant()))
		}
	case 4:
		// The default shard's unsharded table with a user's rows.
		st.Body = append(st.Body, w.txnAudit(), w.txnUser(w.user()))
	default:
		// A read over every shard amid writes by key.
		k := w.user()
		st.Body = append(st.Body, w.txnUser(k), w.aggregate(), w.txnUser(k))
	}
	return st
}

// txnUser is a statement on user k's rows.
func (w *Workload) txnUser(k int64) Step {
	b := w.sql()
	var sql string
	o := total
	rows := true
	switch w.r.IntN(6) {
	case 0:
		sql = fmt.Sprintf("select id, name, score from users where id = %s", b.int(k))
	case 1:
		sql, rows = fmt.Sprintf("update users set score = coalesce(score, 0) + %s where id = %s", b.int(int64(w.r.IntN(5))), b.int(k)), false
	case 2:
		w.nextTxnOrder++
		sql, rows = fmt.Sprintf("insert into orders (user_id, id, amount, status) values (%s, %s, %s, 'new')", b.int(k), b.int(1000+w.nextTxnOrder), b.num(w.amount())), false
	case 3:
		sql, rows = fmt.Sprintf("update orders set status = 'paid' where user_id = %s and status = 'new'", b.int(k)), false
	case 4:
		sql = fmt.Sprintf("select count(*), sum(amount) from orders where user_id = %s", b.int(k))
	default:
		sql = fmt.Sprintf("delete from orders where user_id = %s and id = %s returning id, amount", b.int(k), b.int(int64(1+w.r.IntN(8))))
		o = Order{}
	}
	var st Step
	if rows {
		st = w.query("txn.user", b, sql, o)
	} else {
		st = w.write("txn.user", b, sql, nil)
	}
	st.Keys = []Key{userKey(k)}
	return st
}

func (w *Workload) txnEvent(id int64) Step {
	b := w.sql()
	var st Step
	if w.r.IntN(2) == 0 {
		st = w.query("txn.event", b, fmt.Sprintf("select kind, payload from events where id = %s", b.int(id)), total)
	} else {
		st = w.write("txn.event", b, fmt.Sprintf("update events set kind = %s where id = %s", b.text(pick(w.r, kinds)), b.int(id)), nil)
	}
	st.Keys = []Key{eventKey(id)}
	return st
}

func (w *Workload) txnTenant(t string) Step {
	b := w.sql()
	st := w.write("txn.tenant", b, fmt.Sprintf("update tenants set seats = seats + 1 where id = %s", b.text(t)), nil)
	st.Keys = []Key{tenantKey(t)}
	return st
}

func (w *Workload) txnAudit() Step {
	b := w.sql()
	id := w.nextAudit
	w.nextAudit++
	return w.write("txn.audit", b, fmt.Sprintf("insert into audit (id, note) values (%s, 'in a transaction')", b.int(id)), []Key{OnDefault})
}
