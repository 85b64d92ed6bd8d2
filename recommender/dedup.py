"""Near-duplicate detection: MinHash over word shingles (news sites re-publish a story under new ids).

Word 3-shingles with Jaccard >= 0.7 catch a re-published copy with a changed headline word, a tweaked
first sentence or an "Updated:" line (the demo corpus's copies measure 0.92-1.0; reuters21578's duplicate
bodies 1.0). There is no clean gap below that: in ecbplus-dev one wire story picked up by two outlets
measures anywhere from 0.59 to 0.99 (read by hand: 0.59 and 0.65 for Reuters and AP reports, 0.685 for a
quake report, 0.71 for an AP court report on two sites), and 23 of its 122,760 pairs are at 0.5 or more.
0.7 removes the closer copies and keeps the more rewritten ones recommendable; ecbplus judges every copy
relevant, which is what the strict rule costs there (README, "How the defaults were chosen").
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

__all__ = [
    "shingles",
    "story_shingles",
    "shingle_jaccard",
    "minhash_signatures",
    "jaccard_estimate",
    "NEAR_DUPLICATE_THRESHOLD",
    "SIGNATURE_SCHEME",
    "dedup_text",
]

NEAR_DUPLICATE_THRESHOLD = 0.7
#: Changes whenever the shingling or hashing changes: signatures are reused across builds only when equal.
SIGNATURE_SCHEME = "minhash-w3-p64-body40-v1"
NUM_PERM = 64
SHINGLE_WORDS = 3
_WORD = re.compile(r"\w+", re.UNICODE)


def dedup_text(title: str, body: str) -> str:
    """The body identifies a story; a re-publish often changes only the headline. Short items (briefs,
    headline-only wire flashes) have too few shingles in the body alone, so the title joins them."""
    if len(body.split()) >= 40:
        return body
    return f"{title}\n{body}"


def shingles(text: str, n: int = SHINGLE_WORDS) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {" ".join(words).encode("utf-8")} if words else set()
    return {" ".join(words[i : i + n]).encode("utf-8") for i in range(len(words) - n + 1)}


def story_shingles(title: str, body: str) -> frozenset[bytes]:
    """The shingle set near-duplicate tests compare: of the same text the MinHash signatures are made of."""
    return frozenset(shingles(dedup_text(title, body)))


def shingle_jaccard(a: set[bytes] | frozenset[bytes], b: set[bytes] | frozenset[bytes]) -> float:
    """Exact Jaccard of two shingle sets; an empty text is nobody's duplicate."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def minhash_signatures(texts: Sequence[str], *, num_perm: int = NUM_PERM, seed: int = 1) -> np.ndarray:
    """One row of ``num_perm`` uint32 minima per text; equal-position agreement estimates Jaccard."""
    from datasketch import MinHash

    out = np.zeros((len(texts), num_perm), dtype=np.uint32)
    grams = [shingles(text) for text in texts]
    filled = [row for row, g in enumerate(grams) if g]
    for row in range(len(texts)):
        if not grams[row]:
            # Empty text: a signature no other text can match, so it is nobody's duplicate.
            out[row] = np.uint32(0xFFFFFFFF) - row % 7919
    # One set of permutations for all texts (a MinHash per text would draw them again for each one).
    hashes = MinHash.generator((list(grams[row]) for row in filled), num_perm=num_perm, seed=seed)
    for row, lean in zip(filled, hashes):
        out[row] = lean.hashvalues.astype(np.uint32)
    return out


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of signature ``a`` (one row) against one or many rows ``b``."""
    b = np.atleast_2d(b)
    return (b == np.asarray(a)[None, :]).mean(axis=1)
