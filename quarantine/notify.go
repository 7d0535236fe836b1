package quarantine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Notice is what a Notifier delivers to the person who approves: the
// record, the code and when it expires.
type Notice struct {
	Key         Key
	Code        string
	ExpiresAt   time.Time
	RequestedBy string
}

// Text is the notice as one line of text.
func (n Notice) Text() string {
	return fmt.Sprintf("Talos: skill %s@%s (content %s) asks to be promoted, requested by %s. To approve it, enter code %s before %s. If you did not expect this, reject it.",
		n.Key.ID, n.Key.Version, n.Key.Hash[:min(12, len(n.Key.Hash))], n.RequestedBy, n.Code, n.ExpiresAt.UTC().Format(time.RFC3339))
}

// Notifier delivers approval codes to a person, out of band: never back to
// the program that asked for the promotion.
type Notifier interface {
	// Notify delivers n, or returns why it could not.
	Notify(ctx context.Context, n Notice) error
	// Name names the channel for logs and the requester: "console",
	// "file /path", "speech /dir".
	Name() string
}

// ConsoleNotifier writes notices to W, the operator's terminal (the
// daemon's standard error, not its logs). It is safe for concurrent use.
type ConsoleNotifier struct {
	W  io.Writer
	mu sync.Mutex
}

// Notify implements Notifier.
func (c *ConsoleNotifier) Notify(ctx context.Context, n Notice) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := fmt.Fprintln(c.W, n.Text())
	return err
}

// Name implements Notifier.
func (c *ConsoleNotifier) Name() string { return "console" }

// FileNotifier writes each notice to the file Path, mode 0600 in a folder
// it creates 0700, replacing the previous notice; only the owner can read
// it.
type FileNotifier struct {
	Path string
}

// Notify implements Notifier. The file is written under a temporary name
// with its final mode and renamed, so a reader never sees half a notice or
// a readable-by-others file.
func (f *FileNotifier) Notify(ctx context.Context, n Notice) error {
	return writePrivate(f.Path, []byte(n.Text()+"\n"))
}

// Name implements Notifier.
func (f *FileNotifier) Name() string { return "file " + f.Path }

func writePrivate(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, tmpPrefix+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// SpeechProgram is the text-to-speech program SpeechNotifier uses.
const SpeechProgram = "espeak-ng"

// SpeechNotifier speaks each notice, with the code digit by digit, into a
// WAV file Dir/<id>-<version>.wav (mode 0600) with espeak-ng, for a person
// to play. Make one with NewSpeechNotifier.
type SpeechNotifier struct {
	Dir     string
	program string
}

// NewSpeechNotifier returns a SpeechNotifier writing into dir, or an error
// when espeak-ng is not installed (then use the other notifiers alone).
func NewSpeechNotifier(dir string) (*SpeechNotifier, error) {
	p, err := exec.LookPath(SpeechProgram)
	if err != nil {
		return nil, fmt.Errorf("%s is not installed (apt-get install espeak-ng); approval codes will not be spoken: %w", SpeechProgram, err)
	}
	return &SpeechNotifier{Dir: dir, program: p}, nil
}

// Notify implements Notifier.
func (s *SpeechNotifier) Notify(ctx context.Context, n Notice) error {
	if s.program == "" {
		return errors.New("SpeechNotifier was not made by NewSpeechNotifier, so it has no program to speak with")
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	out := filepath.Join(s.Dir, n.Key.ID+"-"+n.Key.Version+".wav")
	tmp := filepath.Join(s.Dir, tmpPrefix+n.Key.ID+"-"+n.Key.Version+"-"+randomHex(4)+".wav")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	defer os.Remove(tmp)
	digits := strings.Join(strings.Split(n.Code, ""), " ")
	text := fmt.Sprintf("Talos approval code for skill %s, version %s: %s. Again: %s.", strings.ReplaceAll(n.Key.ID, "_", " "), n.Key.Version, digits, digits)
	cmd := exec.CommandContext(ctx, s.program, "-w", tmp, "--", text)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s failed: %w: %s", SpeechProgram, err, clip(string(msg), 200))
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// Name implements Notifier.
func (s *SpeechNotifier) Name() string { return "speech " + s.Dir }

// MultiNotifier delivers every notice through each of its notifiers. It
// succeeds when at least one of them delivered; when all fail it returns
// all their errors.
type MultiNotifier []Notifier

// Notify implements Notifier.
func (m MultiNotifier) Notify(ctx context.Context, n Notice) error {
	var errs []error
	ok := false
	for _, x := range m {
		if err := x.Notify(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", x.Name(), err))
		} else {
			ok = true
		}
	}
	if ok {
		return nil
	}
	if len(errs) == 0 {
		return errors.New("no notifier configured")
	}
	return errors.Join(errs...)
}

// Name implements Notifier.
func (m MultiNotifier) Name() string {
	var names []string
	for _, x := range m {
		names = append(names, x.Name())
	}
	return strings.Join(names, ", ")
}
