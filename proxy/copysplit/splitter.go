package copysplit

import "fmt"

// Row is one row of COPY data.
//
// Its slices alias the chunk given to Feed or the Splitter's own buffers:
// they are valid until the next call to Next, Feed or Finish, and must not
// be modified. A caller that keeps a row past that copies it.
type Row struct {
	// Data is the row exactly as the client sent it, to forward verbatim:
	// in text and CSV format the line with its line ending (none for a
	// last line that had none; "\." and its line ending included for a
	// text line that ends the data), in binary format the whole tuple.
	Data []byte
	// Key is the key field's value: de-escaped text in text format,
	// unquoted text in CSV format, the field's bytes (the type's binary
	// form) in binary format. Nil when Null.
	Key []byte
	// Null says the key is NULL.
	Null bool
	// Line is the row's line number (its tuple number in binary format),
	// counted from 1 with a header line as line 1.
	Line int64
}

// maxKeep bounds the buffers a Splitter keeps between rows, so that one
// huge row does not pin its memory for the rest of the stream.
const maxKeep = 1 << 20

// Splitter cuts one COPY FROM STDIN data stream, arriving in chunks of
// any size (the payloads of CopyData messages), into rows, and reads each
// row's sharding key. It follows the server's parser: the same rows, the
// same key values, the same errors.
//
// A Splitter is not safe for concurrent use. It holds at most one
// incomplete row plus the current chunk.
type Splitter struct {
	opts Options
	key  Key
	csv  bool
	bin  bool
	// keyNotNull and keyForceNull apply FORCE_NOT_NULL and FORCE_NULL to
	// the key column.
	keyNotNull, keyForceNull bool
	// nullText is the NULL marker, the value FORCE_NOT_NULL gives an
	// unquoted one.
	nullText []byte
	// quote and escape are the CSV characters as the line scanner uses
	// them: escape is 0 when it equals quote, as in the server.
	quote, escape byte
	// special marks the bytes the line scanner must stop at.
	special [256]bool

	chunk []byte // the chunk being split; chunk[pos:] is not yet consumed
	pos   int
	// pend holds the start of a row that began in an earlier chunk.
	pend []byte
	// pendOut says pend was handed out as a Row's Data and must be
	// emptied before reuse.
	pendOut bool
	keyBuf  []byte // a de-escaped key

	header     []byte
	headerDone bool
	done       bool // end of data seen: "\." or the binary trailer
	finished   bool
	err        error
	line       int64 // lines (tuples) completed, header included

	eol eolType
	ls  lineState
	bs  binState
}

// New returns a Splitter for data in the format opts describes, reading
// the key key describes. It refuses options the server would refuse.
func New(opts Options, key Key) (*Splitter, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if key.Index < 0 || key.Columns != nil && key.Index >= len(key.Columns) {
		return nil, fmt.Errorf("copysplit: key index %d out of range", key.Index)
	}
	s := &Splitter{
		opts:         opts,
		key:          key,
		csv:          opts.Format == CSV,
		bin:          opts.Format == Binary,
		keyNotNull:   forced(opts.ForceNotNullAll, opts.ForceNotNull, key.Name),
		keyForceNull: forced(opts.ForceNullAll, opts.ForceNull, key.Name),
		headerDone:   opts.Format != Binary && !opts.Header,
		nullText:     capped([]byte(opts.Null)),
	}
	s.ls.reset()
	if !s.bin {
		s.initScanner()
	}
	return s, nil
}

// Feed hands the Splitter the next chunk of data. The Splitter keeps
// chunk, without copying it, until Next reports that it needs more data:
// the caller must not modify chunk before then. Calling Feed while the
// previous chunk is not drained is a bug, and panics. After an error,
// Feed ignores chunk: the client may send more data before its CopyDone.
func (s *Splitter) Feed(chunk []byte) {
	if s.err != nil {
		return
	}
	if s.pos < len(s.chunk) {
		panic("copysplit: Feed before Next drained the previous chunk")
	}
	if s.finished {
		panic("copysplit: Feed after Finish")
	}
	s.chunk, s.pos = chunk, 0
}

// Next returns the next complete row. It reports ok == false when the
// data fed so far holds no further complete row: feed more, or call
// Finish at the end of the data. After an error every call returns the
// same error; the COPY must then fail. Rows after the end-of-data marker
// are dropped, as the server drops them.
func (s *Splitter) Next() (row Row, ok bool, err error) {
	if s.err != nil {
		return Row{}, false, s.err
	}
	s.releasePend()
	if s.bin {
		row, ok, err = s.nextBinary()
	} else {
		row, ok, err = s.nextText()
	}
	if err != nil {
		s.fail(err)
	}
	return row, ok, err
}

// Finish ends the data, as CopyDone does. Call it once Next has drained
// the last chunk. In text and CSV format it returns the last row when
// that row had no line ending (the server accepts one); forward it as
// Data says, without adding a line ending, which could change its
// meaning. It fails when the data ends inside a row, or without the
// binary header.
func (s *Splitter) Finish() (row Row, ok bool, err error) {
	if s.err != nil {
		return Row{}, false, s.err
	}
	if s.pos < len(s.chunk) {
		panic("copysplit: Finish before Next drained the last chunk")
	}
	s.releasePend()
	s.finished = true
	if s.bin {
		err = s.finishBinary()
	} else {
		row, ok, err = s.finishText()
	}
	if err != nil {
		s.fail(err)
		return Row{}, false, err
	}
	return row, ok, nil
}

// Header returns the data's header once it has been read in full: the
// binary format's signature, flags and extension, or a text or CSV
// HEADER line. Every shard must receive it before any row, even a shard
// that receives no row. It is nil before it is complete, when the
// format has none, and when the data ended before it.
func (s *Splitter) Header() []byte {
	if !s.headerDone {
		return nil
	}
	return s.header
}

// Trailer returns what every shard must receive after its last row: the
// binary format's end marker, or nil in text and CSV format, where the
// end of the COPY (CopyDone) ends the data.
func (s *Splitter) Trailer() []byte {
	if s.bin {
		return []byte{0xff, 0xff}
	}
	return nil
}

// Done reports whether the data's end marker has been seen: "\." in text
// and CSV format, the trailer in binary format. Data after "\." is
// ignored; data after the binary trailer is an error.
func (s *Splitter) Done() bool { return s.done }

// releasePend empties pend once the row it held has been handed out.
func (s *Splitter) releasePend() {
	if !s.pendOut {
		return
	}
	s.pendOut = false
	if cap(s.pend) > maxKeep {
		s.pend = nil
	} else {
		s.pend = s.pend[:0]
	}
	if cap(s.keyBuf) > maxKeep {
		s.keyBuf = nil
	}
}

// take returns the bytes of a row that ends before s.chunk[end], starting in
// pend if an earlier chunk began it, and consumes them.
func (s *Splitter) take(start, end int) []byte {
	s.pos = end
	data := s.chunk[start:end]
	if len(s.pend) > 0 {
		s.pend = append(s.pend, data...)
		data = s.pend
		s.pendOut = true
	}
	return capped(data)
}

// capped limits b's capacity to its length, so that a caller appending
// to a row copies it instead of writing over the rows after it.
func capped(b []byte) []byte { return b[:len(b):len(b)] }

// keepRest saves the unconsumed rest of the chunk, the start of a row,
// and drops the chunk.
func (s *Splitter) keepRest() {
	s.pend = append(s.pend, s.chunk[s.pos:]...)
	s.chunk, s.pos = nil, 0
}

// setHeader records the header; the data it is copied from is reused.
func (s *Splitter) setHeader(data []byte) {
	s.header = append(s.header[:0], data...)
	s.headerDone = true
}

func (s *Splitter) fail(err error) {
	s.err = err
	s.chunk, s.pos = nil, 0
	s.pend = nil
}
