"""Soak: many materializations at once, killed at random, from a registry that fails a share
of its requests, beside a cleanup that keeps emptying the cache; then the cache must verify.

Everything runs on 127.0.0.1 and is stopped by the PID started here: Debian's
docker-registry, the loopback GitHub-shaped upstream (only to bump and publish), and a proxy
in front of the registry that answers 503 to a share of requests. protoreg runs as `nobody`
when this runs as root. Bounded in count (--runs) and time (--max-seconds); every process
has a timeout. At the end: `protoreg cache verify` must be clean, every successful output
must equal a clean materialize of the same pin, every failed or killed one must be absent
or empty, and the counts print.
"""
import argparse
import http.client
import http.server
import json
import os
import random
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
from bench_materialize import fresh, start_registry  # noqa: E402

NS = "buck2-protobuf"
PINS = [("protoc", p) for p in
        ["linux-x86_64", "linux-aarch64", "darwin-x86_64", "darwin-arm64", "windows-x86_64"]]
PINS += [("buf", p) for p in ["linux-x86_64", "linux-aarch64", "darwin-x86_64", "darwin-arm64"]]


class FaultyProxy(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(self, upstream, fail_rate, rng):
        self.upstream, self.fail_rate, self.rng = upstream, fail_rate, rng
        self.lock = threading.Lock()
        self.requests = self.failed = 0
        super().__init__(("127.0.0.1", 0), ProxyHandler)

    def handle_error(self, request, client_address):
        pass  # a client killed mid-request: expected here


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def forward(self):
        srv = self.server
        with srv.lock:
            srv.requests += 1
            fail = srv.rng.random() < srv.fail_rate
            srv.failed += fail
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if fail:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        conn = http.client.HTTPConnection(srv.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection"):
                self.send_header(k, v.replace(srv.upstream, self.headers.get("Host", "")))
        self.end_headers()
        if self.command != "HEAD":
            while chunk := resp.read(1 << 16):
                self.wfile.write(chunk)
        conn.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward


def as_user(cmd):
    """cmd as nobody when running as root (Buck2 users are not root)."""
    if os.geteuid() == 0:
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] + cmd
    return cmd


def listing(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(d, name)
            st = os.lstat(p)
            out.append((os.path.relpath(p, root), st.st_size, st.st_mode & 0o111 != 0))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protoreg", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--kill-rate", type=float, default=0.05)
    ap.add_argument("--fail-rate", type=float, default=0.05)
    ap.add_argument("--max-seconds", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    protoreg = os.path.abspath(a.protoreg)
    work = tempfile.mkdtemp(prefix="protoreg-soak-")
    os.chmod(work, 0o755)
    procs = []
    try:
        reg, host = start_registry(work)
        procs.append(reg)
        gh = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(__file__), "loopback_github.py"),
             os.path.join(a.fixtures, "upstream")], stdout=subprocess.PIPE, text=True)
        procs.append(gh)
        api = gh.stdout.readline().strip()

        # The operator's side, as in scripts/demo: pins from the upstream, then publish.
        project = os.path.join(work, "project")
        os.makedirs(os.path.join(project, "toolchains"))
        with open(os.path.join(project, "toolchains", "pins.bzl"), "w") as f:
            f.write("PINS = {}\n")
        publish_cfg = os.path.join(project, "registry.yaml")
        with open(publish_cfg, "w") as f:
            f.write(f'primary_registry:\n  url: "{host}"\n  namespace: "{NS}"\n'
                    "  auth_required: false\n  plain_http: true\n"
                    "security:\n  verify_signatures: false\n  verify_checksums: true\n"
                    f'cache:\n  local_cache_dir: "{work}/publish-cache"\n')
        env = dict(os.environ, GITHUB_API_URL=api)
        for args in (["bump", "protoc", "36.2"], ["bump", "buf", "1.75.0"],
                     ["publish", "--tool", "protoc", "--version", "36.2"],
                     ["publish", "--tool", "buf", "--version", "1.75.0"]):
            subprocess.run([protoreg] + args, cwd=project, env=env, check=True,
                           stdout=subprocess.DEVNULL, timeout=600)
        gh.kill()  # from here on only the (faulty) registry serves

        proxy = FaultyProxy(host, a.fail_rate, random.Random(a.seed + 1))
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        cfg = os.path.join(work, "soak.yaml")
        cache = os.path.join(work, "cache")
        with open(cfg, "w") as f:
            f.write(f'primary_registry:\n  url: "127.0.0.1:{proxy.server_address[1]}"\n'
                    f'  namespace: "{NS}"\n  auth_required: false\n  plain_http: true\n'
                    f'cache:\n  local_cache_dir: "{cache}"\n')
        outs = os.path.join(work, "out")
        os.makedirs(outs)
        for d in (cache, outs, os.path.join(work, "reference-cache")):
            os.makedirs(d, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(d, 65534, 65534)
        pins = os.path.join(project, "toolchains", "pins.bzl")

        # The reference trees come through a cache of their own, so the soak starts cold.
        ref_cfg = os.path.join(work, "reference.yaml")
        with open(ref_cfg, "w") as f:
            f.write(open(cfg).read().replace(cache, os.path.join(work, "reference-cache")))

        def materialize(i, tool, platform, kill_after=None, config=cfg):
            out = os.path.join(outs, f"{i}-{tool}-{platform}")
            cmd = as_user([protoreg, "--config", config, "materialize", tool, "--platform",
                           platform, "--pins", pins, "--out", out, "--json"])
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if kill_after is not None:
                time.sleep(kill_after)
                p.send_signal(signal.SIGKILL)
            try:
                stdout, stderr = p.communicate(timeout=180)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                return out, "timeout", None
            if p.returncode == 0:
                return out, "ok", json.loads(stdout)
            if p.returncode == -signal.SIGKILL:
                return out, "killed", None
            return out, f"exit {p.returncode}", stderr.decode(errors="replace").strip()

        # A clean reference tree per pin, straight from the registry (no faults, no kills).
        ref_proxy_rate, proxy.fail_rate = proxy.fail_rate, 0.0
        reference = {}
        for tool, platform in PINS:
            out, status, _ = materialize("ref", tool, platform, config=ref_cfg)
            if status != "ok":
                sys.exit(f"reference materialize of {tool} {platform}: {status}")
            reference[(tool, platform)] = listing(out)
            fresh(out)
        proxy.fail_rate = ref_proxy_rate

        stop = threading.Event()
        cleanups = [0, 0]

        def cleaner():
            while not stop.wait(1.5):
                r = subprocess.run(as_user([protoreg, "--config", cfg, "cleanup",
                                            "--older-than", "0s"]),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
                cleanups[0] += 1
                cleanups[1] += r.returncode != 0
                if r.returncode != 0 and cleanups[1] <= 3:
                    print("cleanup:", r.stderr.decode().strip()[:300], file=sys.stderr)

        cleaning = threading.Thread(target=cleaner, daemon=True)
        cleaning.start()
        deadline = time.time() + a.max_seconds
        counts, hits, misses, problems, reasons = {}, 0, 0, [], {}
        started = time.time()
        def one(i, tool, platform, kill):
            """One run, checked, its output removed (a thousand trees would fill the disk)."""
            if time.time() >= deadline:
                return "skipped", None, None, None
            out, status, report = materialize(i, tool, platform, kill)
            problem = None
            if status == "ok":
                if listing(out) != reference[(tool, platform)]:
                    problem = f"{out}: differs from a clean materialize"
            elif os.path.exists(out) and os.listdir(out) and \
                    listing(out) != reference[(tool, platform)]:
                # Killed after the output was promoted, it is whole; anything else is not.
                problem = f"{out}: {status}, and left a partial --out"
            fresh(out)
            return status, report, problem, out

        with ThreadPoolExecutor(a.jobs) as pool:
            futures = []
            for i in range(a.runs):
                tool, platform = PINS[i % len(PINS)]
                kill = rng.uniform(0, 0.4) if rng.random() < a.kill_rate else None
                futures.append(pool.submit(one, i, tool, platform, kill))
            for fut in futures:
                status, report, problem, _ = fut.result()
                counts[status] = counts.get(status, 0) + 1
                if status == "ok":
                    hits += report.get("cache") == "hit"
                    misses += report.get("cache") == "miss"
                if problem:
                    problems.append(problem)
                if status.startswith("exit") and report:
                    first = report.splitlines()[0][:160]
                    reasons[first] = reasons.get(first, 0) + 1
        stop.set()
        cleaning.join(timeout=180)
        elapsed = time.time() - started

        # Every pin once more, unhindered, so the cache verified below holds each of them.
        proxy.fail_rate = 0.0
        for tool, platform in PINS:
            out, status, report = materialize("final", tool, platform)
            if status != "ok":
                problems.append(f"after the soak, {tool} {platform}: {status}: {report}")
            fresh(out)
        verify = subprocess.run(as_user([protoreg, "--config", cfg, "cache", "verify"]),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=600)
        metrics = subprocess.run([protoreg, "--config", cfg, "metrics"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, timeout=60)
        print(f"soak: {a.runs} materializations of {len(PINS)} pins, {a.jobs} at a time, "
              f"in {elapsed:.1f} s")
        print("  outcomes:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        print(f"  successful: {hits} cache hits, {misses} downloads")
        print(f"  registry proxy: {proxy.requests} requests, {proxy.failed} answered 503")
        print(f"  concurrent cleanups: {cleanups[0]} ({cleanups[1]} failed)")
        print(f"  cache verify: exit {verify.returncode}")
        print("  " + verify.stdout.strip().replace("\n", "\n  "))
        print("  metrics:\n  " + metrics.stdout.strip().replace("\n", "\n  "))
        for why, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]:
            print(f"  failed {n}x: {why}")
        for p in problems[:20]:
            print("  PROBLEM:", p)
        ok = verify.returncode == 0 and not problems and counts.get("ok", 0) > 0 \
            and cleanups[1] == 0 and "timeout" not in counts
        print("soak: " + ("passed" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["chmod", "-R", "u+w", work], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
