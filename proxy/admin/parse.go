package admin

import (
	"fmt"
	"slices"
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

// Object is a SHOW object as the grammar knows it.
type Object struct {
	// Name is upper-case, as Command.Object holds it.
	Name string
	// Help is what SHOW HELP says of it.
	Help string
}

// helpObject is SHOW's own object, whose rows the grammar itself has.
const helpObject = "HELP"

// verbs are the commands other than SHOW, written with their arguments,
// in the order the syntax hint and SHOW HELP list them.
var verbs = []struct{ synopsis, help string }{
	{"RELOAD", "re-read the config file and apply what can change live (also SIGHUP)"},
	{"PAUSE [pool]", "hold new transactions (all, or of a database or shard); waits for running ones"},
	{"RESUME [pool]", "undo PAUSE"},
	{"BAN host", "take a replica out of the read rotation"},
	{"UNBAN host", "undo BAN"},
	{"KILL client_id", "disconnect a client (SHOW CLIENTS gives the id)"},
	{"SHUTDOWN", "stop accepting, let running transactions finish, exit (as SIGTERM)"},
}

// HelpColumns are the columns of SHOW HELP.
var HelpColumns = Cols("command", Text, "description", Text)

// Grammar is the console's language over a set of SHOW objects. The
// objects come from the caller, which alone can run them, so that its
// table is the one list of them: the parser, the syntax error's hint and
// SHOW HELP all derive from it and cannot disagree (they once did: the
// parser refused a SHOW that the help advertised).
type Grammar struct {
	shows []Object
	// usage is the hint of a syntax error: every command, briefly.
	usage string
	// help are SHOW HELP's rows, made once as they never change.
	help [][]any
}

// NewGrammar returns the grammar whose SHOW takes the objects given, in
// the order the hint and SHOW HELP list them, and HELP.
func NewGrammar(shows []Object) *Grammar {
	g := &Grammar{shows: shows}
	names := make([]string, 0, len(shows)+1)
	for _, o := range shows {
		names = append(names, o.Name)
		g.help = append(g.help, []any{"SHOW " + o.Name, o.Help})
	}
	synopses := make([]string, 0, len(verbs))
	for _, v := range verbs {
		synopses = append(synopses, v.synopsis)
		g.help = append(g.help, []any{v.synopsis, v.help})
	}
	g.usage = "commands: SHOW " + strings.Join(append(names, helpObject), "|") + "; " + strings.Join(synopses, "; ")
	return g
}

// HelpRows returns the rows of SHOW HELP: every SHOW object, then the
// other commands. They are shared: the caller must not change them.
func (g *Grammar) HelpRows() [][]any { return g.help }

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

func (g *Grammar) syntaxError(format string, args ...any) *Error {
	return &Error{Code: "42601", Message: fmt.Sprintf(format, args...), Hint: g.usage}
}

// Parse splits a query string into its commands. An empty string (or one
// of only semicolons and blanks) is no command, as for a server.
func (g *Grammar) Parse(sql string) ([]Command, error) {
	var out []Command
	for _, text := range splitStatements(sql) {
		words, err := g.split(text)
		if err != nil {
			return nil, err
		}
		if len(words) == 0 {
			continue
		}
		c, err := g.parseOne(text, words)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (g *Grammar) parseOne(text string, words []string) (Command, error) {
	c := Command{Verb: Verb(strings.ToUpper(words[0])), Text: text}
	args := words[1:]
	switch c.Verb {
	case Show:
		if len(args) != 1 {
			return c, g.syntaxError("SHOW takes one object, as in SHOW POOLS")
		}
		c.Object = strings.ToUpper(args[0])
		if c.Object == helpObject || slices.ContainsFunc(g.shows, func(o Object) bool { return o.Name == c.Object }) {
			return c, nil
		}
		return c, g.syntaxError("unknown SHOW object %q", args[0])
	case Reload, Shutdown:
		if len(args) != 0 {
			return c, g.syntaxError("%s takes no argument", c.Verb)
		}
	case Pause, Resume:
		if len(args) > 1 {
			return c, g.syntaxError("%s takes at most one pool (a database or a shard name)", c.Verb)
		}
		if len(args) == 1 {
			c.Arg = args[0]
		}
	case Ban, Unban:
		if len(args) != 1 {
			return c, g.syntaxError("%s takes one host, as in %s '10.0.0.5:5432'", c.Verb, c.Verb)
		}
		c.Arg = args[0]
	case Kill:
		if len(args) != 1 {
			return c, g.syntaxError("KILL takes one client id (the id column of SHOW CLIENTS)")
		}
		c.Arg = args[0]
	case Set:
	default:
		return c, g.syntaxError("unknown command %q", words[0])
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
func (g *Grammar) split(text string) ([]string, error) {
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
					return nil, g.syntaxError("unterminated quoted string in %q", strings.TrimSpace(text))
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
