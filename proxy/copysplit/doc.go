// Package copysplit splits the data of a COPY ... FROM STDIN into rows
// and reads each row's sharding key, so that a proxy can send every row
// to the shard that owns it. It is pure: no I/O, no goroutines.
//
// The client's CopyData messages cut the data anywhere: a row may span
// messages and a message may hold many rows. A Splitter takes the
// messages' payloads in order and returns whole rows, each with its exact
// bytes, to forward verbatim, and its key: de-escaped (text format),
// unquoted (CSV) or raw (binary), or NULL. It reads rows as PostgreSQL
// 15 to 17 do, with their options (delimiter, NULL and DEFAULT markers,
// quote, escape, HEADER, FORCE_NOT_NULL, FORCE_NULL), line endings (LF,
// CR or CRLF, fixed by the first line), end marker ("\."), and errors
// (SQLSTATE 22P04 and the server's messages).
//
// A proxy drives it like this:
//
//	opts, err := copysplit.OptionsFromStmt(stmt)           // the parsed COPY
//	key, err := copysplit.KeyFromStmt(stmt, tableColumns, "user_id")
//	sp, err := copysplit.New(opts, key)
//	for each CopyData message m:
//		sp.Feed(m.Data)
//		for {
//			row, ok, err := sp.Next()
//			if err != nil { fail the COPY on every shard; report err }
//			if !ok { break }             // read the next message
//			shard := route(row.Key, row.Null)
//			send shard sp.Header() first, if it has not had it
//			send shard row.Data
//		}
//	at CopyDone:
//		row, ok, err := sp.Finish()     // a last row without a newline
//		send every shard sp.Header() if it has not had it, then sp.Trailer()
//
// Every shard in the COPY needs the header (binary format, or HEADER)
// even when it gets no row: its server expects one. Rows alias the fed
// message, so a caller that reuses the message's buffer forwards or
// copies the rows before reading the next message.
//
// Fields after the key are not checked; the shards check them. Bytes are
// parsed as they come, which is right for UTF-8 and every server
// encoding but not for client encodings whose characters can contain
// ASCII bytes (see SafeEncoding). PostgreSQL 18 reads "\." differently:
// as data in CSV, and as an error when not alone on its line in text.
package copysplit
