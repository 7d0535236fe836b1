package chatapi

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Event is one server-sent event.
type Event struct {
	Name string
	Data []byte
}

// MaxEventBytes bounds one event's line (1 MiB).
const MaxEventBytes = 1 << 20

// scanLines splits at CR, LF or CRLF, the event stream's line ends.
func scanLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, c := range data {
		switch c {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil // a LF may follow
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// ReadEvents decodes a server-sent event stream (the chat API's answer):
// lines end with CR, LF or CRLF; "event:" names an event, "data:" lines are joined with newlines, a blank
// line ends the event, lines starting with ':' are comments. An event
// without a name is "message". A line longer than MaxEventBytes is an error.
func ReadEvents(r io.Reader) ([]Event, error) {
	var out []Event
	err := ScanEvents(r, func(ev Event) error { out = append(out, ev); return nil })
	return out, err
}

// ScanEvents decodes a server-sent event stream like ReadEvents, calling fn
// for each event as it arrives; an error from fn stops the scan.
func ScanEvents(r io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxEventBytes)
	sc.Split(scanLines)
	var name string
	var data [][]byte
	has := false
	flush := func() error {
		if !has {
			return nil
		}
		if name == "" {
			name = "message"
		}
		ev := Event{Name: name, Data: bytes.Join(data, []byte("\n"))}
		name, data, has = "", nil, false
		return fn(ev)
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			name, has = value, true
		case "data":
			data, has = append(data, []byte(value)), true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the event stream: %w", err)
	}
	return flush()
}
