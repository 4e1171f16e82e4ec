"""A loopback server in the shape of the GitHub releases API that serves the test fixtures.

GitHub is unreachable on these machines; this answers `/repos/OWNER/REPO/releases` and
`/releases/tags/TAG` for protoc 36.2 and buf 1.75.0 (with their reported `digest`s) and serves
the assets, so `protoreg publish`, `bump` and `outdated` run against the real code path.
Listens on 127.0.0.1 only. Run as a script, it prints its URL and serves until killed.
"""
import hashlib
import http.server
import json
import os
import shutil
import socketserver
import sys
import threading

PROTOC = ["linux-x86_64", "linux-aarch_64", "osx-x86_64", "osx-aarch_64", "win64"]
# Upstream ships no Windows archive of buf: the bare executables.
BUF = ["buf-Linux-x86_64.tar.gz", "buf-Linux-aarch64.tar.gz", "buf-Darwin-x86_64.tar.gz",
       "buf-Darwin-arm64.tar.gz", "buf-Windows-x86_64.exe", "buf-Windows-arm64.exe"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Upstream:
    """A loopback server in the GitHub releases API's shape that also serves the assets."""

    def __init__(self, fixtures):
        self.files = {}
        self.routes = {}
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                if path in srv.routes:
                    body = srv.routes[path]
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif path in srv.files:
                    p = srv.files[path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(os.path.getsize(p)))
                    self.end_headers()
                    with open(p, "rb") as f:
                        shutil.copyfileobj(f, self.wfile, 1 << 20)
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.release("protocolbuffers/protobuf", "v36.2",
                     [os.path.join(fixtures, f"protoc-36.2-{p}.zip") for p in PROTOC])
        self.release("bufbuild/buf", "v1.75.0",
                     [os.path.join(fixtures, n) for n in BUF + ["sha256.txt"]])

    def release(self, repo, tag, paths):
        assets = []
        for p in paths:
            name = os.path.basename(p)
            url_path = f"/download/{repo}/{tag}/{name}"
            self.files[url_path] = p
            assets.append({"name": name, "size": os.path.getsize(p),
                           "browser_download_url": self.base + url_path,
                           "digest": "sha256:" + sha256(p)})
        rel = {"tag_name": tag, "draft": False, "prerelease": False,
               "published_at": "2025-07-01T00:00:00Z", "assets": assets}
        self.routes[f"/repos/{repo}/releases/tags/{tag}"] = json.dumps(rel).encode()
        self.routes[f"/repos/{repo}/releases"] = json.dumps([rel]).encode()

    def stop(self):
        self.httpd.shutdown()


if __name__ == "__main__":
    up = Upstream(sys.argv[1])
    print(up.base, flush=True)
    threading.Event().wait()
