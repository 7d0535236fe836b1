package gateway

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/mcphost/internal/filelock"
)

// DefaultMaxDecisions is how many decisions a DecisionLog keeps when its
// limit is 0; older ones are dropped first.
const DefaultMaxDecisions = 100_000

// Decision is one authorization decision.
type Decision struct {
	// Time is when it was made.
	Time time.Time `json:"time"`
	// Subject is the peer that asked; TokenID the token it used (empty when
	// the token did not parse).
	Subject PeerID `json:"subject"`
	TokenID string `json:"token_id"`
	// Action is what it asked for.
	Action string `json:"action"`
	// Allowed is the verdict; Code and Reason say why it was refused.
	Allowed bool       `json:"allowed"`
	Code    talos.Code `json:"code,omitempty"`
	Reason  string     `json:"reason,omitempty"`
}

// DecisionLog keeps the latest decisions for export (between max/2 and max
// of them once full). It is safe for
// concurrent use.
type DecisionLog struct {
	mu   sync.Mutex
	max  int
	recs []Decision
	sink io.Writer
	err  error
}

// NewDecisionLog keeps at most max decisions (0 means DefaultMaxDecisions).
func NewDecisionLog(max int) *DecisionLog {
	if max <= 0 {
		max = DefaultMaxDecisions
	}
	return &DecisionLog{max: max}
}

// Record adds d.
func (l *DecisionLog) Record(d Decision) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recs) >= l.max { // drop the older half at once: amortised O(1) per record
		n := copy(l.recs, l.recs[len(l.recs)-l.max/2:])
		l.recs = l.recs[:n]
	}
	l.recs = append(l.recs, d)
	if l.sink != nil && l.err == nil {
		b, err := json.Marshal(d)
		if err == nil {
			_, err = l.sink.Write(append(b, '\n'))
		}
		l.err = err
	}
}

// Tee makes every later Record also append the decision to w as one JSON
// line (ReadDecisions reads them back), so the log can outlive the process.
// The first write error stops the copying and is kept for Err.
func (l *DecisionLog) Tee(w io.Writer) {
	l.mu.Lock()
	l.sink, l.err = w, nil
	l.mu.Unlock()
}

// Err returns the first error writing to the Tee writer, if any.
func (l *DecisionLog) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// ReadDecisions reads the JSON lines that Tee wrote into a DecisionLog that
// keeps at most max of them (0 means DefaultMaxDecisions). A torn line (a
// JSON object cut short by a crash while writing it, wherever it stands:
// writing goes on after a restart) is skipped; any other line that does
// not parse is an error naming its number.
func ReadDecisions(r io.Reader, max int) (*DecisionLog, error) {
	l := NewDecisionLog(max)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var bad []string
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var d Decision
		if err := json.Unmarshal(line, &d); err != nil {
			if !torn(line, err) {
				bad = append(bad, strconv.Itoa(n))
			}
			continue
		}
		l.Record(d)
	}
	if err := sc.Err(); err != nil {
		return l, talos.E(talos.CodeInputInvalid, "gateway.ReadDecisions", "reading the decisions failed", err)
	}
	if len(bad) > 0 {
		return l, talos.Errorf(talos.CodeInputInvalid, "gateway.ReadDecisions", "line(s) %s are not decisions (JSON objects as Tee writes them)", strings.Join(bad, ", "))
	}
	return l, nil
}

// DefaultMaxDecisionFileSize is the size at which a DecisionFile starts a
// new file: 32 MiB, about 130,000 decisions of the usual 250 bytes, so the
// current and the previous file together usually hold more than the
// DefaultMaxDecisions an export keeps.
const DefaultMaxDecisionFileSize = 32 << 20

// DecisionFile is a JSON-lines file of decisions for Tee, bounded in size:
// a write that would take it past its maximum first renames it to
// path+".1" (replacing the previous one) and starts a new file, so the
// decisions on disk stay within about twice the maximum. Processes sharing
// the file (several `talos mcp serve` on one home) rotate it under a lock
// on path+".lock", and one that finds the file already rotated by another
// follows it to the new one. ReadDecisionFiles reads both files. A
// DecisionFile is safe for concurrent use.
type DecisionFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	at   os.FileInfo // f's identity when opened, to notice a rotation elsewhere
	size int64       // bytes this process wrote to f, plus f's size when opened
}

// OpenDecisionFile opens the file at path for Tee to append decisions to
// (creating it with mode 0600), rotating it at maxSize bytes (0 means
// DefaultMaxDecisionFileSize). When the file does not end with a line
// break (a crash cut its last line short), it writes one first, so the
// torn line stays a line of its own that ReadDecisions skips, instead of
// gluing onto the next decision.
func OpenDecisionFile(path string, maxSize int64) (*DecisionFile, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxDecisionFileSize
	}
	d := &DecisionFile{path: path, max: maxSize}
	if err := d.open(); err != nil {
		return nil, err
	}
	return d, nil
}

// open opens d.path for appending and ends a torn last line.
func (d *DecisionFile) open() error {
	f, err := os.OpenFile(d.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	size := int64(0)
	if err == nil && st.Size() > 0 {
		size = st.Size()
		last := make([]byte, 1)
		if _, err = f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			_, err = f.Write([]byte{'\n'})
			size++
		}
	}
	if err != nil {
		f.Close()
		return err
	}
	d.f, d.at, d.size = f, st, size
	return nil
}

// moved reports whether the file at d.path is no longer d.f: another
// process sharing it rotated it (perhaps twice, so that d.f has no name
// left and what is written to it would be lost).
func (d *DecisionFile) moved() bool {
	at, err := os.Stat(d.path)
	return err != nil || !os.SameFile(d.at, at)
}

// Write appends p (one or more whole lines) to the file at the path: when
// another process rotated it since, Write first follows to the new file;
// when p would take the file past the maximum, it first starts a new one. A rotation that
// fails leaves the decisions in the current file (the next one past the
// maximum tries again); a file that could not be reopened is opened again
// by the next Write.
func (d *DecisionFile) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		if d.path == "" {
			return 0, os.ErrClosed
		}
		if err := d.open(); err != nil {
			return 0, err
		}
	}
	if d.moved() {
		// Follow the other process to the new file; if it cannot be
		// opened, the decision still goes to the old one.
		old := d.f
		if err := d.open(); err == nil {
			old.Close()
		}
	}
	if d.size > 0 && d.size+int64(len(p)) > d.max {
		d.rotate()
	}
	n, err := d.f.Write(p)
	d.size += int64(n)
	return n, err
}

// rotate renames the file to path+".1" and opens a new one, under the
// lock that processes sharing the file take; when another process already
// rotated it (the open file is no longer the one at path), it only opens
// the new file. On failure the open file is kept and d.size restarts, so
// the next attempt comes after another maximum's worth of decisions.
func (d *DecisionFile) rotate() {
	unlock, err := filelock.Lock(d.path + ".lock")
	if err != nil {
		d.size = 0
		return
	}
	defer unlock()
	cur, err := d.f.Stat()
	if err != nil {
		d.size = 0
		return
	}
	if at, err := os.Stat(d.path); err == nil && os.SameFile(cur, at) {
		if err := os.Rename(d.path, d.path+".1"); err != nil {
			d.size = 0
			return
		}
	}
	old := d.f
	if err := d.open(); err != nil {
		d.size = 0 // keep appending to the renamed file rather than lose decisions
		return
	}
	old.Close()
}

// Close closes the current file; later writes fail.
func (d *DecisionFile) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.path = ""
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// ReadDecisionFiles reads the decisions a DecisionFile at path wrote, the
// previous file (path+".1") first, into a DecisionLog that keeps at most
// max of them (0 means DefaultMaxDecisions). Missing files hold no
// decisions; lines are read as ReadDecisions reads them, and an error
// names the file. The current file is opened first, so a rotation while
// reading cannot hide it (the previous file is then skipped when it is
// the one just opened).
func ReadDecisionFiles(path string, max int) (*DecisionLog, error) {
	open := func(p string) (*os.File, error) {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return f, err
	}
	cur, err := open(path)
	if err != nil {
		return nil, err
	}
	if cur != nil {
		defer cur.Close()
	}
	prev, err := open(path + ".1")
	if err != nil {
		return nil, err
	}
	if prev != nil {
		defer prev.Close()
		if cur != nil {
			a, aerr := cur.Stat()
			b, berr := prev.Stat()
			if aerr == nil && berr == nil && os.SameFile(a, b) {
				prev = nil
			}
		}
	}
	l := NewDecisionLog(max)
	for _, f := range []*os.File{prev, cur} {
		if f == nil {
			continue
		}
		one, err := ReadDecisions(f, max)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		for _, d := range one.Decisions() {
			l.Record(d)
		}
	}
	return l, nil
}

// torn reports whether line is a JSON object cut short: it starts one and
// the parser ran out of input at its end.
func torn(line []byte, err error) bool {
	var se *json.SyntaxError
	return line[0] == '{' && errors.As(err, &se) && se.Offset == int64(len(line))
}

// Decisions returns a copy of the kept decisions, oldest first.
func (l *DecisionLog) Decisions() []Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Decision(nil), l.recs...)
}

// WriteJSON writes the decisions as one JSON array.
func (l *DecisionLog) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(l.Decisions())
}

// WriteCSV writes the decisions as CSV with a header row. A field that a
// spreadsheet would run as a formula (starting with = + - @ or a tab) is
// prefixed with a quote.
func (l *DecisionLog) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time", "subject", "token_id", "action", "allowed", "code", "reason"})
	for _, d := range l.Decisions() {
		_ = cw.Write([]string{
			d.Time.UTC().Format(time.RFC3339Nano), cell(string(d.Subject)), cell(d.TokenID), cell(d.Action),
			strconv.FormatBool(d.Allowed), cell(string(d.Code)), cell(d.Reason),
		})
	}
	cw.Flush()
	return cw.Error()
}

func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
