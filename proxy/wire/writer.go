package wire

import (
	"bufio"
	"encoding/binary"
)

// WriteHeader writes a frame header for a body of n bytes.
func WriteHeader(w *bufio.Writer, typ byte, n int) {
	// Built in the writer's own free space: a local array would escape
	// through Write and cost an allocation per message.
	_, _ = w.Write(binary.BigEndian.AppendUint32(append(w.AvailableBuffer(), typ), uint32(n+4)))
}

// WriteFrame writes a whole frame. Errors surface at Flush, as with any
// bufio.Writer.
func WriteFrame(w *bufio.Writer, typ byte, body []byte) {
	WriteHeader(w, typ, len(body))
	_, _ = w.Write(body)
}

// Encoder is the Encode method shared by every pgproto3 message.
type Encoder interface {
	Encode(dst []byte) ([]byte, error)
}

// WriteMessage encodes a pgproto3 message into w.
func WriteMessage(w *bufio.Writer, msg Encoder) error {
	buf, err := msg.Encode(w.AvailableBuffer())
	if err != nil {
		return err
	}
	_, err = w.Write(buf)
	return err
}
