package tlog

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/redact"
)

// Tier selects one of the three log tiers.
type Tier int

// The tiers.
const (
	Tier1 Tier = 1 // audit: security events, hash-chained, never deleted
	Tier2 Tier = 2 // operations
	Tier3 Tier = 3 // debug and trace
)

// DefaultMaxSize is the size at which a log file rotates: 10 MB, size-based
// and not time-based.
const DefaultMaxSize = 10 << 20

// FileMode is the mode of log files; the tier directories restrict access
// further (tier1 and tier2 are 0750).
const FileMode fs.FileMode = 0o640

// GenesisPrev is the "prev" of the first tier-1 line: 64 zeros.
const GenesisPrev = "0000000000000000000000000000000000000000000000000000000000000000"

// Prefix returns the file name prefix of a tier: audit, ops or debug. The
// current file is <prefix>.log; rotated files are <prefix>.NNNNNN.log
// (optionally gzip-compressed later as <prefix>.NNNNNN.log.gz).
func (t Tier) Prefix() string {
	switch t {
	case Tier1:
		return "audit"
	case Tier2:
		return "ops"
	case Tier3:
		return "debug"
	}
	return fmt.Sprintf("tier%d", int(t))
}

// Options tune a tier's handler. The zero value is the spec default.
type Options struct {
	// MaxSize is the rotation size in bytes; 0 means DefaultMaxSize.
	MaxSize int64
	// Level is the minimum level; nil means Info for tiers 1 and 2 and
	// Debug for tier 3.
	Level slog.Leveler
	// NoSync skips the fsync after each tier-1 line (tests, benchmarks).
	// Tier 1 is synced by default so an acknowledged security event
	// survives a crash; tiers 2 and 3 are never synced per line.
	NoSync bool
}

// Handler is a slog.Handler writing JSON lines into one tier's directory,
// with size-based rotation. Tier-1 handlers hash-chain their lines: each
// line starts with "seq" (1, 2, …) and "prev" (hex SHA-256 of the previous
// line's bytes, without its newline), across rotations and restarts. Each
// line also carries the context's correlation ID when there is one.
//
// One process owns a tier-1 directory at a time (an exclusive flock on
// audit.lock); a second Open of the same directory fails.
type Handler struct {
	s     *sink
	inner slog.Handler
	level slog.Leveler
}

// errLocked marks a lock another process holds.
var errLocked = errors.New("held by another process")

// sink owns the file; every Handler derived by WithAttrs/WithGroup shares it.
type sink struct {
	mu      sync.Mutex
	dir     string
	tier    Tier
	prefix  string
	maxSize int64
	sync    bool
	f       *os.File
	lock    *os.File
	anchor  *os.File // tier 1: audit.head
	size    int64
	index   int    // highest rotated index present
	seq     uint64 // tier 1: seq of the last line written
	prev    string // tier 1: hash of the last line written
	cid     string // correlation ID of the record being written (under mu)
	closed  bool
	line    []byte
	tailRep Report // tier 1: VerifyTail at open, before any write
	tailErr error
}

// Open opens (creating if needed) the current log file of tier in dir. For
// tier 1 it reads the last line already written (in the current file or the
// newest rotated one) so the chain continues across restarts.
func Open(dir string, tier Tier, opts Options) (*Handler, error) {
	if tier < Tier1 || tier > Tier3 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "tlog.Open", "tier %d does not exist; use 1, 2 or 3", int(tier))
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
		if tier == Tier3 {
			level = slog.LevelDebug
		}
	}
	s := &sink{dir: dir, tier: tier, prefix: tier.Prefix(), maxSize: opts.MaxSize, sync: tier == Tier1 && !opts.NoSync}
	if err := s.open(); err != nil {
		return nil, err
	}
	inner := slog.NewJSONHandler(s, &slog.HandlerOptions{
		Level: slog.LevelDebug - 8, // our Enabled filters; the inner handler formats everything it is given
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
				a.Value = slog.TimeValue(a.Value.Time().UTC())
			}
			// No tier ever holds a URL's credentials.
			return redact.ReplaceAttr(groups, a)
		},
	})
	return &Handler{s: s, inner: inner, level: level}, nil
}

// Enabled reports whether level is at or above the handler's level.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Handle writes one JSON line.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if h.s.closed {
		return talos.Errorf(talos.CodeConfigInvalid, "tlog.Handle", "%s log in %s is closed", h.s.prefix, h.s.dir)
	}
	h.s.cid = CorrelationID(ctx)
	return h.inner.Handle(ctx, r)
}

// WithAttrs returns a handler adding attrs to every record; it shares the file.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{s: h.s, inner: h.inner.WithAttrs(attrs), level: h.level}
}

// WithGroup returns a handler nesting later attributes under name.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{s: h.s, inner: h.inner.WithGroup(name), level: h.level}
}

// TailAtOpen returns what VerifyTail found in a tier-1 directory when the
// handler opened it, before it wrote anything: the report, and a T402
// error when the newest lines or the anchor show tampering. Other tiers
// return an empty report and nil.
func (h *Handler) TailAtOpen() (Report, error) { return h.s.tailRep, h.s.tailErr }

// Close syncs and closes the file (and releases the tier-1 lock). Later
// records return an error.
func (h *Handler) Close() error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if h.s.closed {
		return nil
	}
	h.s.closed = true
	err := h.s.f.Sync()
	err = errors.Join(err, h.s.f.Close())
	if h.s.anchor != nil {
		err = errors.Join(err, h.s.anchor.Sync(), h.s.anchor.Close())
	}
	if h.s.lock != nil {
		err = errors.Join(err, h.s.lock.Close())
	}
	return err
}

// Dir returns the directory the handler writes to.
func (h *Handler) Dir() string { return h.s.dir }

// Head returns the seq and hash of the last tier-1 line written (0 and
// GenesisPrev before the first line). For tiers 2 and 3 it returns 0, "".
func (h *Handler) Head() (uint64, string) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return h.s.seq, h.s.prev
}

func (s *sink) current() string { return filepath.Join(s.dir, s.prefix+".log") }

func (s *sink) open() error {
	const op = "tlog.Open"
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("cannot create log directory %s", s.dir), err)
	}
	if s.tier == Tier1 {
		lf, err := lockFile(filepath.Join(s.dir, s.prefix+".lock"))
		if errors.Is(err, errLocked) {
			return talos.E(talos.CodeInUse, op, fmt.Sprintf("the tier-1 log in %s is already open by another process (only one writer keeps the hash chain intact); stop the other `talos run` on this home first", s.dir), err)
		}
		if err != nil {
			return talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("cannot open the lock file of the tier-1 log in %s", s.dir), err)
		}
		s.lock = lf
	}
	files, err := listFiles(s.dir, s.prefix)
	if err != nil {
		s.closeLock()
		return talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("cannot list %s", s.dir), err)
	}
	for _, f := range files {
		if f.index > s.index {
			s.index = f.index
		}
	}
	f, err := os.OpenFile(s.current(), os.O_RDWR|os.O_CREATE|os.O_APPEND, FileMode)
	if err != nil {
		s.closeLock()
		return talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("cannot open %s", s.current()), err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		s.closeLock()
		return talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("cannot stat %s", s.current()), err)
	}
	s.f, s.size = f, st.Size()
	if s.tier != Tier1 {
		return nil
	}
	s.prev = GenesisPrev
	// Check the newest lines before writing anything: a later line (or the
	// anchor rewrite) must not be the first to see a tampered tail.
	s.tailRep, s.tailErr = VerifyTail(s.dir)
	if err := s.resumeChain(files); err != nil {
		f.Close()
		s.closeLock()
		return talos.E(talos.CodeBadSignature, op, fmt.Sprintf("cannot resume the tier-1 hash chain in %s", s.dir), err)
	}
	// The anchor wins when it is ahead of (or differs from) the last line:
	// lines were cut from the end or the last line was edited. Continuing
	// from the anchor leaves that visible to Verify instead of papering
	// over it with a fresh, consistent-looking chain.
	a, ok, err := readAnchor(s.dir)
	if err != nil {
		f.Close()
		s.closeLock()
		return talos.E(talos.CodeBadSignature, op, fmt.Sprintf("cannot resume the tier-1 hash chain in %s", s.dir), err)
	}
	if ok && (a.Seq > s.seq || a.Seq == s.seq && a.Hash != s.prev) {
		s.seq, s.prev = a.Seq, a.Hash
	}
	if s.anchor, err = openAnchor(s.dir); err != nil {
		f.Close()
		s.closeLock()
		return talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("cannot open %s in %s", HeadFileName, s.dir), err)
	}
	if s.seq > 0 {
		if _, err := s.anchor.WriteAt(encodeAnchor(s.seq, s.prev), 0); err != nil {
			s.anchor.Close()
			f.Close()
			s.closeLock()
			return talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("cannot write %s in %s", HeadFileName, s.dir), err)
		}
	}
	return nil
}

func (s *sink) closeLock() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

// resumeChain finds the last line written, in the current file or else in
// the newest rotated file, and continues from it. A file ending without a
// newline (a crash mid-write) is terminated first; the fragment stays, and
// Verify reports it.
func (s *sink) resumeChain(files []logFile) error {
	if s.size > 0 {
		last, seq, err := lastLine(s.f, s.size)
		if err != nil {
			return err
		}
		if len(last) > 0 && !bytes.HasSuffix(last, []byte("\n")) {
			if _, err := s.f.Write([]byte("\n")); err != nil {
				return err
			}
			s.size++
		}
		s.seq, s.prev = seq, hashLine(bytes.TrimSuffix(last, []byte("\n")))
		return nil
	}
	// Current file empty: look at the newest rotated file.
	for i := len(files) - 1; i >= 0; i-- {
		if files[i].index == 0 {
			continue
		}
		data, err := readAll(filepath.Join(s.dir, files[i].name))
		if err != nil {
			return err
		}
		if len(data) == 0 {
			continue
		}
		last, seq, err := lastLine(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return err
		}
		s.seq, s.prev = seq, hashLine(bytes.TrimSuffix(last, []byte("\n")))
		return nil
	}
	return nil
}

// lastLine returns the last line of r (size bytes, with its newline if any)
// and the seq of the last line that parses (seq of the fragment's
// predecessor when the last line is damaged).
func lastLine(r io.ReaderAt, size int64) ([]byte, uint64, error) {
	data := make([]byte, size)
	if _, err := r.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if n := len(lines); n > 0 && len(lines[n-1]) == 0 {
		lines = lines[:n-1]
	}
	if len(lines) == 0 {
		return nil, 0, nil
	}
	last := lines[len(lines)-1]
	for i := len(lines) - 1; i >= 0; i-- {
		if h, ok := parseHead(bytes.TrimSuffix(lines[i], []byte("\n"))); ok {
			return last, h.Seq + uint64(len(lines)-1-i), nil
		}
	}
	return last, uint64(len(lines)), nil
}

// Write receives exactly one formatted JSON record from the inner handler
// (slog writes a record in a single call) and appends it, with seq/prev and
// the correlation ID spliced in at the front of the object.
func (s *sink) Write(p []byte) (int, error) {
	if len(p) < 2 || p[0] != '{' {
		return 0, fmt.Errorf("tlog: unexpected record %q", p)
	}
	line := s.line[:0]
	line = append(line, '{')
	if s.tier == Tier1 {
		line = append(line, `"seq":`...)
		line = strconv.AppendUint(line, s.seq+1, 10)
		line = append(line, `,"prev":"`...)
		line = append(line, s.prev...)
		line = append(line, `",`...)
	}
	if s.cid != "" {
		line = append(line, `"`+CorrelationKey+`":"`...)
		line = append(line, s.cid...) // validated hex, no escaping needed
		line = append(line, `",`...)
	}
	line = append(line, p[1:]...)
	if line[len(line)-1] != '\n' {
		line = append(line, '\n')
	}
	s.line = line
	if s.size > 0 && s.size+int64(len(line)) > s.maxSize {
		if err := s.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := s.f.Write(line)
	s.size += int64(n)
	if err != nil {
		return 0, err
	}
	if s.sync {
		if err := s.f.Sync(); err != nil {
			return 0, err
		}
	}
	if s.tier == Tier1 {
		s.seq++
		s.prev = hashLine(line[:len(line)-1])
		// After the line is durable, so the anchor never runs ahead of it
		// (unless NoSync).
		if _, err := s.anchor.WriteAt(encodeAnchor(s.seq, s.prev), 0); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// rotate renames the current file to <prefix>.<index+1>.log and starts a
// new one. The chain state stays in memory, so the first line of the new
// file points at the last line of the rotated one.
func (s *sink) rotate() error {
	if err := s.f.Sync(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return err
	}
	s.index++
	rotated := filepath.Join(s.dir, fmt.Sprintf("%s.%06d.log", s.prefix, s.index))
	if err := os.Rename(s.current(), rotated); err != nil {
		return err
	}
	f, err := os.OpenFile(s.current(), os.O_RDWR|os.O_CREATE|os.O_APPEND|os.O_EXCL, FileMode)
	if err != nil {
		return err
	}
	s.f, s.size = f, 0
	return nil
}

func hashLine(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// head is the chain part of a tier-1 line.
type head struct {
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"`
}

func parseHead(line []byte) (head, bool) {
	var h struct {
		Seq  *uint64 `json:"seq"`
		Prev *string `json:"prev"`
	}
	if err := json.Unmarshal(line, &h); err != nil || h.Seq == nil || h.Prev == nil || len(*h.Prev) != 64 {
		return head{}, false
	}
	return head{Seq: *h.Seq, Prev: *h.Prev}, true
}

type logFile struct {
	name  string
	index int // 0 = the current file
}

var rotatedRE = regexp.MustCompile(`^([a-z0-9]+)\.([0-9]{6,})\.log(\.gz)?$`)

// listFiles returns the tier's files in chain order: rotated by index, then
// the current file (index 0 sorts last).
func listFiles(dir, prefix string) ([]logFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []logFile
	for _, e := range ents {
		name := e.Name()
		if name == prefix+".log" {
			out = append(out, logFile{name: name})
			continue
		}
		m := rotatedRE.FindStringSubmatch(name)
		if m == nil || m[1] != prefix {
			continue
		}
		idx, err := strconv.Atoi(m[2])
		if err != nil || idx == 0 {
			continue
		}
		out = append(out, logFile{name: name, index: idx})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].index, out[j].index
		if a == 0 {
			return false
		}
		if b == 0 {
			return true
		}
		return a < b
	})
	return out, nil
}

// readAll reads a log file, transparently decompressing .gz.
func readAll(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil || filepath.Ext(path) != ".gz" {
		return data, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}
