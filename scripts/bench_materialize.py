"""Time protoreg's materialize against the peers measured in the same run.

Peers: the sequential shell pipeline (curl of the blob, sha256sum, tar xzf), oras-py pulling
the same artifact followed by sha256 and extraction, and `cp -a` of the cached tree. The
registry is Debian's docker-registry on 127.0.0.1, started here and stopped by its PID.
Every figure is a median of --runs whole-process runs; peak RSS comes from wait4().
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def start_registry(work):
    cfg = os.path.join(work, "config.yml")
    with open(cfg, "w") as f:
        f.write(
            "version: 0.1\nlog: {level: info, accesslog: {disabled: true}}\n"
            f"storage:\n  filesystem: {{rootdirectory: {work}/data}}\n"
            "http: {addr: '127.0.0.1:0', secret: bench}\n"
        )
    log = open(os.path.join(work, "registry.log"), "w")
    proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=log, stderr=log)
    deadline = time.time() + 10
    while time.time() < deadline:
        m = re.search(r"listening on (127\.0\.0\.1:\d+)", open(log.name).read())
        if m:
            return proc, m.group(1)
        time.sleep(0.02)
    proc.kill()
    sys.exit("docker-registry did not start")


def timed(cmd):
    """Run cmd, return seconds."""
    start = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode()}")
    return elapsed


def peak_rss_kib(cmd, work):
    """Peak RSS of cmd as GNU time reports it (a forked Python child's own memory would
    otherwise count: wait4's maxrss includes the pre-exec copy of the parent)."""
    out = os.path.join(work, "rss")
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + cmd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return int(open(out).read().split()[-1])


def fresh(path):
    if os.path.isdir(path) and not os.path.islink(path):
        subprocess.run(["chmod", "-R", "u+w", path], check=True)
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--protoreg", required=True)
    ap.add_argument("--archive", required=True)
    a = ap.parse_args()
    protoreg = os.path.abspath(a.protoreg)
    archive = os.path.abspath(a.archive)
    sha = hashlib.sha256(open(archive, "rb").read()).hexdigest()
    size = os.path.getsize(archive)
    work = tempfile.mkdtemp(prefix="protoreg-bench-")
    proc, host = start_registry(work)
    try:
        # Publish with oras-py (a client this project did not write): the layer is the file.
        import oras.client
        client = oras.client.OrasClient(hostname=host, insecure=True)
        name = os.path.basename(archive)
        os.chdir(os.path.dirname(archive))
        client.push(target=f"{host}/bench/buf:v1.75.0-linux-x86_64",
                    files=[f"{name}:application/vnd.buck2-protobuf.archive.v1.tar+gzip"],
                    disable_path_validation=True)
        os.chdir(work)
        blob_url = f"http://{host}/v2/bench/buf/blobs/sha256:{sha}"
        cache, out = os.path.join(work, "cache"), os.path.join(work, "out")
        def materialize(dest):
            return [protoreg, "materialize", "--sha256", sha, "--size", str(size), "--format", "tar.gz",
                    "--strip-prefix", "buf", "--executable", "bin/buf", "--cache-dir", cache, "--out", dest,
                    "--plain-http", "--source", f"oci://{host}/bench/buf"]
        mat = materialize(out)
        pipeline = ["sh", "-c",
                    f"curl -sf -o {work}/b.tgz {blob_url} && echo '{sha}  {work}/b.tgz' | sha256sum -c --quiet "
                    f"&& mkdir {work}/p && tar xzf {work}/b.tgz -C {work}/p"]
        oras_pull = [sys.executable, "-c",
                     "import hashlib,subprocess,sys,os,oras.client\n"
                     f"c=oras.client.OrasClient(hostname='{host}',insecure=True)\n"
                     f"fs=c.pull(target='{host}/bench/buf:v1.75.0-linux-x86_64',outdir='{work}/o')\n"
                     "f=fs[0]\n"
                     f"assert hashlib.sha256(open(f,'rb').read()).hexdigest()=='{sha}'\n"
                     f"os.makedirs('{work}/ox');subprocess.run(['tar','xzf',f,'-C','{work}/ox'],check=True)\n"]
        res = {k: [] for k in ["cold", "pipeline", "oras", "hit_auto", "hit_hardlink", "hit_copy", "cp_a"]}
        link_auto = None
        rss = []
        for _ in range(a.runs):
            fresh(cache); fresh(out)
            res["cold"].append(timed(mat))
            fresh(cache); fresh(out)
            rss.append(peak_rss_kib(mat, work))
            for d in ["b.tgz", "p"]:
                fresh(os.path.join(work, d))
            res["pipeline"].append(timed(pipeline))
            for d in ["o", "ox"]:
                fresh(os.path.join(work, d))
            res["oras"].append(timed(oras_pull))
            # Each hit starts with the dirty pages of what came before written back, so no
            # mode pays for another's writes; one untimed hit first, so none pays for the
            # first read of the freshly installed tree either.
            fresh(out)
            subprocess.run(mat + ["--offline"], check=True, stdout=subprocess.DEVNULL)
            # The modes take turns going first: the first hit after a cold run is slower
            # whatever its mode (the file system is still settling the writes).
            modes = [("hit_auto", []), ("hit_hardlink", ["--link", "hardlink"]),
                     ("hit_copy", ["--link", "copy"])]
            turn = len(res["hit_auto"]) % len(modes)
            for key, flags in modes[turn:] + modes[:turn]:
                fresh(out)
                subprocess.run(["sync"], check=True)
                res[key].append(timed(mat + flags + ["--offline"]))
            tree = subprocess.run(materialize(out + "2") + ["--offline", "--json"], capture_output=True, text=True, check=True)
            tree_dir = json.loads(tree.stdout)["tree"]
            link_auto = json.loads(tree.stdout).get("link")
            fresh(out + "2"); fresh(os.path.join(work, "cp"))
            subprocess.run(["sync"], check=True)
            res["cp_a"].append(timed(["cp", "-a", tree_dir, os.path.join(work, "cp")]))
        med = {k: statistics.median(v) for k, v in res.items()}
        ms = lambda s: f"{s * 1000:8.1f} ms"
        print(f"buf 1.75.0 linux-x86_64 archive: {size} bytes, sha256 {sha[:12]}..., {a.runs} runs, medians")
        print(f"  cold materialize (empty cache)      {ms(med['cold'])}")
        print(f"  curl + sha256sum + tar xzf          {ms(med['pipeline'])}   ratio protoreg/pipeline = {med['cold'] / med['pipeline']:.2f} (target <= 0.50)")
        print(f"  oras-py pull + sha256 + tar xzf     {ms(med['oras'])}   oras-py/protoreg = {med['oras'] / med['cold']:.2f}x (target >= 3)")
        print(f"  cache hit, --link auto (default)    {ms(med['hit_auto'])}   (files made by: {link_auto}; target <= 5 ms with clones)")
        print(f"  cache hit, --link copy              {ms(med['hit_copy'])}")
        print(f"  cache hit, --link hardlink          {ms(med['hit_hardlink'])}   (opt-in: shares the cache's files)")
        print(f"  cp -a of the cached tree            {ms(med['cp_a'])}   ratio copy/cp-a = {med['hit_copy'] / med['cp_a']:.2f} (target <= 1.50)")
        print(f"  peak RSS of cold materialize        {statistics.median(rss) / 1024:8.1f} MiB (max {max(rss) / 1024:.1f}; target < 40)")
    finally:
        proc.kill()
        proc.wait()
        fresh(work)


if __name__ == "__main__":
    main()
