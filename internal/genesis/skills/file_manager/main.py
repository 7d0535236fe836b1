# file_manager: list, read, write and move files inside /workspace, the one
# folder the sandbox mounts for it. Paths are relative to the workspace;
# absolute paths, ".." and symbolic links anywhere on the way are refused.
#
# Usage: main.py OP PATH64 [ARG64]   (arguments base64-encoded UTF-8)
#   list PATH          one "entry NAME64 TYPE SIZE" line per entry (TYPE: f, d, l, o)
#   read PATH          "data CONTENT64" and "truncated 0|1"
#   write PATH DATA    creates missing folders, replaces a regular file
#   move PATH TO       never overwrites
# The last line is "ok", or "error MESSAGE64" for a refused request.
import base64, errno, os, stat, sys

ROOT = "/workspace"
MAX_READ = 128 * 1024
MAX_WRITE = 64 * 1024
MAX_ENTRIES = 1000


class Refused(Exception):
    pass


def b64(s):
    if isinstance(s, str):
        s = s.encode("utf-8", "surrogateescape")
    return base64.b64encode(s).decode("ascii")


def say(*parts):
    sys.stdout.write(" ".join(parts) + "\n")


def arg(i):
    try:
        return base64.b64decode(sys.argv[i], validate=True).decode("utf-8")
    except IndexError:
        raise Refused("missing argument %d" % i)
    except Exception:
        raise Refused("argument %d is not base64-encoded UTF-8" % i)


def resolve(rel):
    """Returns the absolute path of rel and its lstat (None if it does not exist)."""
    if "\x00" in rel:
        raise Refused("the path contains a NUL byte")
    if rel.startswith("/") or rel.startswith("\\"):
        raise Refused("absolute path %r refused: give a path relative to the workspace" % rel[:200])
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refused("path %r refused: '..' would leave the workspace" % rel[:200])
    cur = ROOT
    st = os.lstat(ROOT)
    for i, p in enumerate(parts):
        cur = cur + "/" + p
        shown = "/".join(parts[: i + 1])
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            if i == len(parts) - 1:
                return cur, None
            raise Refused("no such folder: %r" % shown[:200])
        if stat.S_ISLNK(st.st_mode):
            raise Refused("path %r refused: %r is a symbolic link" % (rel[:200], shown[:200]))
        if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
            raise Refused("%r is not a folder" % shown[:200])
    return cur, st


def do_list(rel):
    p, st = resolve(rel)
    if st is None or not stat.S_ISDIR(st.st_mode):
        raise Refused("%r is not a folder" % rel[:200])
    names = sorted(os.listdir(p))
    for n in names[:MAX_ENTRIES]:
        s = os.lstat(p + "/" + n)
        t = "d" if stat.S_ISDIR(s.st_mode) else "f" if stat.S_ISREG(s.st_mode) else "l" if stat.S_ISLNK(s.st_mode) else "o"
        say("entry", b64(n), t, str(s.st_size))
    if len(names) > MAX_ENTRIES:
        say("more", str(len(names) - MAX_ENTRIES))


def do_read(rel):
    p, st = resolve(rel)
    if st is None or not stat.S_ISREG(st.st_mode):
        raise Refused("%r is not a file" % rel[:200])
    fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        data = b""
        while len(data) <= MAX_READ:
            chunk = os.read(fd, MAX_READ + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    say("data", b64(data[:MAX_READ]))
    say("truncated", "1" if len(data) > MAX_READ else "0")


def do_write(rel, content):
    data = content.encode("utf-8")
    if len(data) > MAX_WRITE:
        raise Refused("content of %d bytes refused: at most %d bytes per write" % (len(data), MAX_WRITE))
    parts = [x for x in rel.split("/") if x not in ("", ".")]
    if not parts:
        raise Refused("write needs a file path")
    for i in range(1, len(parts)):
        d, st = resolve("/".join(parts[:i]))
        if st is None:
            os.mkdir(d, 0o755)
    p, st = resolve(rel)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise Refused("%r exists and is not a file" % rel[:200])
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)
    say("written", str(len(data)))


def do_move(rel, to):
    src, st = resolve(rel)
    if st is None:
        raise Refused("%r does not exist" % rel[:200])
    if src == ROOT:
        raise Refused("the workspace itself cannot be moved")
    dst, dst_st = resolve(to)
    if dst_st is not None:
        raise Refused("%r exists: move never overwrites" % to[:200])
    if dst == ROOT or (dst + "/").startswith(src + "/"):
        raise Refused("cannot move %r into itself" % rel[:200])
    os.rename(src, dst)


def main():
    try:
        op = sys.argv[1] if len(sys.argv) > 1 else ""
        if op == "list":
            do_list(arg(2))
        elif op == "read":
            do_read(arg(2))
        elif op == "write":
            do_write(arg(2), arg(3))
        elif op == "move":
            do_move(arg(2), arg(3))
        else:
            raise Refused("unknown operation %r: use list, read, write or move" % op[:40])
    except Refused as e:
        say("error", b64(str(e)))
        return
    except OSError as e:
        say("error", b64("%s: %s" % (errno.errorcode.get(e.errno, "error"), e.strerror or e)))
        return
    say("ok")


main()
