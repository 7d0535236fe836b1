# Talos sandbox supervisor. Runs as PID 1 of the skill's container, before any
# skill code: checks the isolation from inside, runs the skill in a child
# process under audit hooks, then reports what it saw on one last line.
# Only modules of python3-minimal are used (no json, no ctypes).
import errno, os, signal, sys, time

OUT = 1


def say(line):
    data = (line + "\n").encode("utf-8", "backslashreplace")
    while data:
        n = os.write(OUT, data)
        data = data[n:]


def isolation_problems():
    bad = []
    try:
        with open("/proc/net/dev") as f:
            names = [l.split(":", 1)[0].strip() for l in f.readlines()[2:] if ":" in l]
        extra = [n for n in names if n != "lo"]
        if extra:
            bad.append("network interfaces besides loopback: " + ",".join(extra))
    except OSError as e:
        bad.append("cannot read /proc/net/dev: %s" % e)
    probe = "/.talos-isolation-probe-" + os.urandom(8).hex()
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        try:
            os.unlink(probe)
        except OSError:
            pass
        bad.append("the root filesystem is writable")
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            bad.append("cannot tell whether the root filesystem is writable: %s" % e)
    if os.getpid() != 1:
        bad.append("not PID 1 of a PID namespace of its own (pid %d)" % os.getpid())
    if os.getuid() == 0 or os.geteuid() == 0:
        bad.append("runs as root")
    st = {}
    try:
        with open("/proc/self/status") as f:
            for l in f:
                k, _, v = l.partition(":")
                st[k] = v.strip()
    except OSError as e:
        bad.append("cannot read /proc/self/status: %s" % e)
    for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        if st.get(k, "x").strip("0") != "":
            bad.append("capabilities left: %s=%s" % (k, st.get(k)))
    if st.get("NoNewPrivs") != "1":
        bad.append("no_new_privs is not set")
    if st.get("Seccomp") != "2":
        bad.append("no seccomp filter (Seccomp=%s)" % st.get("Seccomp"))
    return bad


SCRATCH = ("/tmp/", "/dev/null", "/dev/shm/", "/dev/stdout", "/dev/stderr", "/dev/fd/1", "/dev/fd/2",
           "/proc/self/fd/1", "/proc/self/fd/2")
_W = os.environ.get("TALOS_SANDBOX_WRITABLE", "")
if _W.startswith("/") and _W.endswith("/") and _W != "/":
    SCRATCH = SCRATCH + (_W,)
SENSITIVE = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/root/", "/proc/1/", "/proc/sysrq-trigger",
             "/proc/kcore", "/var/run/docker.sock", "/run/docker.sock", "/run/containerd/", "/sys/kernel/",
             "/dev/mem", "/dev/kmem")
EXEC = ("os.exec", "os.system", "os.posix_spawn", "os.spawn", "subprocess.Popen", "pty.spawn")
NET = ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg")
# With network declared, the sandbox mounts its egress proxy's socket here and
# the skill reaches it through a relay on loopback (HTTP_PROXY points there).
EGRESS = os.environ.get("TALOS_EGRESS_SOCKET", "")
RELAY = ("127.0.0.1", 3128)
DNS = ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr",
       "socket.getnameinfo")


def child(entry, args, w, allow_exec):
    seen = set()

    def note(kind, detail, block):
        key = (kind, detail)
        if key not in seen and len(seen) < 64:
            seen.add(key)
            try:
                os.write(w, (kind + " " + detail[:300].encode("utf-8", "backslashreplace").hex() + "\n").encode())
            except OSError:
                pass
        if block:
            raise PermissionError("talos sandbox: %s is not allowed: %s" % (kind, detail[:200]))

    def hook(event, a):
        if event == "open":
            path, mode, flags = a[0], a[1], a[2]
            if isinstance(path, int):
                return
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            p = os.path.normpath(os.path.join(os.getcwd(), str(path)))
            parts = p.split("/")
            if any(p == s.rstrip("/") or p.startswith(s) for s in SENSITIVE):
                note("sensitive_file", p, True)
            elif len(parts) >= 4 and parts[1] == "proc" and parts[-1] == "mem":
                note("hook_evasion", p, True)  # a process's memory: the way to patch the hooks out
            writing = isinstance(mode, str) and any(c in mode for c in "wax+")
            if isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC):
                writing = True
            if writing and not any(p == s.rstrip("/") or p.startswith(s) for s in SCRATCH):
                note("write_outside", p, True)
        elif event in NET:
            addr = a[1] if len(a) > 1 else ""
            if EGRESS and event == "socket.connect" and addr == RELAY:
                return
            if isinstance(addr, (str, bytes)) and "docker" in str(addr):
                note("docker_socket", str(addr), True)
            note("network", repr(addr), True)
        elif event in DNS:
            if EGRESS and event == "socket.getaddrinfo" and a and a[0] in (RELAY[0], RELAY[0].encode()):
                return
            note("resolve", repr(a[0]) if a else "", True)
        elif event.startswith(EXEC):
            if not allow_exec:
                note("exec", event + " " + repr(a)[:200], True)
        elif event in ("os.kill", "os.killpg"):
            target = a[0] if a else None
            if isinstance(target, int) and (target <= 1 or event == "os.killpg"):
                note("signal_supervisor", "%s(%r)" % (event, tuple(a)), True)
        elif event.startswith("ctypes.") or event == "cpython.remove_audit_hooks":
            note("hook_evasion", event, True)

    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    sys.argv = [entry] + args
    sys.path.insert(0, os.path.dirname(entry))
    code = 0
    try:
        with open(entry, "rb") as f:
            src = f.read()
        compiled = compile(src, entry, "exec")
        sys.addaudithook(hook)
        g = {"__name__": "__main__", "__file__": entry, "__builtins__": __builtins__}
        exec(compiled, g)
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code & 0xFF
        else:
            try:
                sys.stderr.write(str(e.code) + "\n")
            except Exception:
                pass
            code = 1
    except BaseException:
        try:
            sys.excepthook(*sys.exc_info())
        except Exception:
            pass
        code = 1
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except Exception:
            pass
    os._exit(code)


def read_counter(paths, name):
    for p in paths:
        try:
            with open(p) as f:
                for l in f:
                    k, _, v = l.strip().partition(" ")
                    if k == name:
                        return int(v)
        except (OSError, ValueError):
            continue
    return -1


PIDS_EVENTS = ["/sys/fs/cgroup/pids.events", "/sys/fs/cgroup/pids/pids.events"]


class Stop(Exception):
    pass


def relay_listen():
    import socket
    ln = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ln.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ln.bind(RELAY)
    ln.listen(16)
    return ln


def relay(ln, path):
    # One thread relays every connection to the egress socket (threads count
    # against the pids limit, so not one per connection); at most 16 at once.
    import select, socket
    peer, eof = {}, set()

    def close(s):
        for x in (s, peer.get(s)):
            if x is not None and x in peer:
                del peer[x]
                eof.discard(x)
                try:
                    x.close()
                except OSError:
                    pass

    while True:
        try:
            r, _, _ = select.select([ln] + [s for s in peer if s not in eof], [], [])
        except (OSError, ValueError):
            return
        for s in r:
            if s is ln:
                try:
                    c, _ = ln.accept()
                except OSError:
                    continue
                if len(peer) >= 32:
                    c.close()
                    continue
                u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    u.connect(path)
                except OSError:
                    c.close()
                    u.close()
                    continue
                peer[c], peer[u] = u, c
                continue
            if s not in peer:
                continue
            try:
                d = s.recv(65536)
            except OSError:
                d = None
            if d:
                try:
                    peer[s].sendall(d)
                    continue
                except OSError:
                    d = None
            if d is None:
                close(s)
                continue
            eof.add(s)  # half-close: pass it on, keep the other way open
            try:
                peer[s].shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if peer[s] in eof:
                close(s)


def main():
    entry, allow_exec, deadline, args = sys.argv[1], sys.argv[2] == "1", float(sys.argv[3]), sys.argv[4:]
    bad = isolation_problems()
    if bad:
        say("TALOS-ISOLATION-FAIL " + "; ".join(bad))
        os._exit(97)
    say("TALOS-ISOLATION-OK")
    ln = relay_listen() if EGRESS else None
    r, w = os.pipe()
    os.set_blocking(w, False)
    pid = os.fork()
    if pid == 0:
        os.close(r)
        if ln is not None:
            ln.close()
        child(entry, args, w, allow_exec)
    os.close(w)
    if ln is not None:
        import threading
        threading.Thread(target=relay, args=(ln, EGRESS), daemon=True).start()
    status = 0
    stopped = ""
    end_at = time.monotonic() + deadline
    done = [False]

    # Every 0.1 s: past the deadline, or a fork refused at the pids limit (a
    # fork bomb), ends the run at once instead of letting it spin.
    def on_tick(signum, frame):
        if done[0]:
            return
        if time.monotonic() >= end_at:
            raise Stop("deadline")
        if read_counter(PIDS_EVENTS, "max") > 0:
            raise Stop("pids")

    try:
        signal.signal(signal.SIGALRM, on_tick)
        signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)
        while True:
            try:
                p, st = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if p == pid:
                done[0] = True
                status = st
                break
    except Stop as e:
        stopped = str(e)
        status = 9  # as if killed by SIGKILL
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    timed_out = 1 if stopped == "deadline" else 0
    while True:  # reap what already ended
        try:
            p, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if p == 0:
            break
    outlived = 0
    try:
        os.kill(-1, 0)
        outlived = 0 if stopped else 1
    except OSError:
        pass
    if outlived or stopped:
        try:
            os.kill(-1, 9)
        except OSError:
            pass
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break
    ev = []
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        ev.append(chunk)
    lines = b"".join(ev).decode("ascii", "replace").split("\n")
    evidence = [l.replace(" ", ":", 1) for l in lines if " " in l][:64]
    pids_max = read_counter(PIDS_EVENTS, "max")
    oom = read_counter(["/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"], "oom_kill")
    scratch_full = 0
    try:
        sv = os.statvfs("/tmp")
        scratch_full = 1 if sv.f_bavail == 0 else 0
    except OSError:
        pass
    code = os.waitstatus_to_exitcode(status)
    sig = 0
    if code < 0:
        sig, code = -code, 128 - code
    say("\nTALOS-END exit=%d signal=%d pids_max=%d oom_kill=%d outlived=%d scratch_full=%d timed_out=%d evidence=%s"
        % (code, sig, pids_max, oom, outlived, scratch_full, timed_out, ",".join(evidence)))
    os._exit(code)


main()
