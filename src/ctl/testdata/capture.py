# Runs the real supervisorctl 4.3.0 main() in-process with its XML-RPC transport wrapped,
# and prints one JSON line: argv, every RPC call (method, params, result or fault), the
# exact stdout bytes and the exit code.
import sys, io, json, xmlrpc.client as X
from supervisor import xmlrpc as sx, supervisorctl
calls = []
orig = sx.SupervisorTransport.request
def request(self, host, handler, request_body, verbose=0):
    params, method = X.loads(request_body)
    rec = {"method": method, "params": list(params)}
    calls.append(rec)
    try:
        r = orig(self, host, handler, request_body, verbose)
    except X.Fault as f:
        rec["fault"] = [f.faultCode, f.faultString]; raise
    except X.ProtocolError as e:
        rec["http"] = e.errcode; raise
    except OSError as e:
        rec["oserror"] = e.errno; raise
    rec["result"] = r[0]
    return r
sx.SupervisorTransport.request = request
args = sys.argv[1:]
buf = io.BytesIO()
out = io.TextIOWrapper(buf, encoding="utf-8", errors="surrogateescape", write_through=True)
sys.stdout = out
rc = 0
try:
    supervisorctl.main(args)
except SystemExit as e:
    rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
out.flush()
sys.stdout = sys.__stdout__
print(json.dumps({"args": args, "calls": calls, "stdout": buf.getvalue().decode("utf-8", "surrogateescape"), "rc": rc}, ensure_ascii=False))
