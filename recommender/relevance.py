"""Calibrated relevance: the probability that a candidate is related to the source, the same on every site.

Fused scores are ranks, not answers: on a small site a football transfer scored 0.209 for a story on military
trainers in Ukraine, above every related story (issue 13). A floor needs a number that means the same for every
source and corpus: "of the pairs scored 0.8, about 80% are related". This module holds that number's model: a
logistic regression over features the engine already has for every candidate, then an isotonic (or sigmoid)
calibration, stored as plain numbers in a small JSON file (never a pickle: a model file is data, not code).

Features (:data:`FEATURES`) are computed here, once, for serving and for training (:mod:`.calibration`), so the
two can never disagree. They need the candidates' cosines and TF-IDF rows only: nothing is stored for them.
Shared names (capitalised words) were measured too (issue 13's note): 2 points fewer unrelated items on sparse
ecbplus, 0.5 nDCG points worse on reuters, and a second text model to build, store and keep live; left out.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .candidates import Candidates
from .errors import ConfigurationError

__all__ = ["FEATURES", "FORMAT", "RelevanceModel", "default_relevance_model", "pair_features", "relevance_for"]

logger = logging.getLogger(__name__)

FORMAT = "related-articles/relevance-model"
#: Features, in the order of a model file's coefficients. ``semantic``/``lexical``: the two cosines;
#: ``salient_terms``: share of the source's 10 heaviest TF-IDF terms that are also among the candidate's 10;
#: ``source_length``/``candidate_length``: log(1 + distinct indexed terms) (long texts share more by chance).
FEATURES = ("semantic", "lexical", "salient_terms", "source_length", "candidate_length")
SALIENT_TERMS = 10
BUNDLED = "relevance-v1.json"


def _salient_shared(rows: sp.csr_matrix, query: sp.csr_matrix, n: int) -> np.ndarray:
    """Per row: how many of the query's ``n`` heaviest terms are among the row's ``n`` heaviest (ties: the lower
    term index first). Only the query's ``n`` terms are ranked: a term is among a row's heaviest when fewer than
    ``n`` of the row's entries come before it, counted over the rows' nonzeros at once (sorting every nonzero
    cost 1.5 ms a request at 10,000 articles, this 0.85)."""
    m = rows.shape[0]
    q_terms, q_weights = query.indices[query.indptr[0] : query.indptr[1]], query.data[query.indptr[0] : query.indptr[1]]
    if m == 0 or len(q_terms) == 0:
        return np.zeros(m)
    source_top = q_terms[np.lexsort((q_terms, -q_weights))[:n]]
    row_of = np.repeat(np.arange(m), np.diff(rows.indptr))
    # each row's weight for each of the source's terms (0 where the row lacks it)
    present = np.isin(rows.indices, source_top)
    by_term = np.argsort(source_top)
    column = by_term[np.searchsorted(source_top[by_term], rows.indices[present])]
    weights = np.zeros((m, len(source_top)), dtype=rows.data.dtype)
    weights[row_of[present], column] = rows.data[present]
    # per nonzero and source term: does this entry come before the term in its row?
    mine = weights[row_of]
    data = rows.data[:, None]
    before = (data > mine) | ((data == mine) & (rows.indices[:, None] < source_top[None, :]))
    running = np.vstack([np.zeros((1, len(source_top)), dtype=np.int64), np.cumsum(before, axis=0, dtype=np.int64)])
    rank = running[rows.indptr[1:]] - running[rows.indptr[:-1]]
    return ((weights > 0) & (rank < n)).sum(axis=1).astype(np.float64)


def pair_features(candidates: Candidates, query_lexical: sp.csr_matrix) -> np.ndarray:
    """One row of :data:`FEATURES` per candidate (float64, ``(m, 5)``)."""
    m = len(candidates.positions)
    rows = candidates.lexical_rows
    if rows is None:
        raise ValueError("relevance features need the candidates' TF-IDF rows")
    rows = sp.csr_matrix(rows)
    query = sp.csr_matrix(query_lexical)
    out = np.empty((m, len(FEATURES)))
    out[:, 0] = candidates.semantic
    out[:, 1] = candidates.lexical
    out[:, 2] = _salient_shared(rows, query, SALIENT_TERMS) / SALIENT_TERMS
    out[:, 3] = math.log1p(query.indptr[1] - query.indptr[0])
    out[:, 4] = np.log1p(np.diff(rows.indptr))
    return out


@dataclass(frozen=True)
class RelevanceModel:
    """``p = calibrate(coef . (x - mean) / scale + intercept)``: logistic regression's decision value, mapped to a
    probability by an isotonic step function (``x``/``y`` knots, linear in between) or a sigmoid (``a``, ``b``)."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    calibration: dict[str, Any]
    features: tuple[str, ...] = FEATURES
    #: where it came from: embedding model, corpora, target, cross-validated calibration (the training report)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def predict(self, X: np.ndarray) -> np.ndarray:
        z = (np.asarray(X, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        decision = z @ np.asarray(self.coef) + self.intercept
        return self.calibrate(decision)

    def calibrate(self, decision: np.ndarray) -> np.ndarray:
        cal = self.calibration
        if cal["method"] == "isotonic":
            return np.interp(decision, cal["x"], cal["y"])
        return 1.0 / (1.0 + np.exp(cal["a"] * decision + cal["b"]))

    def score(self, candidates: Candidates, query_lexical: sp.csr_matrix) -> np.ndarray:
        """Calibrated relevance of every candidate to the source."""
        if len(candidates.positions) == 0:
            return np.zeros(0)
        return self.predict(pair_features(candidates, query_lexical))

    @property
    def embedding_model(self) -> str | None:
        """The embedding model whose cosines it was fitted on (another model's cosines are on another scale)."""
        return self.meta.get("embedding_model")

    # -- files --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": 1,
            "features": list(self.features),
            "scaler": {"mean": list(self.mean), "scale": list(self.scale)},
            "logistic": {"coef": list(self.coef), "intercept": self.intercept},
            "calibration": self.calibration,
            **self.meta,
        }

    @classmethod
    def from_dict(cls, data: Any, origin: str = "relevance model") -> RelevanceModel:
        """Checked field by field: a damaged or foreign file is a one-line error naming what is wrong."""

        def fail(reason: str) -> ConfigurationError:
            return ConfigurationError(f"{origin}: {reason}")

        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise fail(f"not a relevance model (format must be {FORMAT!r})")
        if data.get("version") != 1:
            raise fail(f"unsupported version {data.get('version')!r} (this release reads version 1)")
        features = data.get("features")
        if features != list(FEATURES):
            raise fail(f"features must be {list(FEATURES)}, got {features!r}")
        try:
            mean = _numbers(data["scaler"]["mean"], len(FEATURES))
            scale = _numbers(data["scaler"]["scale"], len(FEATURES))
            coef = _numbers(data["logistic"]["coef"], len(FEATURES))
            intercept = _numbers([data["logistic"]["intercept"]], 1)[0]
            calibration = _calibration(data["calibration"])
        except (KeyError, TypeError) as exc:
            raise fail(f"missing or malformed field {exc}") from None
        except ValueError as exc:
            raise fail(str(exc)) from None
        if any(s <= 0 for s in scale):
            raise fail("scaler.scale must be positive")
        known = {"format", "version", "features", "scaler", "logistic", "calibration"}
        meta = {k: v for k, v in data.items() if k not in known}
        return cls(mean, scale, coef, intercept, calibration, tuple(features), meta)

    @classmethod
    def load(cls, path: Path | str) -> RelevanceModel:
        path = Path(path)
        try:
            data = json.loads(path.read_bytes())
        except OSError as exc:
            raise ConfigurationError(f"{path}: cannot read relevance model: {exc.strerror}") from None
        except ValueError as exc:
            raise ConfigurationError(f"{path}: relevance model is not valid JSON: {exc}") from None
        return cls.from_dict(data, str(path))

    def save(self, path: Path | str) -> Path:
        from index.persist import atomic_write_json

        path = Path(path)
        atomic_write_json(path, self.to_dict())
        return path


def _numbers(values: Any, n: int) -> tuple[float, ...]:
    if not isinstance(values, list) or len(values) != n:
        raise ValueError(f"expected {n} numbers, got {values!r:.60}")
    out = tuple(float(v) for v in values)
    if not all(math.isfinite(v) for v in out):
        raise ValueError("numbers must be finite")
    return out


def _calibration(cal: Any) -> dict[str, Any]:
    method = cal["method"]
    if method == "isotonic":
        x, y = cal["x"], cal["y"]
        if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y) or len(x) < 2:
            raise ValueError("calibration.x and calibration.y must be lists of equal length (at least 2)")
        xs, ys = _numbers(x, len(x)), _numbers(y, len(y))
        if any(b < a for a, b in zip(xs, xs[1:])) or any(b < a for a, b in zip(ys, ys[1:])):
            raise ValueError("calibration.x and calibration.y must be non-decreasing")
        if ys[0] < 0 or ys[-1] > 1:
            raise ValueError("calibration.y must lie in [0, 1]")
        return {"method": "isotonic", "x": list(xs), "y": list(ys)}
    if method == "sigmoid":
        a, b = _numbers([cal["a"], cal["b"]], 2)
        return {"method": "sigmoid", "a": a, "b": b}
    raise ValueError(f"calibration.method must be isotonic or sigmoid, got {method!r}")


@lru_cache(maxsize=1)
def default_relevance_model() -> RelevanceModel:
    """The model shipped with the package (trained on ecbplus-dev with all-MiniLM-L6-v2; its training report is
    in the file, the protocol in the README's Evaluation section)."""
    text = resources.files("recommender").joinpath("data", BUNDLED).read_text(encoding="utf-8")
    return RelevanceModel.from_dict(json.loads(text), f"bundled {BUNDLED}")


def relevance_for(spec: RelevanceModel | Path | str | None, embedding_model: str) -> RelevanceModel | None:
    """The relevance model a loaded version uses: ``"default"`` (the bundled one), a file, a model, or None.

    Cosines of another embedding model lie on another scale, so a model fitted on one is not calibrated for the
    other: that is said once, in one line, with the way out (``recommender calibrate``)."""
    if spec is None:
        return None
    model = (
        spec
        if isinstance(spec, RelevanceModel)
        else default_relevance_model()
        if spec == "default"
        else RelevanceModel.load(spec)
    )
    fitted_on = model.embedding_model
    if fitted_on and fitted_on != embedding_model and (fitted_on, embedding_model) not in _WARNED:
        _WARNED.add((fitted_on, embedding_model))
        logger.warning(
            "the relevance model was fitted on %s cosines, this index uses %s: relevance (and the floor) are not "
            "calibrated for it; fit one with `recommender calibrate`",
            fitted_on,
            embedding_model,
        )
    return model


_WARNED: set[tuple[str, str]] = set()
