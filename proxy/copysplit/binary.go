package copysplit

import "encoding/binary"

// This file splits binary-format data, following the server's
// ReceiveCopyBinaryHeader and the binary branch of NextCopyFrom. The
// length of a tuple is only known by walking its fields, which may
// arrive a byte at a time, so the walk is a state machine too.

// binarySignature starts binary COPY data.
var binarySignature = [11]byte{'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0}

// binStage is the part of the binary data being read.
type binStage uint8

const (
	bSig    binStage = iota // the signature
	bFlags                  // the header's flags
	bExtLen                 // the header extension's length
	bExt                    // the header extension
	bCount                  // a tuple's field count, or the trailer
	bLen                    // a field's length
	bData                   // a field's bytes
	bDone                   // after the trailer
)

// binState is the binary walk's state.
type binState struct {
	st binStage
	// got counts the bytes read of the signature or of the integer in ib.
	got int
	ib  [4]byte
	// need is what is left of the header extension or of the field.
	need int64
	// fields is the number of fields left in the tuple.
	fields int
}

// nextBinary returns the next binary tuple.
func (s *Splitter) nextBinary() (Row, bool, error) {
	for {
		if s.pos >= len(s.chunk) {
			s.chunk, s.pos = nil, 0
			return Row{}, false, nil
		}
		start := s.pos
		end, ev, err := s.scanBinary(start)
		if err != nil {
			return Row{}, false, err
		}
		if ev == evNone {
			s.keepRest()
			return Row{}, false, nil
		}
		data := s.take(start, end)
		switch ev {
		case evHeader:
			s.setHeader(data)
			s.releasePend()
		case evTrailer:
			// The caller sends its own trailer to every shard.
			s.done = true
			s.releasePend()
		default:
			s.line++
			key, null := s.binaryKey(data)
			return Row{Data: data, Key: key, Null: null, Line: s.line}, true, nil
		}
	}
}

// scanBinary walks s.chunk from start to the end of the header, of a
// tuple or of the trailer, returning the index after it and which it
// was, or evNone when the chunk ends first.
func (s *Splitter) scanBinary(start int) (int, event, error) {
	buf := s.chunk
	bs := &s.bs
	i := start
	for i < len(buf) {
		switch bs.st {
		case bSig:
			if buf[i] != binarySignature[bs.got] {
				return 0, evNone, dataError(0, "COPY file signature not recognized")
			}
			i++
			if bs.got++; bs.got == len(binarySignature) {
				bs.st, bs.got = bFlags, 0
			}
		case bExt, bData:
			k := int64(len(buf) - i)
			if k > bs.need {
				k = bs.need
			}
			i += int(k)
			if bs.need -= k; bs.need > 0 {
				continue
			}
			if bs.st == bExt {
				bs.st = bCount
				return i, evHeader, nil
			}
			if s.fieldDone() {
				return i, evLine, nil
			}
		case bDone:
			return 0, evNone, dataError(s.line+1, "received copy data after EOF marker")
		default:
			size := 4
			if bs.st == bCount {
				size = 2
			}
			var v int32
			if bs.got == 0 && len(buf)-i >= size {
				v = readInt(buf[i:], size)
				i += size
			} else {
				// An integer split across chunks.
				n := copy(bs.ib[bs.got:size], buf[i:])
				bs.got += n
				i += n
				if bs.got < size {
					continue
				}
				v = readInt(bs.ib[:], size)
				bs.got = 0
			}
			if ev, err := s.binInt(v); err != nil || ev != evNone {
				return i, ev, err
			}
		}
	}
	return i, evNone, nil
}

func readInt(b []byte, size int) int32 {
	if size == 2 {
		return int32(int16(binary.BigEndian.Uint16(b)))
	}
	return int32(binary.BigEndian.Uint32(b))
}

// binInt handles an integer of the header or of a tuple.
func (s *Splitter) binInt(v int32) (event, error) {
	bs := &s.bs
	switch bs.st {
	case bFlags:
		const withOIDs = 1 << 16
		if v&withOIDs != 0 {
			return evNone, dataError(0, "invalid COPY file header (WITH OIDS)")
		}
		// The high 16 bits are critical flags: none is defined.
		if uint32(v)>>16 != 0 {
			return evNone, dataError(0, "unrecognized critical flags in COPY file header")
		}
		bs.st = bExtLen
	case bExtLen:
		if v < 0 {
			return evNone, dataError(0, "invalid COPY file header (missing length)")
		}
		if v == 0 {
			bs.st = bCount
			return evHeader, nil
		}
		bs.need, bs.st = int64(v), bExt
	case bCount:
		if v == -1 {
			bs.st = bDone
			return evTrailer, nil
		}
		n := int(v)
		if s.key.Columns != nil && n != len(s.key.Columns) {
			return evNone, dataError(s.line+1, "row field count is %d, expected %d", n, len(s.key.Columns))
		}
		if n <= s.key.Index {
			return evNone, s.errMissing(s.line+1, max(n, 0))
		}
		bs.fields, bs.st = n, bLen
	case bLen:
		switch {
		case v < -1:
			return evNone, dataError(s.line+1, "invalid field size")
		case v <= 0:
			// NULL or empty.
			if s.fieldDone() {
				return evLine, nil
			}
		default:
			bs.need, bs.st = int64(v), bData
		}
	}
	return evNone, nil
}

// fieldDone ends a field and reports whether it ended the tuple.
func (s *Splitter) fieldDone() bool {
	bs := &s.bs
	if bs.fields--; bs.fields == 0 {
		bs.st = bCount
		return true
	}
	bs.st = bLen
	return false
}

// binaryKey returns the key field of a complete, already checked tuple.
func (s *Splitter) binaryKey(t []byte) ([]byte, bool) {
	off := 2
	for f := 0; ; f++ {
		n := int(int32(binary.BigEndian.Uint32(t[off:])))
		off += 4
		if f == s.key.Index {
			if n < 0 {
				return nil, true
			}
			return t[off : off+n : off+n], false
		}
		if n > 0 {
			off += n
		}
	}
}

// finishBinary checks the end of binary data, with the server's messages.
func (s *Splitter) finishBinary() error {
	switch s.bs.st {
	case bSig:
		return dataError(0, "COPY file signature not recognized")
	case bFlags:
		return dataError(0, "invalid COPY file header (missing flags)")
	case bExtLen:
		return dataError(0, "invalid COPY file header (missing length)")
	case bExt:
		return dataError(0, "invalid COPY file header (wrong length)")
	case bLen, bData:
		return dataError(s.line+1, "unexpected EOF in COPY data")
	}
	// The trailer is optional, and the server takes a lone byte where a
	// field count should be as the end of the data too.
	return nil
}
