package prune

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/talos-ironclad/talos/rag"
)

// ArchiveVersion is the version of the archive line format.
const ArchiveVersion = 1

// MaxArchiveLine bounds one archive line (a record with a large document
// and embedding); longer lines are rejected on restore.
const MaxArchiveLine = 16 << 20

// Entry is one line of the archive: a pruned record and why it went.
type Entry struct {
	V         int             `json:"v"`
	Run       string          `json:"run"`       // id of the prune run
	PrunedAt  int64           `json:"pruned_at"` // unix ms
	Reason    string          `json:"reason"`    // prune, aggressive, temporary-cleanup
	Score     float64         `json:"score"`
	ID        string          `json:"id"`
	Document  string          `json:"document"`
	Embedding []float32       `json:"embedding"`
	Metadata  ArchiveMetadata `json:"metadata"`
}

// ArchiveMetadata is a record's metadata in the archive. It keeps int64
// and float64 apart in JSON: floats are always written with a '.' or an
// exponent, integers never, so a restore gives back the same types.
type ArchiveMetadata rag.Metadata

// MarshalJSON writes the metadata with typed numbers.
func (m ArchiveMetadata) MarshalJSON() ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		switch v := m[k].(type) {
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("metadata %q is not finite", k)
			}
			s := strconv.FormatFloat(v, 'g', -1, 64)
			if !strings.ContainsAny(s, ".eE") {
				s += ".0"
			}
			b.WriteString(s)
		case int:
			b.WriteString(strconv.Itoa(v))
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		default:
			vb, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			b.Write(vb)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads typed numbers back (int64 without '.', float64 with).
func (m *ArchiveMetadata) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	out := make(ArchiveMetadata, len(raw))
	for k, v := range raw {
		switch x := v.(type) {
		case string, bool:
			out[k] = x
		case json.Number:
			s := x.String()
			if strings.ContainsAny(s, ".eE") {
				f, err := x.Float64()
				if err != nil || math.IsInf(f, 0) {
					return fmt.Errorf("metadata %q: number %s out of range", k, s)
				}
				out[k] = f
			} else {
				n, err := x.Int64()
				if err != nil {
					return fmt.Errorf("metadata %q: integer %s out of range", k, s)
				}
				out[k] = n
			}
		default:
			return fmt.Errorf("metadata %q has unsupported type %T", k, v)
		}
	}
	*m = out
	return nil
}

// appendArchive writes entries as JSON lines at the end of path and fsyncs
// the file (and, when the file is new, its directory) before returning, so
// a record is on disk before it is deleted from the store. A torn last line
// left by a crash mid-append is cut off first (its records were never
// deleted: a batch is deleted only after its append returned), so the new
// lines do not run on from it; it reports how many bytes were cut.
func appendArchive(path string, entries []Entry) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, err
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return 0, err
	}
	cut, err := cutTornTail(f)
	if err != nil {
		f.Close()
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range entries {
		line, err := json.Marshal(&entries[i])
		if err != nil {
			f.Close()
			return cut, fmt.Errorf("encoding record %s: %w", entries[i].ID, err)
		}
		w.Write(line)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return cut, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return cut, err
	}
	if err := f.Close(); err != nil {
		return cut, err
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if d, err := os.Open(filepath.Dir(path)); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return cut, nil
}

// cutTornTail truncates f after its last newline when it does not end with
// one, and returns how many bytes went.
func cutTornTail(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return 0, err
	}
	size := fi.Size()
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		if end == size && chunk[len(chunk)-1] == '\n' {
			return 0, nil
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			keep := start + int64(i) + 1
			return size - keep, f.Truncate(keep)
		}
		end = start
	}
	return size, f.Truncate(0)
}

// ReadArchive parses archive lines from r, calling fn for each entry in
// order. A malformed line stops the read with an error naming its number,
// except a last line that lacks its newline and does not parse: that is an
// append torn by a crash, and it is skipped (its records were never deleted,
// so nothing is lost). Blank lines are skipped.
func ReadArchive(r io.Reader, fn func(Entry) error) error {
	_, err := readArchive(r, fn)
	return err
}

// readArchive is ReadArchive; torn reports a skipped torn last line.
func readArchive(r io.Reader, fn func(Entry) error) (torn bool, err error) {
	br := bufio.NewReaderSize(r, 1<<20)
	for n := 1; ; n++ {
		line, terminated, err := readLine(br)
		if len(bytes.TrimSpace(line)) > 0 {
			e, perr := ParseEntry(line)
			switch {
			case perr != nil && !terminated && err == io.EOF:
				return true, nil
			case perr != nil:
				return false, fmt.Errorf("archive line %d: %w", n, perr)
			}
			if ferr := fn(e); ferr != nil {
				return false, ferr
			}
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("archive line %d: %w", n, err)
		}
	}
}

// readLine reads one line without its line end (\n or \r\n) and says
// whether it was terminated by a newline; at the end of the input it
// returns io.EOF.
func readLine(br *bufio.Reader) ([]byte, bool, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxArchiveLine+2 {
			return nil, false, fmt.Errorf("line longer than %d bytes", MaxArchiveLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == nil {
			line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
			if _, perr := br.Peek(1); perr == io.EOF {
				return line, true, io.EOF
			}
			return line, true, nil
		}
		return line, false, err
	}
}

// ParseEntry parses and validates one archive line.
func ParseEntry(line []byte) (Entry, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, fmt.Errorf("not a valid archive entry: %v", err)
	}
	if e.V != ArchiveVersion {
		return Entry{}, fmt.Errorf("archive entry version %d is not %d", e.V, ArchiveVersion)
	}
	if e.ID == "" {
		return Entry{}, errors.New("archive entry has no id")
	}
	if len(e.Embedding) == 0 {
		return Entry{}, fmt.Errorf("archive entry %s has no embedding", e.ID)
	}
	for _, x := range e.Embedding {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return Entry{}, fmt.Errorf("archive entry %s has a non-finite embedding value", e.ID)
		}
	}
	if e.Metadata == nil {
		e.Metadata = ArchiveMetadata{}
	}
	return e, nil
}

// Record returns the stored record of the entry.
func (e Entry) Record() rag.Record {
	return rag.Record{ID: e.ID, Document: e.Document, Embedding: e.Embedding, Metadata: rag.Metadata(e.Metadata)}
}
