#!/usr/bin/env python3
# A fake CLI (docker, helm) for the tests: forwards its name, arguments, stdin and the files it is
# told to read to the test process at $FAKE_CLI_URL, which answers with stdout, stderr and exit code.
import json, os, sys, urllib.request

prog = os.path.basename(sys.argv[0])
args = sys.argv[1:]
stdin = sys.stdin.read() if not sys.stdin.isatty() else ""
files = {}
for i, a in enumerate(args):
    if a in ("-f", "--values") and i + 1 < len(args) and os.path.isfile(args[i + 1]):
        with open(args[i + 1]) as f:
            files[args[i + 1]] = f.read()
body = json.dumps({"program": prog, "args": args, "stdin": stdin, "files": files}).encode()
req = urllib.request.Request(os.environ["FAKE_CLI_URL"], data=body, headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req) as resp:
    out = json.load(resp)
sys.stdout.write(out["stdout"])
sys.stderr.write(out["stderr"])
sys.exit(out["code"])
