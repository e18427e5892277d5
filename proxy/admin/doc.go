// Package admin is the language of shardgate's admin console: it parses
// the console's commands (SHOW POOLS, PAUSE, KILL, ...) and encodes their
// results as PostgreSQL row messages in text or binary format.
//
// It knows nothing of the proxy's internals: the proxy runs the parsed
// commands and hands back Results. Keeping the grammar here, pure and
// without I/O, lets it be tested on its own and keeps the session code
// about the protocol only.
//
// The grammar follows pgbouncer's console, which operators already know:
// a verb, an optional object and an optional argument, case-insensitive,
// separated by blanks, several commands per query string separated by
// semicolons. Arguments may be quoted with single or double quotes.
package admin
