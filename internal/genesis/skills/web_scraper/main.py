# web_scraper: turns the page Talos fetched (read-only at /workspace/page)
# into readable text on stdout. The skill itself has no network: Talos
# fetched the page from an operator-approved host.
#
# Usage: main.py html|text
import re, sys

MAX_IN = 2 * 1024 * 1024
MAX_OUT = 256 * 1024

ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'", "nbsp": " ", "copy": "\u00a9",
            "reg": "\u00ae", "mdash": "\u2014", "ndash": "\u2013", "hellip": "\u2026", "laquo": "\u00ab", "raquo": "\u00bb"}


def entity(m):
    e = m.group(1)
    try:
        if e.startswith("#x") or e.startswith("#X"):
            return chr(int(e[2:], 16))
        if e.startswith("#"):
            return chr(int(e[1:]))
    except (ValueError, OverflowError):
        return " "
    return ENTITIES.get(e.lower(), m.group(0))


def to_text(src):
    src = re.sub(r"(?is)<(script|style|noscript|template|svg)\b[^>]*>.*?</\1\s*>", " ", src)
    src = re.sub(r"(?s)<!--.*?-->", " ", src)
    src = re.sub(r"(?i)<(br|hr|/p|/div|/h[1-6]|/li|/tr|/title|/section|/article|/header|/footer)\b[^>]*>", "\n", src)
    src = re.sub(r"(?s)<[^>]*>", " ", src)
    src = re.sub(r"&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]{2,8});", entity, src)
    lines = []
    for line in src.split("\n"):
        line = " ".join(line.split())
        if line:
            lines.append(line)
    return "\n".join(lines)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "html"
    with open("/workspace/page", "rb") as f:
        data = f.read(MAX_IN)
    src = data.decode("utf-8", "replace")
    text = to_text(src) if mode == "html" else "\n".join(" ".join(l.split()) for l in src.split("\n") if l.strip())
    sys.stdout.write(text[:MAX_OUT] + "\n")


main()
