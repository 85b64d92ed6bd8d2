"""Tokenization, batching and pooling for the exported backends (ONNX Runtime, OpenVINO).

The model folder's own fast tokenizer, truncated at the same ``max_seq_length`` as the torch path; texts sorted by
token count and each batch padded to its longest text only, so one short draft never pays for 256 tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from .model import ModelSpec

__all__ = ["Tokens", "normalize", "pool", "run_batched"]


class Tokens:
    """The folder's tokenizer, configured like sentence-transformers' Transformer module (truncation at
    ``max_seq_length``, right padding to the longest text of a batch)."""

    def __init__(self, spec: ModelSpec) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(spec.path), local_files_only=True, use_fast=True)
        self.tokenizer.model_max_length = spec.max_seq_length  # what SentenceTransformer.max_seq_length sets too
        self.max_length = spec.max_seq_length
        self.pad_id = int(self.tokenizer.pad_token_id or 0)
        self.names: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        out = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return out["input_ids"]

    def batches(self, texts: Sequence[str], batch_size: int) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """(positions in ``texts``, int64 model inputs) per batch, longest texts first."""
        ids = self.ids(texts)
        order = np.argsort([-len(x) for x in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(ids[r]) for r in rows)
            input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, r in enumerate(rows):
                n = len(ids[r])
                input_ids[j, :n] = ids[r]
                mask[j, :n] = 1
            yield rows, {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}


def pool(token_embeddings: np.ndarray, attention_mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers' Pooling, in float32 whatever precision the model ran in."""
    tokens = np.asarray(token_embeddings, dtype=np.float32)
    mask = attention_mask.astype(np.float32)[:, :, None]
    if mode == "cls_token":
        return tokens[:, 0].copy()
    if mode == "max_tokens":
        return np.where(mask > 0, tokens, -1e9).max(axis=1)
    summed = (tokens * mask).sum(axis=1)
    counts = np.maximum(mask.sum(axis=1), 1e-9)
    if mode == "mean_sqrt_len_tokens":
        return summed / np.sqrt(counts)
    return summed / counts  # mean_tokens


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors


def run_batched(
    tokens: Tokens,
    spec: ModelSpec,
    texts: Sequence[str],
    batch_size: int,
    infer: Callable[[dict[str, np.ndarray]], np.ndarray],
) -> np.ndarray:
    """Token embeddings from ``infer`` per batch -> pooled, L2-normalised float32 vectors in input order."""
    out = np.zeros((len(texts), spec.dimension), dtype=np.float32)
    for rows, feeds in tokens.batches(texts, batch_size):
        out[rows] = pool(infer(feeds), feeds["attention_mask"], spec.pooling)
    # Every backend returns unit vectors, whatever the folder says: the index searches by inner product.
    return normalize(out)
