package mcphost

import (
	"io"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"
)

// The shutdown ladder of a stdio server (the MCP stdio transport's own
// rule): close its stdin, wait StdinGrace, send SIGTERM, wait TermGrace,
// then SIGKILL; whatever the server left in its process group is killed
// last.
const (
	// StdinGrace is how long a server may take to exit after its stdin
	// closed.
	StdinGrace = 2 * time.Second
	// TermGrace is how long it may take after SIGTERM.
	TermGrace = 3 * time.Second
)

// MaxMessageBytes is the longest line (one JSON-RPC message) a stdio server
// may write. A longer one ends the connection (the server is restarted at
// its next use), so a hostile server cannot make the host buffer gigabytes.
const MaxMessageBytes = 64 << 20

// proc is a running stdio server.
type proc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stdout  *lineLimit
	exited  chan struct{}
	waitErr error
}

// startProc runs path with args and env in its own process group, its
// stderr copied to stderrW line by line.
func startProc(path string, args, env []string, stderrW io.Writer) (*proc, error) {
	cmd := exec.Command(path, args...) // no shell
	cmd.Env = env                      // the allowlist only, never os.Environ()
	ownGroup(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin, stdout: &lineLimit{r: stdout, max: MaxMessageBytes}, exited: make(chan struct{})}
	// stderr is drained always, so the server never blocks on a full pipe.
	go func() { _, _ = io.Copy(stderrW, stderr) }()
	// Wait returns when the server exits, even if children it left behind
	// still hold its pipes (it closes our ends; the last lines may be lost).
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop runs the shutdown ladder and returns once the server exited.
func (p *proc) stop() {
	_ = p.stdin.Close()
	if p.waitFor(StdinGrace) {
		killGroup(p.cmd.Process.Pid)
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if p.waitFor(TermGrace) {
		killGroup(p.cmd.Process.Pid)
		return
	}
	killGroup(p.cmd.Process.Pid) // SIGKILL to the server and its group
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// waitFor reports whether the server exited within d.
func (p *proc) waitFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// lineLimit ends the stream (io.EOF, so the transport closes quietly) at
// the first line longer than max; exceeded reports that it did.
type lineLimit struct {
	r        io.Reader
	max      int
	run      int
	exceeded atomic.Bool
}

func (l *lineLimit) Read(p []byte) (int, error) {
	if l.exceeded.Load() {
		return 0, io.EOF
	}
	n, err := l.r.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			l.run = 0
			continue
		}
		l.run++
		if l.run > l.max {
			l.exceeded.Store(true)
			return 0, io.EOF
		}
	}
	return n, err
}
