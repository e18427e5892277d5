package merge

import (
	"github.com/jackc/pgx/v5/pgproto3"
)

// Source yields one shard's result rows in order. Next returns io.EOF
// after the last row. A row's values are views valid until the next call
// (Run copies what it keeps); a nil value is SQL NULL.
type Source interface {
	Next() (row [][]byte, err error)
}

// Run merges the sources' rows, which all have the shard fields, into
// what a single server would have returned for the client's statement,
// and passes each row to emit. A row given to emit is valid only during
// the call. Run streams whenever the Spec allows it:
//
//   - no Order, no Aggregate: the sources one after another;
//   - Order: a k-way merge of the already sorted sources, holding one
//     row per source;
//   - Distinct: as above, dropping repeats (remembering every distinct
//     row, unless the sort keys start with all visible columns, which
//     makes repeats adjacent);
//   - Aggregate: all rows are grouped first, then Having, Distinct and
//     Order apply to the groups.
//
// Offset and Limit apply last. Run stops reading once Limit rows are
// out and returns; draining or cancelling the sources is the caller's
// job. An error from a source is returned as is; Run's own errors are
// *Error values carrying a SQLSTATE.
func Run(spec *Spec, fields []pgproto3.FieldDescription, sources []Source, emit func(row [][]byte) error) error {
	p, err := compile(spec, fields)
	if err != nil {
		return err
	}
	if p.limit == 0 {
		return nil
	}
	out := p.newSink(emit)
	switch {
	case p.agg != nil:
		err = p.aggregate(sources, out)
	case len(p.order) > 0:
		err = p.mergeSorted(sources, out)
	default:
		err = p.concat(sources, out)
	}
	if err == errDone {
		return nil
	}
	return err
}
