"""A synthetic news export of any size, for scale tests: real sentences, new combinations.

    python -m benchmarks.perf.synthetic_corpus 1000000 ~/.cache/related-articles/scale/corpus-1000000.jsonl

Each article is two or three sentences drawn from reuters21578 articles that share a topic, with a headline cut
from another sentence of that topic, a section derived from the topic, a tag, and a date spread over ten years.
The sentences are real newswire, so the bundled model's vectors and the TF-IDF vocabulary behave like a real
archive's (topical clusters, a Zipf vocabulary, names), while every article is a new combination: two articles
rarely share more than one sentence, so near-duplicates stay as rare as in a real export. Generation is
sequential from one seed, so the first N articles of a larger corpus are exactly the corpus of size N: a
10k, 100k and 1M run measure the same population.

This is research data turned into size, for benchmarks only; it never ships with the product.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from benchmarks.common import REPO

REUTERS = REPO.parent / "shared" / "datasets" / "reuters21578" / "articles.jsonl"
SECTIONS = ["business", "markets", "commodities", "energy", "economy", "world", "agriculture", "metals", "finance",
            "trade", "companies", "currencies"]  # fmt: skip
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
START = datetime(2016, 1, 1, tzinfo=timezone.utc)


def sentence_pools(path: Path = REUTERS) -> dict[str, list[str]]:
    """Sentences of 8-45 words, grouped by the article's first topic (``none`` for untopiced articles)."""
    pools: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            body = row.get("body") or ""
            topic = (row.get("topics") or ["none"])[0]
            for sentence in _SPLIT.split(body):
                words = sentence.split()
                if 8 <= len(words) <= 45:
                    pools.setdefault(topic, []).append(" ".join(words))
    return {t: s for t, s in pools.items() if len(s) >= 20}


def articles(n: int, *, seed: int = 20261129, path: Path = REUTERS) -> Iterator[dict]:
    pools = sentence_pools(path)
    topics = sorted(pools)
    weights = [len(pools[t]) for t in topics]
    rng = random.Random(seed)
    span = 10 * 365 * 86400
    for i in range(n):
        topic = rng.choices(topics, weights)[0]
        pool = pools[topic]
        body = " ".join(rng.choice(pool) for _ in range(rng.choice((2, 2, 3))))
        head = rng.choice(pool).split()
        title = " ".join(head[: rng.randint(6, 10)]).rstrip(",;:")
        title = title[:1].upper() + title[1:]
        published = START + timedelta(seconds=rng.randrange(span))
        yield {
            "id": f"syn-{i:07d}",
            "title": title,
            "body": body,
            "url": f"https://example-news.test/{topic}/{i}",
            "published_at": published.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "section": SECTIONS[sum(map(ord, topic)) % len(SECTIONS)],
            "tags": [topic],
            "language": "en",
        }


def write(n: int, out: Path, *, seed: int = 20261129) -> Path:
    """Write atomically (a killed run leaves no half corpus that a later run would trust)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for record in articles(n, seed=seed):
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args()
    write(args.count, args.out, seed=args.seed)
    print(f"wrote {args.count} articles to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
