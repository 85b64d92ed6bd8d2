"""Drafts and live writes over HTTP at 10,000 articles, per embedding backend (issue 19): p50/p99 of
``POST /v1/related`` (a draft) and ``PUT /v1/articles/{id}`` (a live write), against related-by-id on the same
server (response cache off) as the reference.

    python -m benchmarks.perf.bench_writes                       # 10,000 reuters21578 articles, every backend
    python -m benchmarks.perf.bench_writes --backends float32,openvino-bf16 --requests 100

An index of ``--articles`` reuters21578 articles is built once (into a cache folder, with ``auto``); then for each
backend a ``python -m service`` runs on a copy of it with ``RECOMMENDER_EMBEDDING_BACKEND`` set to that backend
(drafts and live writes embed with it; the served vectors stay the build's, which agree at >= 0.99). After the
model is loaded and 10 warm-up drafts, one client sends, in turns, a related-by-id request for a random indexed
article, a draft made of a held-out article (its real length: headline-only items stay short, long ones are cut at
256 tokens by the model), a short draft (the same headline and the body's first sentence, as an editor's draft
starts) and a PUT of the held-out article. Drafts and writes must embed one text each: their
latency over related-by-id's is what embedding costs per request. Target (issue 19): draft p50 under 15 ms on the
``auto`` backend. Every figure is printed with the CPU model and the load.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import SHARED_DATASETS, machine_line
from recommender.evaluation.metrics import percentiles
from tests.support.paths import subprocess_env
from tests.support.server import ServerProcess, admin_headers, copy_index, wait_until

REUTERS = SHARED_DATASETS / "reuters21578" / "articles.jsonl"


def _index(articles: list[dict], n: int, cache: Path) -> Path:
    """The first-``n`` index (built once per ``n``; ``auto`` backend, as a site would build it)."""
    import json

    folder = cache / f"reuters-{n}"
    if (folder / "CURRENT").exists():
        return folder
    export = cache / f"reuters-{n}.jsonl"
    export.parent.mkdir(parents=True, exist_ok=True)
    export.write_text("".join(json.dumps(a) + "\n" for a in articles[:n]))
    subprocess.run(
        [sys.executable, "-m", "recommender", "build", str(export), "--index-dir", str(folder)],
        env=subprocess_env(RECOMMENDER_EMBEDDING_BACKEND="auto"), check=True,
    )  # fmt: skip
    return folder


def _model_ready(server: ServerProcess) -> bool:
    import httpx

    return httpx.get(server.url + "/readyz", timeout=2).json().get("model_state") == "ready"


def _measure(index: Path, backend: str, held_out: list[dict], ids: list[str], requests: int, work: Path) -> dict:
    root = copy_index(index, work / f"index-{backend}")
    server = ServerProcess(
        root, work / f"{backend}.log", embedding_backend=backend, cache_size=0, poll_interval=0
    ).start(timeout=600)
    rng = random.Random(7)
    times: dict[str, list[float]] = {"related": [], "draft": [], "short draft": [], "put": []}
    try:
        wait_until(lambda: _model_ready(server), 600, 0.2, f"the {backend} model")
        with server.client(headers=admin_headers(), timeout=120) as c:
            for a in held_out[:10]:
                c.post("/v1/related", json={"title": a["title"], "body": a.get("body", "")}).raise_for_status()
            for n in range(requests):
                body = {"title": held_out[10 + n]["title"], "body": held_out[10 + n].get("body", "")}
                short = {"title": body["title"], "body": body["body"].split(". ")[0][:200]}
                for name, method, path, payload in (
                    ("related", "GET", f"/v1/articles/{rng.choice(ids)}/related", None),
                    ("draft", "POST", "/v1/related", body),
                    ("short draft", "POST", "/v1/related", short),
                    ("put", "PUT", f"/v1/articles/bench-{n}", body),
                ):
                    t0 = time.perf_counter()
                    c.request(method, path, json=payload).raise_for_status()
                    times[name].append((time.perf_counter() - t0) * 1000)
    finally:
        server.stop()
    summary = {name: percentiles(v) for name, v in times.items()}
    return {name: (p["p50"], p["p99"]) for name, p in summary.items()}


def main() -> int:
    from recommender.loading import load_articles

    print(machine_line(), flush=True)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=10_000, help="indexed articles")
    parser.add_argument("--backends", default="float32,bf16,onnx,onnx-int8,openvino,openvino-bf16")
    parser.add_argument("--requests", type=int, default=200, help="of each kind, per backend")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "related-articles" / "bench-writes")
    args = parser.parse_args()
    rows = [a.to_dict() for a in load_articles([REUTERS], title_from_body=True).articles]
    random.Random(0).shuffle(rows)
    index = _index(rows, args.articles, args.cache)
    held_out = rows[args.articles : args.articles + args.requests + 10]
    ids = [a["id"] for a in rows[: args.articles]]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-writes-") as tmp:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            results[backend] = r = _measure(index, backend, held_out, ids, args.requests, Path(tmp))
            print(
                f"{backend:>14}: related-by-id p50 {r['related'][0]:6.1f} ms p99 {r['related'][1]:6.1f} | "
                f"draft p50 {r['draft'][0]:6.1f} ms p99 {r['draft'][1]:6.1f} ({r['draft'][0] / r['related'][0]:.1f}x) | "
                f"short draft p50 {r['short draft'][0]:6.1f} ms p99 {r['short draft'][1]:6.1f} | "
                f"PUT p50 {r['put'][0]:6.1f} ms p99 {r['put'][1]:6.1f} ({r['put'][0] / r['related'][0]:.1f}x)",
                flush=True,
            )
    print(machine_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
