# browser_automation: turns what Talos read from a page in its headless
# Chromium (its own container, driven over DevTools) into a report for the
# model. The skill has no network and no access to the browser; the page is
# read-only at /workspace/page, one field per line:
#   url URL64
#   title TITLE64
#   cut 0|1          (Talos already cut the text at its limit)
#   text TEXT64
# Control characters other than newlines are shown as "?", runs of spaces are
# folded, blank lines dropped, and the report is cut at MAX_OUT bytes.
import base64, sys

MAX_IN = 1024 * 1024
MAX_OUT = 32 * 1024


def field(fields, name):
    try:
        return base64.b64decode(fields.get(name, ""), validate=True).decode("utf-8", "replace")
    except Exception:
        raise SystemExit("browser_automation: malformed field " + name)


def clean(s):
    out = []
    for line in s.split("\n"):
        line = "".join("?" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in line)
        line = " ".join(line.split())
        if line:
            out.append(line)
    return "\n".join(out)


def main():
    with open("/workspace/page", "rb") as fh:
        data = fh.read(MAX_IN).decode("ascii", "replace")
    fields = {}
    for line in data.split("\n"):
        if line:
            name, _, value = line.partition(" ")
            fields[name] = value
    url = clean(field(fields, "url")).replace("\n", " ")
    title = clean(field(fields, "title")).replace("\n", " ")
    text = clean(field(fields, "text"))
    cut = fields.get("cut") == "1"
    head = (title + " - " if title else "") + url + "\n"
    body = text
    room = MAX_OUT - len(head.encode("utf-8"))
    if len(body.encode("utf-8")) > room:
        body = body.encode("utf-8")[:max(room, 0)].decode("utf-8", "ignore")
        cut = True
    sys.stdout.write(head + body + ("\n[page text truncated]" if cut else "") + "\n")


main()
