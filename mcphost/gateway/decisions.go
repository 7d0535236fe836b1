package gateway

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	talos "github.com/talos-ironclad/talos"
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

// OpenDecisionFile opens the file at path for Tee to append decisions to
// (creating it with mode 0600). When the file does not end with a line
// break (a crash cut its last line short), it writes one first, so the torn
// line stays a line of its own that ReadDecisions skips, instead of gluing
// onto the next decision.
func OpenDecisionFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err = f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			_, err = f.Write([]byte{'\n'})
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
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
