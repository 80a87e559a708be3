"""A small stand-in for the Hugging Face hub on 127.0.0.1, for the download tests.

It serves one model repository from a folder under the hub's URL layout and headers:

* `HEAD|GET /<repo>/resolve/<revision>/<file>`: `X-Repo-Commit` on every answer; small files
  come back directly with `ETag` = the git blob sha1; large files (LFS: `*.safetensors`,
  `*.bin`) answer `302` to `/cdn-lfs/<sha256>` on 127.0.0.2 (another host) with `X-Linked-Etag` = the sha256 and
  `X-Linked-Size`, as the real hub redirects to its CDN;
* `GET /cdn-lfs/<sha256>`: the bytes, honouring `Range: bytes=k-` (`206` + `Content-Range`);
* unknown repository, revision or file: `404` with the hub's `X-Error-Code`.

Faults for the tests, set with `POST /_test/faults` (JSON): `{"cut": {"file": F, "after": N,
"times": T}}` closes the connection after N bytes of F (T times), `{"corrupt": [F]}` flips
bytes of F while keeping its length. A hostile or broken mirror: `{"headers": {F: {H: V}}}`
sets (or, with V null, removes) header H in the answers about F (`X-Repo-Commit`, `ETag`,
`X-Linked-Size`, `Content-Length`…); `{"loop": F}` answers F with a redirect to itself;
`{"stall": {"file": F, "seconds": S, "after": N, "times": T}}` sends N bytes of F's body (0:
before any header) and then nothing for S seconds; `{"extra": {F: N}}` sends N more bytes of
F than its length; `{"slow": {"file": F, "bytes_per_s": R}}` sends F at about R bytes/s. `GET /_test/log` returns every request seen (method,
path, Range, Authorization); `POST /_test/reset` clears log and faults.

    python tests/hub/server.py --repo DIR [--id google-bert/bert-base-uncased] [--build]

prints `PORT <n>` once it listens (port 0: the system picks). `--build` first fills DIR with
a small random BERT saved by transformers as a pre-training checkpoint (masked-LM and
next-sentence heads, TF-era LayerNorm names, no tied decoder weight: what the real
bert-base-uncased looks like), plus the all-MiniLM-L6-v2 tokenizer files (the same vocabulary).
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

LFS_SUFFIXES = (".safetensors", ".bin", ".h5", ".msgpack")
COMMIT = "1f0d5c2b9e3a4d6c8b7a0e1f2d3c4b5a69788796"


def build_repo(repo, tokenizer_dir):
    """A random bert-base-uncased look-alike: BertForPreTraining, legacy names, tied decoder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, BertForPreTraining

    torch.manual_seed(7)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64)
    model = BertForPreTraining(config)
    with torch.no_grad():  # LayerNorm starts at 1 and 0: move it, so a dropped gamma shows
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    tmp = repo + ".tmp"
    model.save_pretrained(tmp)
    tensors = load_file(os.path.join(tmp, "model.safetensors"))
    renamed = {}
    for name, t in tensors.items():
        if name == "cls.predictions.decoder.weight":
            continue  # tied to the word embeddings; the hub's file leaves it out
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta")
        renamed[name] = t.contiguous()
    os.makedirs(repo, exist_ok=True)
    save_file(renamed, os.path.join(repo, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(tmp, "config.json")) as f:
        cfg = json.load(f)
    cfg["architectures"] = ["BertForMaskedLM"]
    with open(os.path.join(repo, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shutil.rmtree(tmp)
    for name in ("tokenizer.json", "vocab.txt"):
        shutil.copy(os.path.join(tokenizer_dir, name), os.path.join(repo, name))
    with open(os.path.join(repo, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "model_max_length": 512}, f)


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub:
    def __init__(self, repo_dir, repo_id):
        self.repo_id = repo_id
        self.files = {}
        for name in sorted(os.listdir(repo_dir)):
            with open(os.path.join(repo_dir, name), "rb") as f:
                data = f.read()
            lfs = name.endswith(LFS_SUFFIXES)
            etag = hashlib.sha256(data).hexdigest() if lfs else git_blob_sha1(data)
            self.files[name] = {"data": data, "lfs": lfs, "etag": etag}
        self.by_sha = {v["etag"]: k for k, v in self.files.items() if v["lfs"]}
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.log = []
            self.cut = None
            self.corrupt = set()
            self.headers = {}
            self.loop = None
            self.stall = None
            self.extra = {}
            self.slow = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub = None  # set in main
    cdn = None  # the CDN's origin: another loopback address, so another host

    def log_message(self, *args):
        pass

    def record(self):
        with self.hub.lock:
            self.hub.log.append({
                "method": self.command, "path": self.path,
                "range": self.headers.get("Range"),
                "authorization": self.headers.get("Authorization"),
            })

    def reply(self, status, headers=(), body=b"", name=None):
        self.send_response(status)
        headers = self.override(name, list(headers) + [("Content-Length", str(len(body)))])
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def override(self, name, headers):
        """The answer's headers with the test's `headers` fault for file `name` applied."""
        with self.hub.lock:
            changes = dict(self.hub.headers.get(name, {})) if name else {}
        if not changes:
            return headers
        lower = {k.lower() for k in changes}
        out = [(k, v) for k, v in headers if k.lower() not in lower]
        return out + [(k, v) for k, v in changes.items() if v is not None]

    def stall_here(self, name, position):
        """Sleeps if the `stall` fault is set for `name` at this point of its answer."""
        with self.hub.lock:
            stall = self.hub.stall
            due = bool(stall and stall["file"] == name and stall.get("times", 1) > 0
                       and stall.get("after", 0) == position)
            if due:
                stall["times"] = stall.get("times", 1) - 1
        if due:
            import time
            time.sleep(stall["seconds"])

    def error(self, status, code, message):
        self.reply(status, [("X-Error-Code", code), ("X-Error-Message", message),
                            ("Content-Type", "application/json")],
                   json.dumps({"error": message}).encode())

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        self.record()
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/_test/reset":
            self.hub.reset()
        elif self.path == "/_test/faults":
            with self.hub.lock:
                if "cut" in body:
                    self.hub.cut = dict(body["cut"])
                self.hub.corrupt = set(body.get("corrupt", []))
                self.hub.headers = body.get("headers", {})
                self.hub.loop = body.get("loop")
                self.hub.stall = dict(body["stall"]) if "stall" in body else None
                self.hub.extra = body.get("extra", {})
                self.hub.slow = body.get("slow")
        else:
            return self.error(404, "NotFound", "no such test endpoint")
        self.reply(200, [("Content-Type", "application/json")], b"{}")

    def do_GET(self):
        if self.path == "/_test/log":
            with self.hub.lock:
                body = json.dumps(self.hub.log).encode()
            return self.reply(200, [("Content-Type", "application/json")], body)
        self.record()
        path = self.path.split("?", 1)[0]
        if path.startswith("/cdn-lfs/"):
            return self.serve_lfs(path[len("/cdn-lfs/"):])
        prefix = f"/{self.hub.repo_id}/resolve/"
        if not path.startswith(prefix):
            return self.error(404, "RepositoryNotFound",
                              "Repository not found: check the id, and your token if it is private")
        revision, _, name = path[len(prefix):].partition("/")
        revision, name = unquote(revision), unquote(name)
        if revision not in ("main", COMMIT):
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        entry = self.hub.files.get(name)
        if entry is None:
            return self.error(404, "EntryNotFound", f"{name} does not exist on main")
        if self.hub.loop == name:
            return self.reply(302, [("Location", self.path), ("X-Repo-Commit", COMMIT)])
        self.stall_here(name, 0)
        common = [("X-Repo-Commit", COMMIT)]
        if entry["lfs"]:
            return self.reply(302, common + [
                ("Location", f"{self.cdn}/cdn-lfs/{entry['etag']}"),
                ("X-Linked-Etag", f'"{entry["etag"]}"'),
                ("X-Linked-Size", str(len(entry["data"]))),
                ("ETag", f'"{git_blob_sha1(entry["etag"].encode())}"'),
            ], name=name)
        self.send_body(name, entry["data"], common + [("ETag", f'"{entry["etag"]}"')])

    def serve_lfs(self, sha):
        name = self.hub.by_sha.get(sha)
        if name is None:
            return self.error(404, "EntryNotFound", "no such LFS object")
        self.send_body(name, self.hub.files[name]["data"], [("ETag", f'"{sha}"')])

    def send_body(self, name, data, headers):
        with self.hub.lock:
            if name in self.hub.corrupt:
                data = bytes(b ^ 0x5A for b in data)
            cut = self.hub.cut
            cut_here = bool(cut and cut["file"] == name and cut.get("times", 1) > 0
                            and self.command == "GET")
            if cut_here:
                cut["times"] = cut.get("times", 1) - 1
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            first = rng[len("bytes="):].split("-", 1)[0]
            start = int(first or 0)
            if start >= len(data):
                return self.reply(416, [("Content-Range", f"bytes */{len(data)}")])
            status = 206
            headers = headers + [("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")]
        body = data[start:]
        with self.hub.lock:
            extra = int(self.hub.extra.get(name, 0))
            slow = self.hub.slow if self.hub.slow and self.hub.slow["file"] == name else None
            stall = self.hub.stall if self.hub.stall and self.hub.stall["file"] == name else None
        self.send_response(status)
        all_headers = headers + [("Accept-Ranges", "bytes"),
                                 ("Content-Length", str(len(body) + extra))]
        if self.command == "HEAD":
            all_headers = self.override(name, all_headers)
        for k, v in all_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        body = body + b"\0" * extra
        if cut_here:
            self.wfile.write(body[:cut["after"]])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if stall and stall.get("after", 0) > 0:
            first = stall["after"]
            self.wfile.write(body[:first])
            self.wfile.flush()
            self.stall_here(name, first)
            body = body[first:]
        if slow:
            import time
            chunk = max(1, int(slow["bytes_per_s"]) // 20)
            for i in range(0, len(body), chunk):
                self.wfile.write(body[i:i + chunk])
                self.wfile.flush()
                time.sleep(0.05)
            return
        self.wfile.write(body)


class QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (a refused download, a time-out) are part of the tests."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repo", required=True)
    p.add_argument("--id", default="google-bert/bert-base-uncased")
    p.add_argument("--build", action="store_true")
    p.add_argument("--tokenizer", default=os.environ.get("BERT_FINETUNE_DEFAULT_MODEL"))
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    if args.build and not os.path.exists(os.path.join(args.repo, "model.safetensors")):
        build_repo(args.repo, args.tokenizer)
    Handler.hub = Hub(args.repo, args.id)
    # The CDN listens on 127.0.0.2: a different host, as the real hub's CDN is, so clients
    # must not send the token there and read the file's metadata from the redirect itself.
    cdn = QuietServer(("127.0.0.2", 0), Handler)
    cdn.daemon_threads = True
    Handler.cdn = f"http://127.0.0.2:{cdn.server_address[1]}"
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    server = QuietServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
