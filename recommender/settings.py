"""All configuration in one typed object: ``RECOMMENDER_*`` environment variables, overridden by CLI flags."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .embedding import BACKENDS, DEFAULT_MODEL
from .events.variants import VariantSpec, check_variants
from .options import numbers_from_text
from .ranking import RankingConfig
from .settings_errors import settings_error_message
from .text import TEXT_STRATEGIES
from .urls import DEFAULT_TRACKING_PARAMS

__all__ = ["Settings", "settings_error_message"]

logger = logging.getLogger(__name__)


class Settings(BaseSettings):
    """Defaults run out of the box on one machine with the bundled model."""

    model_config = SettingsConfigDict(env_prefix="RECOMMENDER_", env_nested_delimiter="__", extra="ignore")

    # -- index and build --------------------------------------------------------------------
    index_dir: Path = Field(Path("index-data"), description="Folder holding versions/ and the CURRENT pointer.")
    model: str = Field(DEFAULT_MODEL, description="Model name or local folder of a sentence-transformers model.")
    embedding_backend: str = Field(
        "auto",
        description=f"One of {', '.join(BACKENDS)}. auto: the fastest backend whose top-10 neighbours agree "
        "with float32's (>= 0.99), measured once per machine and model and cached.",
    )
    batch_size: int = Field(64, ge=1, le=4096)
    checkpoint_every: int = Field(
        4096, ge=1, description="Articles per embedding checkpoint segment (a killed build resumes from the last one)."
    )
    max_seq_length: int = Field(256, ge=16, le=8192, description="Word pieces the model reads per article.")
    text_strategy: str = Field("lead", description=f"One of {', '.join(TEXT_STRATEGIES)}.")
    lead_words: int = Field(
        120, ge=10, description="Body words after title and summary in the embedded text (120 measured best)."
    )
    max_reject_share: float = Field(0.01, ge=0.0, le=1.0, description="Fail the build above this share of bad rows.")
    title_from_body: bool = Field(
        True,
        description="Use the body's first line as title when a row has none (counted in the report); false rejects such rows.",
    )
    keep_versions: int = Field(5, ge=1, description="Published versions kept by gc.")
    editorial_file: Path | None = Field(
        None,
        description="Editorial pins and blocks for the build; unset: an editorial.json beside the export if "
        "there is one, else the published version's.",
    )
    tracking_params: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TRACKING_PARAMS),
        description="Query parameters URL lookups ignore (a trailing * matches a prefix), e.g. utm_*, fbclid.",
    )
    index_type: str = Field("auto", description="auto, flat, hnsw, ivf, hnsw_sq8 or ivf_sq8.")
    exact_threshold: int = Field(200_000, ge=0, description="auto: exact search up to this many articles.")
    recall_floor: float = Field(0.95, ge=0.0, le=1.0, description="Fail the build when approximate recall@10 is lower.")
    hnsw_m: int = Field(32, ge=4, le=256, description="HNSW graph degree (more = better recall, more memory).")
    hnsw_ef_search: int = Field(128, ge=1, description="HNSW search breadth (more = better recall, slower).")
    ivf_nprobe: int = Field(16, ge=1, description="IVF lists probed per search.")
    max_search_breadth: int = Field(
        2048,
        ge=1,
        description="Below the recall floor the build doubles HNSW efSearch / IVF nprobe up to this "
        "before failing; the tuned value is saved with the index.",
    )
    neighbors: int = Field(50, ge=1, le=1000, description="Precomputed candidates per article and retriever.")
    lexical_exact_threshold: int = Field(
        100_000,
        ge=0,
        description="Exact TF-IDF neighbour lists up to this many articles; above, common terms are capped.",
    )
    lexical_max_postings: int = Field(
        2_000,
        ge=1,
        description="Above the threshold: query terms found in more articles than this are skipped "
        "when precomputing TF-IDF candidates (the build measures and reports the recall this keeps).",
    )

    engine: str = Field("local", description="Embedding engine: local, or ray (needs the distributed extra).")
    ray_address: str | None = Field(
        None, description="Ray cluster address (auto, ray://host:10001); unset starts a local Ray."
    )
    ray_workers: int | None = Field(None, ge=1, description="Embedding actors on Ray [default: one per CPU].")

    # -- service ----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    admin_token: SecretStr | None = Field(None, description="Bearer token for admin routes; unset disables them.")
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    header_timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds a client has to send a request's headers before it is disconnected."
    )
    keep_alive_timeout: float = Field(
        5.0, gt=0, le=300, description="Seconds an idle keep-alive connection stays open."
    )
    max_connections: int = Field(
        4096, ge=1, description="Open connections and requests at once; above it new requests get 503."
    )
    backlog: int = Field(2048, ge=1, description="Connections the kernel queues before the server accepts them.")
    shutdown_timeout: float = Field(
        2.0, ge=0, description="Seconds a shutdown waits for requests in flight before closing their connections."
    )
    cache_max_age: int = Field(300, ge=0, description="Cache-Control max-age (seconds) on read responses.")
    cache_size: int = Field(10_000, ge=0, description="In-process response cache entries.")
    poll_interval: float = Field(
        5.0, ge=0.0, description="Seconds between checks for a newly published version; 0 = off."
    )
    mmap: bool = Field(False, description="Memory-map index files so several workers share them.")
    verify_digests: bool = Field(
        True,
        description="Check every file of a version against its manifest digest before serving it: catches "
        "same-size corruption (a bit flip in the vectors would otherwise be served silently); one extra read "
        "of the files per load.",
    )

    # -- events and experiments (issue 15) -----------------------------------------------------
    events_dir: Path | None = Field(
        None, description="Folder of the event log and its daily Parquet files (unset: <index_dir>/events)."
    )
    max_events_per_batch: int = Field(100, ge=1, le=10_000, description="Events one POST /v1/events batch may hold.")
    events_max_future_seconds: float = Field(
        300.0, ge=0, description="Refuse events timed more than this many seconds ahead of the server's clock."
    )
    events_max_age_days: float = Field(7.0, gt=0, description="Refuse events older than this many days.")
    events_rate: float = Field(
        100.0, ge=0, description="Events per second one client IP may send (token bucket); 0 = no limit."
    )
    events_burst: int = Field(2_000, ge=1, description="Events one client IP may send at once before the rate applies.")
    events_dedup_keys: int = Field(
        100_000,
        ge=0,
        description="Keys of recent events kept to drop a resent batch at once (compaction drops the rest).",
    )
    events_compact_interval: float = Field(
        3600.0, ge=0, description="Seconds between the service's compactions of closed days into Parquet; 0 = off."
    )
    events_compact_grace: float = Field(
        600.0, ge=0, description="Seconds after midnight UTC before a day's event log is compacted (appends in flight)."
    )
    variants: dict[str, VariantSpec] = Field(
        default_factory=dict,
        description='A/B variants in order, e.g. {"control": {"share": 0.5}, "diverse": {"config": "diverse.json", '
        '"share": 0.5}}; the first is the default. Unset: one variant, control.',
    )
    experiment_salt: str = Field(
        "related-v1", min_length=1, max_length=200,
        description="Hashed with each visitor id to pick its variant; a new salt reshuffles every visitor.",
    )  # fmt: skip

    # -- ranking ----------------------------------------------------------------------------
    ranking: RankingConfig = Field(default_factory=RankingConfig)
    ranking_file: Path | None = Field(None, description="JSON/TOML file with a named ranking configuration.")
    relevance_model: Path | None = Field(
        None,
        description="Relevance model file written by `recommender calibrate`; unset: the bundled one (fitted on "
        "ecbplus-dev with all-MiniLM-L6-v2).",
    )

    @field_validator("embedding_backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(f"must be one of {', '.join(BACKENDS)}")
        return value

    @field_validator("admin_token", mode="before")
    @classmethod
    def _token(cls, value: Any) -> Any:
        """A token read from a secrets file often ends in a newline, which no client sends back: strip it (with a
        warning, so the operator knows). A token that cannot travel in an HTTP header is refused."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str):
            return value
        stripped = value.strip()
        if stripped != value:
            logger.warning("RECOMMENDER_ADMIN_TOKEN had surrounding whitespace; it was stripped")
        if not stripped:
            return None
        if not stripped.isascii() or not stripped.isprintable() or any(c.isspace() for c in stripped):
            raise ValueError("must be printable ASCII without spaces (it is sent in an HTTP header)")
        return stripped

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str) -> str:
        if value not in ("local", "ray"):
            raise ValueError("must be one of local, ray")
        return value

    @field_validator("text_strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        if value not in TEXT_STRATEGIES:
            raise ValueError(f"must be one of {', '.join(TEXT_STRATEGIES)}")
        return value

    @field_validator("ranking", mode="before")
    @classmethod
    def _ranking(cls, value: Any) -> Any:
        if isinstance(value, dict):
            # Environment variables arrive as text ("0.3"): read as numbers, then validated like a configuration file.
            numbers = [name for name in value if name not in ("name", "fusion")]
            return RankingConfig().with_overrides(**numbers_from_text(value, numbers))
        return value

    def relevance(self) -> Path | str:
        """What ``Recommender.open(relevance=...)`` takes: the configured file, or the bundled model."""
        return self.relevance_model or "default"

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, VariantSpec]) -> dict[str, VariantSpec]:
        if value:
            check_variants(value)
        return value

    def events_path(self) -> Path:
        """Where events are stored: ``events_dir``, else ``<index_dir>/events``."""
        return Path(self.events_dir) if self.events_dir is not None else Path(self.index_dir) / "events"

    def ranking_config(self) -> RankingConfig:
        return RankingConfig.from_file(self.ranking_file) if self.ranking_file else self.ranking

    def overridden(self, **flags: Any) -> "Settings":
        """A copy with CLI flags applied; ``None`` means the flag was not given."""
        given = {k: v for k, v in flags.items() if v is not None}
        return self.model_validate({**self.model_dump(), **given}) if given else self
