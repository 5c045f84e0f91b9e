"""A Gitea stand-in for bench/intake.sh: serves ISSUES open issues labelled `orch` of team/web
over `GET /api/v1/repos/team/web/issues?…&limit=L&page=N` (no Link header, as the test stand-in:
a full page means there may be more), each with a body of BODY bytes, to requests carrying
`Authorization: token TOKEN`; 401 otherwise. HTTP/1.1 with keep-alive, threads. Prints its port
on stdout once listening, then serves until killed.

    python3 bench/forge_issues.py ISSUES BODY TOKEN
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ISSUES, BODY, TOKEN = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ALL = [
    {
        "number": n,
        "title": f"Issue {n}: something to fix",
        "body": ("Steps to reproduce, expected, actual. " * (BODY // 38 + 1))[:BODY],
        "state": "open",
        "labels": [{"id": 1, "name": "orch"}],
        "pull_request": None,
    }
    for n in range(1, ISSUES + 1)
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body in one write, sent at once: else each answer waits out a delayed ACK.
    wbufsize = 1 << 20
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.headers.get("Authorization") != f"token {TOKEN}":
            return self.reply(401, {"message": "Bad credentials"})
        url = urlsplit(self.path)
        if url.path != "/api/v1/repos/team/web/issues":
            return self.reply(404, {"message": "Not Found"})
        query = parse_qs(url.query)
        page = int(query.get("page", ["1"])[0])
        limit = int(query.get("limit", ["30"])[0])
        self.reply(200, ALL[(page - 1) * limit : page * limit])


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
