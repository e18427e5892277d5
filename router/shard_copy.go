package router

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// planCopy plans COPY. COPY t FROM STDIN into a sharded table runs on
// every shard, and the proxy splits the rows by key (Plan.Copy); into a
// reference table every shard gets every row. COPY t TO STDOUT reads
// from wherever t's rows are: every shard's rows are concatenated (the
// proxy keeps one header, and for binary one signature and trailer).
// COPY (query) TO STDOUT runs as its query would, when no merge is
// needed. COPY from or to a server file or program is a write or read
// of the server's file system: it runs where the table's rows are only
// when that is one place.
func planCopy(res *pg_query.ParseResult, c *pg_query.CopyStmt, s Schema) (*Plan, string) {
	if c.Query != nil {
		inner, dist := planStatement(nested(res, c.Query), s)
		if inner.Refused != nil {
			return inner, dist
		}
		if inner.Merge != nil {
			return refused("COPY of a query whose rows from several shards must be merged (ORDER BY, LIMIT, DISTINCT, aggregates) is not supported",
				"add a condition on the sharding key, or run the query as a SELECT"), dist
		}
		return &Plan{Spread: inner.Spread, Keys: inner.Keys, Distribution: inner.Distribution}, dist
	}
	rv := c.Relation
	if rv == nil {
		return &Plan{Spread: SpreadDefault}, ""
	}
	info, ok := s.Table(rv.Schemaname, rv.Relname)
	if !ok {
		info = TableInfo{}
	}
	file := c.IsProgram || c.Filename != ""
	switch {
	case info.Kind == TableUnsharded:
		return &Plan{Spread: SpreadDefault}, ""
	case file && (c.IsFrom || info.Kind == TableSharded):
		return refused(fmt.Sprintf("COPY of %s to or from a server file or program is not supported: its rows are on several shards", rv.Relname),
			"use COPY ... FROM STDIN or TO STDOUT through the proxy"), info.Distribution
	case file:
		return &Plan{Spread: SpreadAny}, ""
	}
	ci, why := copyInfo(c, info)
	if why != nil {
		return &Plan{Refused: why}, info.Distribution
	}
	switch {
	case c.IsFrom && info.Kind == TableReference:
		return &Plan{Spread: SpreadAll, Reference: true, Copy: ci}, ""
	case c.IsFrom:
		return &Plan{Spread: SpreadAll, Distribution: info.Distribution, Copy: ci}, info.Distribution
	case info.Kind == TableReference:
		return &Plan{Spread: SpreadAny}, ""
	}
	return &Plan{Spread: SpreadAll, Distribution: info.Distribution, Copy: ci}, info.Distribution
}

// copyInfo reads a COPY's column list and format options, with
// PostgreSQL's defaults filled in.
func copyInfo(c *pg_query.CopyStmt, info TableInfo) (*CopyInfo, *Refusal) {
	ci := &CopyInfo{From: c.IsFrom, Table: info, Columns: strs(c.Attlist), Format: "text", KeyIndex: -1}
	var delim, null, quote, escape *string
	for _, o := range c.Options {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		arg := d.Arg.GetString_().GetSval()
		switch d.Defname {
		case "format":
			ci.Format = strings.ToLower(arg)
		case "delimiter":
			delim = &arg
		case "null":
			null = &arg
		case "quote":
			quote = &arg
		case "escape":
			escape = &arg
		case "header":
			ci.Header = d.Arg == nil || !isFalse(defArg(d))
		case "encoding":
			return nil, &Refusal{Message: "COPY with ENCODING is not supported through the proxy", Hint: "set client_encoding instead"}
		}
	}
	switch ci.Format {
	case "csv":
		ci.Delimiter, ci.Null, ci.Quote = ",", "", `"`
	case "text":
		ci.Delimiter, ci.Null = "\t", `\N`
	}
	for _, o := range []struct{ from, to *string }{{delim, &ci.Delimiter}, {null, &ci.Null}, {quote, &ci.Quote}, {escape, &ci.Escape}} {
		if o.from != nil {
			*o.to = *o.from
		}
	}
	if ci.Format == "csv" && escape == nil {
		ci.Escape = ci.Quote
	}
	if info.Kind == TableSharded && len(ci.Columns) > 0 {
		for i, col := range ci.Columns {
			if col == info.Key {
				ci.KeyIndex = i
			}
		}
		if ci.KeyIndex < 0 && c.IsFrom {
			return nil, &Refusal{Message: fmt.Sprintf("COPY into sharded table %s must include its sharding key %s", c.Relation.Relname, info.Key),
				Hint: "add the key to the column list"}
		}
	}
	return ci, nil
}
