package sandbox

import (
	"bytes"
	"sync"
)

// tailSize is how much of the end of stdout is kept apart from the capped
// capture, so the supervisor's closing line is found after a long output.
const tailSize = 8 << 10

// capture keeps the first max bytes of stdout and stderr together and
// calls over once when more arrive.
type capture struct {
	mu       sync.Mutex
	max      int64
	total    int64
	stdout   bytes.Buffer
	stderr   bytes.Buffer
	tail     []byte
	over     func()
	overDone bool
}

type stream struct {
	c   *capture
	out bool
}

func (s stream) Write(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - c.total
	c.total += int64(len(p))
	keep := p
	if int64(len(keep)) > room {
		keep = keep[:max(room, 0)]
	}
	if s.out {
		c.stdout.Write(keep)
		c.tail = append(c.tail, p...)
		if len(c.tail) > tailSize {
			c.tail = append(c.tail[:0], c.tail[len(c.tail)-tailSize:]...)
		}
	} else {
		c.stderr.Write(keep)
	}
	if c.total > c.max && !c.overDone {
		c.overDone = true
		c.over()
	}
	return len(p), nil
}

// split separates the supervisor's marker lines from the skill's stdout:
// the first line must be the isolation report, the last line of the tail
// the closing report.
func (c *capture) split() (stdout []byte, first, last string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.stdout.Bytes()
	if i := bytes.IndexByte(out, '\n'); i >= 0 {
		first = string(out[:i])
		out = out[i+1:]
	} else {
		first = string(out)
		out = nil
	}
	t := bytes.TrimSuffix(c.tail, []byte("\n"))
	if i := bytes.LastIndexByte(t, '\n'); i >= 0 {
		last = string(t[i+1:])
	} else {
		last = string(t)
	}
	// The supervisor starts its closing line with a newline of its own, so
	// it is a line even after output that does not end in one.
	if suffix := "\n" + last + "\n"; len(last) > 0 && bytes.HasSuffix(out, []byte(suffix)) {
		out = out[:len(out)-len(suffix)]
	}
	return bytes.Clone(out), first, last
}
