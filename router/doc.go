// Package router turns SQL text into what the proxy needs to know to run
// it: which shards serve it and how their results combine (a Plan),
// whether it may write, and what the statements do to the client's
// session (SET, BEGIN, LISTEN, ...).
//
// The package does no I/O and starts no goroutines. Its state is the
// Routers' parse and plan caches; the package-level Analyze uses a
// default Router.
//
// # Statements
//
// Text is first split by a small lexer that knows PostgreSQL's quoting
// (strings, escape strings E'...' and their continuation lines, quoted
// and U&"..." identifiers, dollar quotes) and nested comments, so a ';'
// or a keyword inside any of them is never mistaken for SQL. Statement i of an
// Analysis is the one the server's i-th CommandComplete reports.
//
// # Reads and writes
//
// A statement is a read when it cannot change data and needs no state
// only the primary has: a query (SELECT, WITH, VALUES, TABLE) without a
// locking clause, without INTO, without a data-modifying WITH and without
// a call of a function that writes (sequences, advisory locks, large
// objects, set_config, pg_notify, ... and Options.WriteFunctions); SHOW;
// EXPLAIN without ANALYZE; COPY ... TO STDOUT; transaction control,
// SET/RESET, DISCARD, DEALLOCATE, CLOSE, FETCH and MOVE. Everything else
// is a write, and so is text the parser rejects: the primary reports the
// error.
//
// Deciding costs one pass of the lexer for most statements. The first word
// settles INSERT, CREATE, BEGIN and the like; for a query, only some
// tokens can make it a write (FOR, INTO, INSERT/UPDATE/DELETE/MERGE, the
// name of a function that writes, plain or quoted), and a query without
// any is a read with no parse and no allocation. The prefilter errs only
// towards asking the parser: it never calls a read what the parser would
// call a write, which FuzzAnalyze checks. The statements it cannot settle,
// and SET/SHOW/transaction options whose details matter, go to the real
// PostgreSQL parser (pg_query_go), whose tree is then walked, nested
// queries, CTEs, LATERAL and functions in FROM included. The tree is read
// in the parser's JSON form: libpg_query writes it several times faster
// than its protobuf form, which matters for long queries.
//
// What no parser can see stays out of reach: a user function that writes
// must be listed in Options.WriteFunctions, and a view calling nextval()
// looks like any other view. With standard_conforming_strings off, a
// backslash in a plain string may end it elsewhere than the lexer
// thinks; the error then comes from a read-only replica, not bad data.
//
// # Parse cache
//
// Results that needed the parser are cached by the whole query text in a
// sharded LRU: one shard per 64 entries, at most 16, each with its own
// lock and evicting its own least recently used entry. The shards' capacities add up to
// Options.CacheSize, which the number of entries never exceeds; texts
// over 16 KiB are not cached, so memory stays bounded too. A hit costs a
// hash, a map lookup and a lock, and allocates nothing; the key is copied
// on insert only, so the proxy may look texts up in its reused read
// buffer. Cached results are shared between callers and must not be
// modified.
//
// # Hints
//
// A comment /* shardgate: role=primary */ or -- shardgate: role=replica
// anywhere in the text sets Analysis.Hint; other shardgate: keys are
// ignored, and primary wins over replica. Only comments are searched, so
// text without comments pays nothing. Plan reads two more keys:
// shard=NAME runs the text on that shard, key=VALUE (a word or a
// 'quoted string') on the shard of that key; either overrides what the
// statement says and lifts a refusal.
//
// # Plans
//
// Router.Plan turns a statement and a Schema (the shard map's word on
// each table: sharded by a key column within a distribution, reference,
// or unsharded on the default shard) into a Plan: where it runs (Spread,
// Keys) and how the shards' results combine (Merge, Rewritten).
//
// The statement is read as a tree of query blocks: the statement, its
// subqueries, WITH queries and set operation branches. Each occurrence
// of a sharded table is a node, and key equalities join nodes into
// groups whose rows meet on one shard: a.key = b.key at the top of a
// WHERE or ON, JOIN USING (key), key IN (SELECT key ...), and a
// subquery's equality with an outer query's key (a correlation). Keys
// come from the conditions that restrict a group's rows: key = v, key IN
// (...), key = ANY($n) and AND and OR of those, in WHERE, in the ON of
// inner joins, and in the WHERE of EXISTS and IN subqueries and of
// subqueries joined in FROM. Column names resolve as PostgreSQL resolves
// them, except that a bare name is only ever looked up in its own block:
// we do not know the tables' other columns.
//
// What would give a wrong answer is refused with SQLSTATE 0A000 and a
// message naming the construct: sharded tables of two groups (not joined
// on their keys, or of different distributions) unless one single key
// restricts both; a sharded table next to an unsharded one; a subquery
// whose result on one shard would differ from its global result (LIMIT,
// an aggregate not grouped by the key, a window function) unless it is
// correlated on the key or restricted to one key; and, for statements
// that run on several shards, what no merge combines (window functions,
// DISTINCT ON, aggregates other than count, sum, min, max, avg, bool_and
// and bool_or, or with DISTINCT, ORDER BY or FILTER, aggregates inside
// expressions, grouping sets, set operations, FOR UPDATE, WITH TIES).
//
// A query on several shards merges: ORDER BY becomes sort keys over the
// shard rows (expressions not in the select list are appended as hidden
// columns), LIMIT is pushed down as limit + offset with OFFSET cut after
// the merge, aggregates merge per group (avg as sum and count), HAVING is
// evaluated after the merge, DISTINCT drops duplicates. A query grouped
// by the sharding key has whole groups on each shard and merges like a
// plain one. The shards' statement is made with pg_query's deparser, so
// Rewritten is in its spelling. Writes to reference tables and schema
// changes run on every shard; INSERT ... VALUES of several rows and COPY
// FROM STDIN into a sharded table are split by the proxy by key.
//
// Plans are cached by text in a sharded LRU like the parse cache, with
// the Schema version they were made for: a hit costs a hash, a map
// lookup and a lock, and allocates nothing; a plan for an older version
// is made again.
//
// # Shapes
//
// Clients that send constants in the text (the simple protocol) rarely
// send one text twice, so their statements would all be parsed. A single
// SELECT, INSERT, UPDATE, DELETE or WITH is therefore also read by a
// lexer that replaces its numbers and strings with parameters, $1 for
// the first value, the same $n for equal values: its shape. The shape is
// planned once (its keys are then parameters) and cached by its text and
// Schema version like plans; a text of the same shape gets that plan with
// the parameters replaced by its own values, as the literal Values the
// parser would have given. This costs a pass over the text and one or
// two allocations. The lexer replaces a literal only where a parameter
// makes the same tree with a parameter in the literal's place (not in
// ORDER BY 1, ANY('{1,2}'), and a sign is part of a number where the
// parser folds it); texts it is unsure of are parsed (shape_rules.go
// lists the rules). Shapes whose plan needs more from the text than key
// values (merges, multi-row INSERT, refusals) are remembered as such and
// their texts parsed. The first time a shape is seen, the text is parsed
// too, and the shape's plan is kept only if, filled, it equals the text's
// plan, field for field.
package router
