# JSON-RPC (POST /weka/jrpc) -> XML-RPC shim in front of Python supervisord, so our
# supervisorctl can be compared end to end with the real one.
import json, os, sys, socketserver, http.server, xmlrpc.client as X
from supervisor.xmlrpc import SupervisorTransport
target, path = sys.argv[1], sys.argv[2]
def proxy():
    return X.ServerProxy('http://127.0.0.1', transport=SupervisorTransport(None, None, target))
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        req = json.loads(body)
        try:
            fn = proxy()
            for part in req['method'].split('.'):
                fn = getattr(fn, part)
            out = {"jsonrpc": "2.0", "result": fn(*req['params']), "id": req['id']}
        except X.Fault as f:
            out = {"jsonrpc": "2.0", "error": {"code": f.faultCode, "message": f.faultString}, "id": req['id']}
        data = json.dumps(out, ensure_ascii=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    def get_request(self):
        r, _ = super().get_request(); return r, ('local', 0)
if os.path.exists(path): os.unlink(path)
S(path, H).serve_forever()
