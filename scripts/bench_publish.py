"""The publish benchmark (run through scripts/bench-publish).

Each round starts a fresh Debian docker-registry on 127.0.0.1 and serves the fixtures from a
loopback GitHub-shaped releases API, then times:
  1. protoreg publish of protoc 36.2 (5 platforms) and buf 1.75.0 (6 platforms), first time:
     list releases, download, verify (API digest, buf's sha256.txt), push blobs, manifests,
     indexes;
  2. the same publish again (nothing changed: zero blobs must be sent);
  3. oras-py pushing the same 11 files, one artifact each, to another fresh registry
     (local files: no download, no verification, no index).
Prints medians and ratios. Servers listen on loopback only and are stopped by PID.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

from loopback_github import BUF, PROTOC, Upstream  # beside this script


class Registry:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bench-reg-")
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog: {level: info, accesslog: {disabled: true}}\n"
                    f"storage:\n  filesystem: {{rootdirectory: {self.dir}/data}}\n  delete: {{enabled: true}}\n"
                    "http: {addr: '127.0.0.1:0', secret: bench}\n")
        self.log = os.path.join(self.dir, "log")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(self.log).read())
            if m:
                self.host = "127.0.0.1:" + m.group(1)
                return
            if time.time() > deadline:
                raise SystemExit("docker-registry did not start")
            time.sleep(0.02)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def protoreg_publish(args, reg, up, work):
    cfg = os.path.join(work, "registry.yaml")
    with open(cfg, "w") as f:
        # The loopback upstream has no release signing key (buf signs sha256.txt upstream):
        # checksums and digests are verified, signatures are not part of this measurement.
        f.write(f"primary_registry:\n  url: \"{reg.host}\"\n  namespace: buck2-protobuf\n  plain_http: true\n"
                "security:\n  verify_signatures: false\n")
    env = dict(os.environ, GITHUB_API_URL=up.base)
    env.pop("GITHUB_TOKEN", None)
    env.pop("PROTOREG_PINS", None)
    uploaded = 0
    t0 = time.perf_counter()
    for tool, version in [("protoc", "36.2"), ("buf", "1.75.0")]:
        out = subprocess.run([args.protoreg, "--config", cfg, "--cache-dir", os.path.join(work, "cache"),
                              "publish", "--tool", tool, "--version", version, "--json"],
                             cwd=work, env=env, capture_output=True)
        if out.returncode != 0:
            raise SystemExit(f"protoreg publish {tool} failed:\n{out.stderr.decode()}")
        uploaded += json.loads(out.stdout)["counters"]["blobs_uploaded"]
    return time.perf_counter() - t0, uploaded


def oras_push(args, reg, work):
    import oras.client
    files = [os.path.join(args.fixtures, f"protoc-36.2-{p}.zip") for p in PROTOC] + \
            [os.path.join(args.fixtures, n) for n in BUF]
    stage = os.path.join(work, "oras")
    os.makedirs(stage, exist_ok=True)
    for f in files:  # oras-py pushes paths relative to the working directory
        dest = os.path.join(stage, os.path.basename(f))
        if not os.path.exists(dest):
            os.link(f, dest)
    cwd = os.getcwd()
    os.chdir(stage)
    try:
        t0 = time.perf_counter()
        c = oras.client.OrasClient(hostname=reg.host, insecure=True)
        for f in files:
            name = os.path.basename(f)
            repo = "tools/protoc" if name.startswith("protoc") else "tools/buf"
            tag = re.sub(r"[^A-Za-z0-9._-]", "-", name)
            c.push(target=f"{reg.host}/oras/{repo}:{tag}", files=[name])
        return time.perf_counter() - t0
    finally:
        os.chdir(cwd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protoreg", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    up = Upstream(args.fixtures)
    total = sum(os.path.getsize(os.path.join(args.fixtures, f"protoc-36.2-{p}.zip")) for p in PROTOC) + \
        sum(os.path.getsize(os.path.join(args.fixtures, n)) for n in BUF)
    first, again, oras_t = [], [], []
    try:
        for i in range(args.rounds):
            work = tempfile.mkdtemp(prefix="bench-work-")
            reg, reg2 = Registry(), Registry()
            try:
                t, n = protoreg_publish(args, reg, up, work)
                first.append(t)
                assert n == 11, f"first publish uploaded {n} blobs, expected 11"
                t, n = protoreg_publish(args, reg, up, work)
                again.append(t)
                assert n == 0, f"re-publish uploaded {n} blobs"
                oras_t.append(oras_push(args, reg2, work))
            finally:
                reg.stop()
                reg2.stop()
                shutil.rmtree(work, ignore_errors=True)
            print(f"round {i + 1}: first {first[-1]:.3f}s, again {again[-1]:.3f}s, oras-py {oras_t[-1]:.3f}s",
                  flush=True)
    finally:
        up.stop()
    m = statistics.median
    print()
    print(f"11 artifacts, {total / 2**20:.1f} MiB, {args.rounds} rounds, medians:")
    print(f"  protoreg first publish (download + verify + push + indexes): {m(first):.3f} s")
    print(f"  protoreg re-publish, nothing changed (0 blobs sent):          {m(again):.3f} s")
    print(f"  oras-py push of the same files (local, no verification):     {m(oras_t):.3f} s")
    print(f"  ratio first publish / oras-py: {m(first) / m(oras_t):.2f}")
    print(f"  ratio re-publish / oras-py:    {m(again) / m(oras_t):.3f}")


if __name__ == "__main__":
    main()
