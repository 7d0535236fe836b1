# code_executor: runs the Python snippet given base64-encoded (UTF-8) in
# argv[1] in this fresh sandbox: no network, read-only root, /tmp as the
# only writable place, the sandbox's memory, CPU, process and time limits.
# The snippet's stdout, stderr and exit status are the run's; an uncaught
# exception prints its traceback and exits with status 1.
import base64, sys

try:
    src = base64.b64decode(sys.argv[1], validate=True).decode("utf-8")
except Exception:
    sys.stderr.write("code_executor: argv[1] must be the snippet, base64-encoded UTF-8\n")
    sys.exit(2)
code = compile(src, "<snippet>", "exec")
sys.argv = ["<snippet>"]
exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
