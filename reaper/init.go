package reaper

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/talos-ironclad/talos"
)

// forwardedSignals are the signals RunInit passes on to the child's process
// group, like tini -g: the ones an operator or runtime sends to stop,
// reload or poke a service.
var forwardedSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// ForwardedSignals returns the signals RunInit forwards to the child's
// process group.
func ForwardedSignals() []os.Signal { return append([]os.Signal(nil), forwardedSignals...) }

// Exit codes RunInit returns when the child could not be started (the
// shell's conventions, which tini follows too).
const (
	ExitNotFound   = 127 // the command does not exist
	ExitCannotExec = 126 // it exists but cannot be executed
)

// InitConfig configures RunInit.
type InitConfig struct {
	// Args is the command and its arguments (required).
	Args []string
	// Env is the child's environment; nil means this process's.
	Env []string
	// Stdin, Stdout and Stderr are the child's; nil means /dev/null for
	// Stdin and discard for the others (the CLI passes its own).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Logger receives operational records (nil discards).
	Logger *slog.Logger
}

// RunInit runs Args as the single child of an init process, the way tini
// does: it starts the child in its own process group, forwards
// ForwardedSignals to that group, reaps every process re-parented to it
// (as PID 1, or as a child subreaper when it is not PID 1), and returns the
// child's exit code — 128 plus the signal number if a signal killed it —
// once the child exits. When ctx is done the group gets SIGTERM.
//
// It owns wait4 for the process while it runs (it creates a Reaper), so no
// other Reaper may be running.
func RunInit(ctx context.Context, cfg InitConfig) (int, error) {
	const op = "reaper.RunInit"
	if len(cfg.Args) == 0 || cfg.Args[0] == "" {
		return ExitNotFound, talos.Errorf(talos.CodeConfigInvalid, op, "no command given: pass the command to run after --, for example `talos reap -- sleep 10`")
	}
	log := loggerOrDiscard(cfg.Logger)

	// Install the handlers before the child exists so no signal is lost (and
	// as PID 1 a signal without a handler would be dropped by the kernel).
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)

	r, err := New(Config{Subreaper: os.Getpid() != 1, Logger: cfg.Logger}, nil)
	if err != nil {
		return ExitCannotExec, err
	}
	defer r.Close()

	c := r.Command(cfg.Args[0], cfg.Args[1:]...)
	c.Cmd.Env = cfg.Env
	c.Cmd.Stdin, c.Cmd.Stdout, c.Cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	c.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		code := ExitCannotExec
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = ExitNotFound
		}
		return code, talos.E(talos.CodeConfigInvalid, op, "cannot start "+cfg.Args[0]+": check the command name and its permissions", err)
	}
	log.DebugContext(ctx, "reaper: init started child", "pid", c.PID(), "cmd", cfg.Args[0])

	ctxDone := ctx.Done()
	for {
		select {
		case s := <-sigs:
			sig, _ := s.(syscall.Signal)
			if err := c.SignalGroup(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
				log.WarnContext(ctx, "reaper: forwarding a signal failed", "signal", sig.String(), "pid", c.PID(), "err", err)
			}
		case <-ctxDone:
			ctxDone = nil
			_ = c.SignalGroup(syscall.SIGTERM)
		case <-c.Done():
			_ = c.Wait()
			e, _ := c.Exit()
			log.DebugContext(ctx, "reaper: init child exited", "pid", e.PID, "status", e.String())
			return e.Code(), nil
		}
	}
}
