package router

import "strings"

// kwClass is what a word means to the normaliser: whether an expression
// may start after it, so that a '-' there is a sign.
type kwClass uint8

const (
	// kwNone: not a keyword, so a name (a column, a type, an alias).
	kwNone kwClass = iota
	// kwStart: a reserved keyword after which only an expression (or a
	// syntax error) can follow: SELECT, WHERE, AND, THEN, LIMIT, ...
	kwStart
	// kwEnd: a reserved keyword that is itself a value: NULL, TRUE,
	// CURRENT_DATE, END, ...
	kwEnd
	// kwOther: a keyword that may also be a name (unreserved, column or
	// type name keywords): BY, LIKE, INTERVAL, NAME, VALUE, ...
	kwOther
)

// PostgreSQL 16's keywords (src/include/parser/kwlist.h, the version
// pg_query_go parses), by the class the normaliser needs.
const (
	kwStartWords = `all analyse analyze and any array as asc asymmetric both case
	cast check collate column constraint create default deferrable desc distinct
	do else except fetch for foreign from grant group having in initially
	intersect into lateral leading limit not offset on only or order placing
	primary references returning select some symmetric table then to trailing
	union unique using variadic when where window with`
	kwEndWords = `current_catalog current_date current_role current_time
	current_timestamp current_user end false localtime localtimestamp null
	session_user system_user true user`
	kwOtherWords = `abort absent absolute access action add admin after aggregate also
	alter always asensitive assertion assignment at atomic attach attribute
	authorization backward before begin between bigint binary bit boolean
	breadth by cache call called cascade cascaded catalog chain char
	character characteristics checkpoint class close cluster coalesce
	collation columns comment comments commit committed compression
	concurrently configuration conflict connection constraints content
	continue conversion copy cost cross csv cube current current_schema
	cursor cycle data database day deallocate dec decimal declare defaults
	deferred definer delete delimiter delimiters depends depth detach
	dictionary disable discard document domain double drop each enable
	encoding encrypted enum escape event exclude excluding exclusive
	execute exists explain expression extension external extract family
	filter finalize first float following force format forward freeze
	full function functions generated global granted greatest grouping
	groups handler header hold hour identity if ilike immediate immutable
	implicit import include including increment indent index indexes
	inherit inherits inline inner inout input insensitive insert instead
	int integer interval invoker is isnull isolation join json json_array
	json_arrayagg json_object json_objectagg key keys label language large
	last leakproof least left level like listen load local location lock
	locked logged mapping match matched materialized maxvalue merge method
	minute minvalue mode month move name names national natural nchar new
	next nfc nfd nfkc nfkd no none normalize normalized nothing notify
	notnull nowait nullif nulls numeric object of off oids old operator
	option options ordinality others out outer over overlaps overlay
	overriding owned owner parallel parameter parser partial partition
	passing password plans policy position preceding precision prepare
	prepared preserve prior privileges procedural procedure procedures
	program publication quote range read real reassign recheck recursive
	ref referencing refresh reindex relative release rename repeatable
	replace replica reset restart restrict return returns revoke right role
	rollback rollup routine routines row rows rule savepoint scalar schema
	schemas scroll search second security sequence sequences serializable
	server session set setof sets share show similar simple skip smallint
	snapshot sql stable standalone start statement statistics stdin stdout
	storage stored strict strip subscription substring support sysid system
	tables tablesample tablespace temp template temporary text ties time
	timestamp transaction transform treat trigger trim truncate trusted
	type types uescape unbounded uncommitted unencrypted unknown unlisten
	unlogged until update vacuum valid validate validator value values
	varchar varying verbose version view views volatile whitespace within
	without work wrapper write xml xmlattributes xmlconcat xmlelement
	xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize
	xmltable year yes zone`
)

// maxKeyword is the longest keyword (current_timestamp).
const maxKeyword = 17

var keywords = func() map[string]kwClass {
	m := map[string]kwClass{}
	for _, l := range []struct {
		words string
		class kwClass
	}{{kwStartWords, kwStart}, {kwEndWords, kwEnd}, {kwOtherWords, kwOther}} {
		for _, w := range strings.Fields(l.words) {
			m[w] = l.class
		}
	}
	return m
}()

// keywordClass classifies a word, folding ASCII case as PostgreSQL does,
// without allocating.
func keywordClass(w string) kwClass {
	if len(w) > maxKeyword {
		return kwNone
	}
	var buf [maxKeyword]byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return keywords[string(buf[:len(w)])]
}
