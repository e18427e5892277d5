package cluster

import (
	"bytes"
	"io"
	"os"
	"sync"
	"time"
)

// logSink serialises output from many hosts into Options.Log one whole line
// at a time, so concurrent shards do not interleave mid-line.
type logSink struct {
	mu sync.Mutex
	w  io.Writer // nil: discard
}

// lineWriter prefixes each line with a host name. Partial lines are held
// until their newline or Flush.
type lineWriter struct {
	sink   *logSink
	prefix string
	buf    []byte
}

func (s *logSink) writer(prefix string) *lineWriter {
	return &lineWriter{sink: s, prefix: "[" + prefix + "] "}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if l.sink.w == nil {
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// Flush writes a trailing partial line, if any.
func (l *lineWriter) Flush() {
	if len(l.buf) > 0 {
		l.emit(append(l.buf, '\n'))
		l.buf = nil
	}
}

func (l *lineWriter) emit(line []byte) {
	l.sink.mu.Lock()
	defer l.sink.mu.Unlock()
	// Log write errors are not worth failing a cluster over.
	_, _ = io.WriteString(l.sink.w, l.prefix)
	_, _ = l.sink.w.Write(line)
}

// teeWriter copies to a buffer (for error messages) and to the log.
type teeWriter struct {
	buf *bytes.Buffer
	w   io.Writer
}

func (t teeWriter) Write(p []byte) (int, error) {
	t.buf.Write(p)
	return t.w.Write(p)
}

// tailer follows a server log file into the sink. Servers write their logs
// to files (pg_ctl -l) rather than to a pipe because the postmaster outlives
// pg_ctl and would keep a pipe open forever.
type tailer struct {
	stop chan struct{}
	done chan struct{}
}

const tailInterval = 100 * time.Millisecond

func startTailer(sink *logSink, prefix, path string) *tailer {
	t := &tailer{stop: make(chan struct{}), done: make(chan struct{})}
	if sink.w == nil {
		close(t.done)
		return t
	}
	go func() {
		defer close(t.done)
		w := sink.writer(prefix)
		defer w.Flush()
		var off int64
		buf := make([]byte, 32<<10)
		drain := func() {
			f, err := os.Open(path)
			if err != nil {
				return
			}
			defer f.Close()
			for {
				n, err := f.ReadAt(buf, off)
				off += int64(n)
				_, _ = w.Write(buf[:n])
				if err != nil || n == 0 {
					return
				}
			}
		}
		tick := time.NewTicker(tailInterval)
		defer tick.Stop()
		for {
			select {
			case <-t.stop:
				drain()
				return
			case <-tick.C:
				drain()
			}
		}
	}()
	return t
}

// close stops the tailer after copying what the file holds by now.
func (t *tailer) close() {
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	<-t.done
}
