# docker_control: turns the answer Talos got from the Docker engine (through
# its docker_control socket proxy, which sees only Talos-labelled
# containers) into a report for the model. The skill has no network and no
# Docker access; the answer is read-only at /workspace/answer.
#
# Usage: main.py list|inspect|start|stop
# The answer holds one line per container:
#   container ID64 NAME64 IMAGE64 STATE64 STATUS64 EXIT STARTED64 FINISHED64 LABELS64
# (LABELS is "key=value" lines). Control characters in values are shown
# as "?".
import base64, sys

MAX_IN = 4 * 1024 * 1024
ACTIONS = ("list", "inspect", "start", "stop")


def text(field):
    try:
        s = base64.b64decode(field, validate=True).decode("utf-8", "replace")
    except Exception:
        raise SystemExit("docker_control: malformed answer")
    return s


def clean(s):
    return "".join("?" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in s)


def parse(line):
    f = line.split(" ")
    if len(f) != 10 or f[0] != "container":
        raise SystemExit("docker_control: malformed answer line")
    try:
        code = int(f[6])
    except ValueError:
        raise SystemExit("docker_control: malformed exit code")
    labels = []
    for kv in text(f[9]).split("\n"):
        if kv:
            labels.append(clean(kv))
    return {"id": clean(text(f[1])), "name": clean(text(f[2])), "image": clean(text(f[3])),
            "state": clean(text(f[4])), "status": clean(text(f[5])), "exit": code,
            "started": clean(text(f[7])), "finished": clean(text(f[8])), "labels": labels}


def main():
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action not in ACTIONS:
        raise SystemExit("docker_control: unknown action")
    with open("/workspace/answer", "rb") as fh:
        data = fh.read(MAX_IN).decode("ascii", "replace")
    cs = [parse(l) for l in data.split("\n") if l.strip()]
    out = []
    if action == "list":
        out.append("%d Talos container%s" % (len(cs), "" if len(cs) == 1 else "s") + (":" if cs else "."))
        for c in cs:
            out.append("%s  %s  %s  %s (%s)" % (c["id"][:12], c["name"] or "-", c["image"], c["state"], c["status"]))
    else:
        if len(cs) != 1:
            raise SystemExit("docker_control: want one container in the answer")
        c = cs[0]
        if action in ("start", "stop"):
            out.append("%s %s: it is %s now." % ("started" if action == "start" else "stopped", c["name"] or c["id"][:12], c["state"]))
        out.append("id: " + c["id"])
        out.append("name: " + c["name"])
        out.append("image: " + c["image"])
        out.append("state: " + c["state"])
        if c["state"] == "exited":
            out.append("exit code: %d" % c["exit"])
        if c["started"] and not c["started"].startswith("0001-"):
            out.append("started at: " + c["started"])
        if c["finished"] and not c["finished"].startswith("0001-"):
            out.append("finished at: " + c["finished"])
        out.append("labels: " + (", ".join(sorted(c["labels"])) or "none"))
    sys.stdout.write("\n".join(out) + "\n")


main()
