package admin

import (
	"fmt"
	"strings"
)

// Verb is what a command does.
type Verb string

// The console's verbs.
const (
	Show     Verb = "SHOW"
	Reload   Verb = "RELOAD"
	Pause    Verb = "PAUSE"
	Resume   Verb = "RESUME"
	Ban      Verb = "BAN"
	Unban    Verb = "UNBAN"
	Kill     Verb = "KILL"
	Shutdown Verb = "SHUTDOWN"
	// Set is accepted and ignored, as drivers send SET commands on
	// connect (client_encoding, application_name) to any database.
	Set Verb = "SET"
)

// Shows are the objects of SHOW, in the order SHOW HELP lists them.
var Shows = []string{"POOLS", "STATS", "CLIENTS", "SERVERS", "HOSTS", "SHARDS", "SHARDMAP", "PREPARED", "CONFIG", "VERSION", "FANOUTS", "HELP"}

// Command is one parsed console command.
type Command struct {
	Verb Verb
	// Object is SHOW's object, upper-cased ("POOLS").
	Object string
	// Arg is the argument of PAUSE, RESUME, BAN, UNBAN and KILL, as
	// written (quotes removed); "" when there is none.
	Arg string
	// Text is the command as the client wrote it, for error messages.
	Text string
}

// Tag is the CommandComplete tag of a command that returns no rows.
func (c Command) Tag() string {
	return string(c.Verb)
}

// Error is a command the console cannot run, with its SQLSTATE.
type Error struct {
	Code    string
	Message string
	Hint    string
}

func (e *Error) Error() string { return e.Message }

// SQLState returns the SQLSTATE code.
func (e *Error) SQLState() string { return e.Code }

// usage is the hint of a syntax error: every command, briefly.
const usage = "commands: SHOW POOLS|STATS|CLIENTS|SERVERS|HOSTS|SHARDS|SHARDMAP|PREPARED|FANOUTS|CONFIG|VERSION|HELP; RELOAD; PAUSE [pool]; RESUME [pool]; BAN host; UNBAN host; KILL client_id; SHUTDOWN"

func syntaxError(format string, args ...any) *Error {
	return &Error{Code: "42601", Message: fmt.Sprintf(format, args...), Hint: usage}
}

// Parse splits a query string into its commands. An empty string (or one
// of only semicolons and blanks) is no command, as for a server.
func Parse(sql string) ([]Command, error) {
	var out []Command
	for _, text := range splitStatements(sql) {
		words, err := split(text)
		if err != nil {
			return nil, err
		}
		if len(words) == 0 {
			continue
		}
		c, err := parseOne(text, words)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseOne(text string, words []string) (Command, error) {
	c := Command{Verb: Verb(strings.ToUpper(words[0])), Text: text}
	args := words[1:]
	switch c.Verb {
	case Show:
		if len(args) != 1 {
			return c, syntaxError("SHOW takes one object, as in SHOW POOLS")
		}
		c.Object = strings.ToUpper(args[0])
		for _, o := range Shows {
			if o == c.Object {
				return c, nil
			}
		}
		return c, syntaxError("unknown SHOW object %q", args[0])
	case Reload, Shutdown:
		if len(args) != 0 {
			return c, syntaxError("%s takes no argument", c.Verb)
		}
	case Pause, Resume:
		if len(args) > 1 {
			return c, syntaxError("%s takes at most one pool (a database or a shard name)", c.Verb)
		}
		if len(args) == 1 {
			c.Arg = args[0]
		}
	case Ban, Unban:
		if len(args) != 1 {
			return c, syntaxError("%s takes one host, as in %s '10.0.0.5:5432'", c.Verb, c.Verb)
		}
		c.Arg = args[0]
	case Kill:
		if len(args) != 1 {
			return c, syntaxError("KILL takes one client id (the id column of SHOW CLIENTS)")
		}
		c.Arg = args[0]
	case Set:
	default:
		return c, syntaxError("unknown command %q", words[0])
	}
	return c, nil
}

// splitStatements cuts a query string at semicolons outside quotes.
func splitStatements(sql string) []string {
	var out []string
	var quote byte
	start := 0
	for i := 0; i < len(sql); i++ {
		ch := sql[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == ';':
			out = append(out, sql[start:i])
			start = i + 1
		}
	}
	return append(out, sql[start:])
}

// split cuts one command into words at blanks; quoted words keep their
// blanks and lose their quotes (a doubled quote stands for itself).
func split(text string) ([]string, error) {
	var words []string
	i := 0
	for i < len(text) {
		ch := text[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			i++
		case ch == '\'' || ch == '"':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(text) {
					return nil, syntaxError("unterminated quoted string in %q", strings.TrimSpace(text))
				}
				if text[j] == ch {
					if j+1 < len(text) && text[j+1] == ch {
						b.WriteByte(ch)
						j += 2
						continue
					}
					break
				}
				b.WriteByte(text[j])
				j++
			}
			words = append(words, b.String())
			i = j + 1
		default:
			j := i
			for j < len(text) && !strings.ContainsRune(" \t\n\r'\"", rune(text[j])) {
				j++
			}
			words = append(words, text[i:j])
			i = j
		}
	}
	return words, nil
}
