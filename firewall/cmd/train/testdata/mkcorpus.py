#!/usr/bin/env python3
"""Builds benign-docs.jsonl: benign technical prose (Go doc comments and
Markdown files of the Go distribution, BSD-licensed, see GOROOT/LICENSE) used
as benign "tool output" for training and evaluating the firewall classifier.

Usage: python3 mkcorpus.py $(go env GOROOT) > benign-docs.jsonl
Deterministic for a given Go distribution (this file was made from go1.26.8).
"""
import json, os, re, sys, hashlib

root = sys.argv[1]
docs = []

def add(doc_id, text):
    text = text.strip()
    if len(text) < 200:
        return
    # cut long documents into paragraphs groups of at most ~1500 chars
    paras = re.split(r"\n\s*\n", text)
    buf, part = "", 0
    for p in paras:
        if len(buf) + len(p) > 1500 and buf:
            docs.append({"id": f"{doc_id}#{part}", "text": buf.strip()})
            part += 1
            buf = ""
        buf += p + "\n\n"
    if len(buf.strip()) >= 200:
        docs.append({"id": f"{doc_id}#{part}", "text": buf.strip()})

for dirpath, dirnames, filenames in os.walk(os.path.join(root, "src")):
    dirnames.sort()
    if "testdata" in dirpath or "/vendor/" in dirpath:
        continue
    for fn in sorted(filenames):
        path = os.path.join(dirpath, fn)
        rel = os.path.relpath(path, root)
        if fn.endswith(".go") and not fn.endswith("_test.go"):
            try:
                lines = open(path, encoding="utf-8").read().split("\n")
            except UnicodeDecodeError:
                continue
            block, start = [], 0
            for i, l in enumerate(lines + [""]):
                s = l.strip()
                if s.startswith("//") and not s.startswith("//go:") and not s.startswith("// Copyright") and "license" not in s.lower():
                    if not block:
                        start = i
                    block.append(s[2:].strip())
                else:
                    if block:
                        add(f"go:{rel}:{start+1}", "\n".join(block))
                    block = []
        elif fn.endswith(".md"):
            add(f"md:{rel}", open(path, encoding="utf-8", errors="replace").read())

for dirpath, dirnames, filenames in os.walk(os.path.join(root, "doc")):
    dirnames.sort()
    for fn in sorted(filenames):
        if fn.endswith(".md"):
            p = os.path.join(dirpath, fn)
            add(f"md:{os.path.relpath(p, root)}", open(p, encoding="utf-8", errors="replace").read())

# deterministic sample: keep documents whose id hash falls in the first 1/k
seen = set()
out = []
for d in docs:
    h = hashlib.sha256(d["id"].encode()).digest()
    if h[0] < 28 and d["text"] not in seen:  # about 11% of the blocks
        seen.add(d["text"])
        out.append(d)
for d in out:
    print(json.dumps(d, ensure_ascii=False))
