"""The ``recommender`` command: parses, calls the library, prints. Errors are one line and an exit code."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable, NoReturn, Optional

import typer
from typer.core import TyperGroup

from .errors import RecommenderError


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _OneLineErrors(TyperGroup):
    """The root command. Click and typer print a usage error as a usage banner plus a boxed, wrapped message;
    cron mails, log greps and calling scripts need one line, so every usage or option error becomes
    ``error: <message naming the option>`` on stderr with click's exit code (2 for bad input)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # typer's (vendored) click.ClickException and its subclasses
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `recommender` / `recommender index`: help, not an error
                if exc.format_message().strip():  # without rich the help text is the message; with rich it is printed
                    typer.echo(exc.format_message(), err=True)
            else:
                typer.echo(f"error: {_one_line(exc.format_message())}", err=True)
            code = exc.exit_code
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="recommender",
    cls=_OneLineErrors,
    help="Related-article recommendations for news sites.\n\nExample: recommender demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
index_app = typer.Typer(help="Inspect and manage published index versions.\n\nExample: recommender index list --index-dir DIR", no_args_is_help=True)
app.add_typer(index_app, name="index")

IndexDirOpt = Annotated[Optional[Path], typer.Option("--index-dir", help="Index folder [env RECOMMENDER_INDEX_DIR, default ./index-data].", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

#: Documented exit codes (README, Operations).
EXIT_CODES = {0: "success", 1: "error", 2: "bad input or configuration", 3: "too many rejected rows", 4: "validation or quality gate failed", 5: "another build holds the lock", 6: "disk full"}


#: Settings fields whose CLI flag is not ``--field-name``.
_FLAG_OF_FIELD = {"embedding_backend": "--backend", "keep_versions": "--keep"}
_ENV_PREFIX = "RECOMMENDER_"


def _validation_message(exc: Any, *, from_env: bool) -> str:
    """pydantic's multi-line report (with a documentation URL) as one line naming the env var or flag."""
    errors = exc.errors()
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())] or ["?"]
    name = _ENV_PREFIX + "__".join(loc).upper() if from_env else _FLAG_OF_FIELD.get(loc[0], "--" + loc[0].replace("_", "-"))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    value = first.get("input")
    shown = f"{name}={value!r}" if isinstance(value, (str, int, float)) and not isinstance(value, bool) else name
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return _one_line(f"{shown}: {message}{more}")


def _settings(**flags: Any):
    """Environment first, then the flags given; a bad value of either is one ``error:`` line and exit 2."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from .settings import Settings

    try:
        base = Settings()
    except ValidationError as exc:
        _fail(_validation_message(exc, from_env=True), 2)
    except SettingsError as exc:  # e.g. a list-valued variable that is not JSON
        _fail(_one_line(f"{exc} (check the {_ENV_PREFIX}* environment variables)"), 2)
    try:
        settings = base.overridden(**flags)
    except ValidationError as exc:
        _fail(_validation_message(exc, from_env=False), 2)
    if flags.get("index_dir") is not None:
        label = "--index-dir"
    else:
        label = f"{_ENV_PREFIX}INDEX_DIR" if f"{_ENV_PREFIX}INDEX_DIR" in os.environ else "index folder"
    _check_index_dir(Path(settings.index_dir), label)
    return settings


def _check_index_dir(path: Path, label: str) -> None:
    """A file where the index folder (or one of its parents) should be would otherwise surface later as a raw
    ``[Errno 20] Not a directory`` or a misleading ``[Errno 17] File exists``."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                detail = "" if candidate == path else f" ({candidate} is a file)"
                _fail(f"{label} {path} is not a folder{detail}", 2)
            return


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _run(fn: Callable[[], Any]) -> Any:
    from index import LockedError, StoreError

    try:
        return fn()
    except RecommenderError as exc:
        _fail(str(exc), exc.exit_code)
    except LockedError as exc:
        _fail(str(exc), 5)
    except StoreError as exc:
        _fail(str(exc), 2)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except OSError as exc:  # I/O the library could not attribute (permissions, network filesystems)
        _fail(str(exc), 1)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("faiss.loader", "sentence_transformers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress lines.")] = False) -> None:
    _setup_logging(verbose)


@app.command()
def build(
    articles: Annotated[list[Path], typer.Argument(help="JSONL, CSV or Parquet files, or folders of them.", show_default=False)],
    index_dir: IndexDirOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Re-embed everything instead of reusing unchanged vectors.")] = False,
    model: Annotated[Optional[str], typer.Option(help="Model name or local folder.")] = None,
    backend: Annotated[Optional[str], typer.Option(help="Embedding backend: float32 or bf16.")] = None,
    index_type: Annotated[Optional[str], typer.Option(help="auto, flat, hnsw, ivf, hnsw_sq8, ivf_sq8.")] = None,
    max_reject_share: Annotated[Optional[float], typer.Option(help="Fail above this share of bad rows (default 0.01).")] = None,
    gate: Annotated[Optional[Path], typer.Option(help="Ground truth for the publish quality gate: a qrels TSV or a sessions JSONL (told apart by content).")] = None,
    max_drop: Annotated[float, typer.Option(min=0.0, help="Gate: refuse when nDCG@10 drops more than this.")] = 0.01,
    report: Annotated[Optional[Path], typer.Option(help="Also write the JSON build report here.")] = None,
    engine: Annotated[Optional[str], typer.Option(help="Embedding engine: local or ray (pip install .[distributed]).")] = None,
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster address, e.g. auto or ray://head:10001 [default: start a local Ray].")] = None,
    ray_workers: Annotated[Optional[int], typer.Option(min=1, help="Embedding actors on Ray [default: one per CPU].")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build a new index version from an export and publish it atomically.

    Example: recommender build export.jsonl --index-dir /srv/related/index
    """
    settings = _settings(
        index_dir=index_dir, model=model, embedding_backend=backend, index_type=index_type, max_reject_share=max_reject_share,
        engine=engine, ray_address=ray_address, ray_workers=ray_workers,
    )

    def go():
        from .build import build_index

        gate_fn = None
        if gate is not None:
            from .evaluation.gate import make_gate

            gate_fn = make_gate(gate, max_drop=max_drop, config=settings.ranking_config())
        return build_index(articles, settings, full=full, progress=True, gate=gate_fn)

    result = _run(go)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(result.summary())
        if result.rejects_file:
            typer.echo(f"{result.counts.get('rejected', 0)} rejected rows listed in {result.rejects_file}")


def _parse_date(value: str | None, name: str) -> datetime | None:
    from .article import parse_datetime
    from .errors import FieldError

    try:
        return parse_datetime(value, name)
    except FieldError as exc:
        raise typer.BadParameter(exc.reason, param_hint=f"'--{name}'") from None


def _split_ids(values: list[str] | None) -> frozenset[str]:
    """``--exclude a,b --exclude c``: comma-separated and repeatable; blanks between commas are ignored."""
    return frozenset(part.strip() for value in values or () for part in value.split(",") if part.strip())


@app.command()
def related(
    article_id: Annotated[str, typer.Argument(help="Id of an indexed article.", show_default=False)],
    index_dir: IndexDirOpt = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=50, help="How many related articles.")] = 6,
    section: Annotated[Optional[list[str]], typer.Option(help="Only these sections (repeatable).")] = None,
    exclude_section: Annotated[Optional[list[str]], typer.Option(help="Never these sections (repeatable).")] = None,
    tag: Annotated[Optional[list[str]], typer.Option(help="Only articles with one of these tags (repeatable).")] = None,
    since: Annotated[Optional[str], typer.Option(help="Only articles published at or after (ISO-8601).")] = None,
    until: Annotated[Optional[str], typer.Option(help="Only articles published at or before (ISO-8601).")] = None,
    freshness: Annotated[Optional[float], typer.Option(help="Freshness half-life in days.")] = None,
    diversity: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="0 = pure relevance, 1 = most varied.")] = None,
    language: Annotated[Optional[str], typer.Option(help="Only articles in this language, e.g. en.")] = None,
    window: Annotated[Optional[float], typer.Option(metavar="DAYS", help="Only articles published within this many days of the source.")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option(metavar="ID,ID", help="Never these article ids (comma-separated, repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the related articles of one indexed article.

    Example: recommender related demo-006 --index-dir ./demo-index -k 6 --window 30 --exclude demo-003 --json
    """
    import math

    if window is not None and not (math.isfinite(window) and window > 0):
        raise typer.BadParameter("must be a positive number of days", param_hint="'--window'")
    settings = _settings(index_dir=index_dir)
    from .ranking import Filters

    filters = Filters(
        sections=tuple(section or ()),
        exclude_sections=tuple(exclude_section or ()),
        tags=tuple(tag or ()),
        language=language or None,
        exclude_ids=_split_ids(exclude),
        since=_parse_date(since, "since"),
        until=_parse_date(until, "until"),
    )
    given = (("freshness_half_life_days", freshness), ("diversity", diversity), ("window_days", window))
    overrides = {name: value for name, value in given if value is not None}

    def go():
        from .engine import Recommender

        rec = Recommender.open(settings.index_dir, config=settings.ranking_config())
        return rec, rec.related(article_id, k, filters=filters, **overrides)

    rec, items = _run(go)
    if as_json:
        typer.echo(json.dumps({"article_id": article_id, "index_version": rec.version, "items": [i.to_dict() for i in items]}, indent=2, ensure_ascii=False))
        return
    source = rec.article(article_id)
    typer.echo(f"Related to {source.id}: {source.title}")
    for n, item in enumerate(items, 1):
        a = item.article
        date = a.published_at.date().isoformat() if a.published_at else "-"
        typer.echo(f"{n:2}. {item.score:.3f}  {a.id}  [{a.section or '-'} {date}]  {a.title}")


@app.command()
def serve(
    index_dir: IndexDirOpt = None,
    host: Annotated[Optional[str], typer.Option(help="Bind address [default 127.0.0.1].")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port [default 8000].")] = None,
) -> None:
    """Serve the HTTP API and the demo page for the published index.

    Admin routes need RECOMMENDER_ADMIN_TOKEN set.

    Example: recommender serve --index-dir /srv/related/index --port 8000
    """
    settings = _settings(index_dir=index_dir, host=host, port=port)
    # The CLI is the composition root: it is the one place that starts the service layer.
    from service import run

    typer.echo(f"serving {settings.index_dir} on http://{settings.host}:{settings.port}/", err=True)
    _run(lambda: run(settings))


def _demo_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "related-articles" / "demo-index"


@app.command()
def demo(
    index_dir: IndexDirOpt = None,
    host: Annotated[Optional[str], typer.Option(help="Bind address [default 127.0.0.1].")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port [default 8000].")] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Build the demo index and exit.")] = False,
) -> None:
    """Build the bundled demo corpus (140 original articles) and serve it with the demo page.

    Example: recommender demo --port 8000
    """
    from importlib import resources

    settings = _settings(index_dir=index_dir or _demo_dir(), host=host, port=port)
    corpus = resources.files("recommender") / "data" / "demo_articles.jsonl"

    def go():
        from .build import build_index

        with resources.as_file(corpus) as path:
            return build_index([path], settings, progress=True)

    result = _run(go)
    typer.echo(result.summary())
    if no_serve:
        return
    from service import run

    typer.echo(f"Demo running: open http://{settings.host}:{settings.port}/  (Ctrl-C to stop)")
    _run(lambda: run(settings))


def _eval_cache_dir(paths: list[Path]) -> Path:
    import hashlib

    h = hashlib.blake2b(digest_size=8)
    for p in sorted(Path(x).resolve() for x in paths):
        try:
            st = p.stat()
        except FileNotFoundError:
            _fail(f"{p}: no such file or folder", 2)
        except OSError as exc:
            _fail(f"{p}: cannot read: {exc.strerror}", 2)
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "related-articles" / "eval" / h.hexdigest()


@app.command()
def evaluate(
    report_dir: Annotated[Path, typer.Option("--report", help="Folder for results.json, per-query files, report.html/md and plots.", show_default=False)],
    articles: Annotated[Optional[list[Path]], typer.Option("--articles", help="Articles file(s); indexed into a cache unless --index-dir is given.")] = None,
    qrels: Annotated[Optional[Path], typer.Option(help="Ground truth TSV: query_id, doc_id, grade (with header).")] = None,
    label_field: Annotated[Optional[str], typer.Option(help="Ground truth from an article field, e.g. story_id or topics.")] = None,
    grading: Annotated[str, typer.Option(help="For list label fields: exact, jaccard or any.")] = "exact",
    sessions: Annotated[Optional[Path], typer.Option(help="Ground truth from reading logs (sessions.jsonl).")] = None,
    index_dir: IndexDirOpt = None,
    systems: Annotated[str, typer.Option(help="Comma-separated systems: default, tfidf, embedding, recent, recent-same-section, random.")] = "default,tfidf,embedding,recent,recent-same-section,random",
    config: Annotated[Optional[list[Path]], typer.Option("--config", help="Ranking configuration file(s) to compare (JSON/TOML); named by their 'name' or file stem.")] = None,
    k: Annotated[Optional[list[int]], typer.Option("--k", help="Cutoffs (repeatable) [default 5 and 10].")] = None,
    sample: Annotated[Optional[int], typer.Option(min=1, help="Evaluate a seeded random sample of this many queries.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling, bootstrap and the random baseline.")] = 0,
) -> None:
    """Compare the default ranking with baselines (and configuration files) offline, with significance tests.

    Example: recommender evaluate --articles articles.jsonl --qrels qrels.tsv --report reports/today
    """
    truth = [x for x in (qrels, label_field, sessions) if x is not None]
    if len(truth) != 1:
        _fail("give exactly one ground truth: --qrels FILE, --label-field NAME or --sessions FILE", 2)
    if not articles and index_dir is None:
        _fail("give --articles FILE (indexed into a cache) or --index-dir DIR", 2)
    settings = _settings(index_dir=index_dir)
    if index_dir is None:
        settings = settings.overridden(index_dir=_eval_cache_dir(articles or []))

    def go():
        import random

        import numpy as np

        from . import evaluation as ev
        from .engine import Recommender
        from .evaluation.systems import indexed_articles, make_systems, near_duplicate_predicate
        from .loading import load_articles
        from .ranking import RankingConfig

        if index_dir is None:
            from .build import build_index

            typer.echo(f"indexing {len(articles)} file(s) into {settings.index_dir} (cached; only changes are re-embedded)", err=True)
            build_index(articles, settings, progress=True)
        rec = Recommender.open(settings.index_dir, config=settings.ranking_config())
        corpus = indexed_articles(rec)
        labelled = load_articles(articles, title_from_body=settings.title_from_body).articles if articles else corpus
        popularity = None
        if qrels is not None:
            truth_qrels = ev.load_qrels(qrels)
            meta: dict[str, Any] = {"ground_truth": {"kind": "qrels", "source": str(qrels)}}
        elif label_field is not None:
            truth_qrels = ev.qrels_from_labels(labelled, label_field, grading=grading)
            meta = {"ground_truth": {"kind": "label_field", "source": label_field, "grading": grading}}
        else:
            truth_qrels, popularity, stats = ev.qrels_from_sessions(sessions, [a.id for a in corpus])
            meta = {"ground_truth": {"kind": "sessions", "source": str(sessions)}, "sessions": {**stats.to_dict(), "unknown_id_examples": list(stats.unknown_ids[:10])}}
            typer.echo(sessions_line(meta["sessions"]), err=True)
        # Queries not in the index cannot be asked; evaluate() still counts them (meta.json, reports) as unknown.
        queries = sorted(q for q in truth_qrels if q in rec)
        if not queries:
            raise ValueError("no ground-truth query is in the index")
        if sample and sample < len(queries):
            queries = sorted(random.Random(seed).sample(queries, sample))
        configs = [RankingConfig.from_file(c) for c in (config or [])]
        names = [n.strip() for n in systems.split(",") if n.strip()]
        if "default" in names:  # the reference every comparison is made against
            names.insert(0, names.pop(names.index("default")))
        chosen = make_systems(rec, names, configs, seed=seed)
        vectors = np.asarray(rec.store.vectors[: rec.catalog.base_count], dtype=np.float32)
        result = ev.evaluate(
            chosen, truth_qrels, cutoffs=tuple(k or (5, 10)), articles=corpus, vectors=vectors,
            popularity=popularity, near_duplicate=near_duplicate_predicate(rec), queries=queries, seed=seed, meta=meta,
        )
        ev.write_report(result, report_dir)
        return result

    from .evaluation.report import format_comparisons, sessions_line, unknown_line

    try:
        result = _run(go)
    except ValueError as exc:
        _fail(str(exc), 2)
    typer.echo(result.table())
    comparisons = format_comparisons(result)
    if comparisons:
        typer.echo("")
        typer.echo(comparisons)
    if result.unknown is not None and result.unknown.count:
        typer.echo(unknown_line(result.unknown), err=True)
    typer.echo(f"report: {report_dir / 'report.html'}")


@index_app.command("list")
def index_list(index_dir: IndexDirOpt = None, as_json: JsonOpt = False) -> None:
    """List versions, newest last; * marks the published one.

    Example: recommender index list --index-dir /srv/related/index
    """
    from index import IndexDirectory

    settings = _settings(index_dir=index_dir)
    infos = _run(lambda: IndexDirectory(settings.index_dir).list())
    if as_json:
        typer.echo(json.dumps([_info_dict(i) for i in infos], indent=2))
        return
    if not infos:
        _fail(f"no versions in {settings.index_dir}; run `recommender build` first", 2)
    for info in infos:
        m = info.manifest
        detail = f"{m.count} articles, {m.index_type}, {m.model}, built {m.created_at}" if m else f"BROKEN: {info.error}"
        typer.echo(f"{'*' if info.current else ' '} {info.name}  {detail}")


def _info_dict(info) -> dict[str, Any]:
    from dataclasses import asdict

    return {"name": info.name, "current": info.current, "path": str(info.path), "error": info.error, "manifest": asdict(info.manifest) if info.manifest else None}


@index_app.command("info")
def index_info(version: Annotated[Optional[str], typer.Argument(help="Version name [default: the published one].")] = None, index_dir: IndexDirOpt = None) -> None:
    """Show one version's manifest and build report as JSON.

    Example: recommender index info --index-dir /srv/related/index
    """
    from index import IndexDirectory

    settings = _settings(index_dir=index_dir)
    info = _run(lambda: IndexDirectory(settings.index_dir).info(version))
    out = _info_dict(info)
    report = info.path / "build_report.json"
    if report.is_file():
        out["build_report"] = json.loads(report.read_text(encoding="utf-8"))
    typer.echo(json.dumps(out, indent=2))


@index_app.command("rollback")
def index_rollback(version: Annotated[Optional[str], typer.Argument(help="Version to publish [default: the one before the current].")] = None, index_dir: IndexDirOpt = None) -> None:
    """Publish an earlier version again (services pick it up on their next poll or reload).

    Example: recommender index rollback --index-dir /srv/related/index
    """
    from index import IndexDirectory

    settings = _settings(index_dir=index_dir)
    name = _run(lambda: IndexDirectory(settings.index_dir).rollback(version))
    typer.echo(f"published {name}")


@index_app.command("gc")
def index_gc(index_dir: IndexDirOpt = None, keep: Annotated[Optional[int], typer.Option(min=1, help="Versions to keep [default 5].")] = None) -> None:
    """Delete old versions, keeping the newest N and always the published one.

    Example: recommender index gc --index-dir /srv/related/index --keep 3
    """
    from index import IndexDirectory

    settings = _settings(index_dir=index_dir, keep_versions=keep)
    directory = IndexDirectory(settings.index_dir)

    def go():
        with directory.lock():
            return directory.gc(settings.keep_versions)

    removed = _run(go)
    typer.echo(f"removed {len(removed)} version(s)" + (f": {', '.join(removed)}" if removed else ""))


def main() -> None:
    """Console-script entry point; :class:`_OneLineErrors` turns every usage error into one line."""
    app()


if __name__ == "__main__":
    main()
