"""Learning from readers: impression and click events, A/B variants, and the data behind online evaluation.

- :mod:`.schema`: the validated :class:`~.schema.Event` and batch rules, the dedup key;
- :mod:`.variants`: which variant (ranking configuration) a visitor gets, and who moves when shares change;
- :mod:`.log`: the append-only, fsynced event log (one segment per process and day, group commit);
- :mod:`.compact`: the log into daily Parquet partitions, exactly once; :mod:`.files`: the folder's layout;
- :mod:`.read`: the folder as one deduplicated table (Parquet plus the log not compacted yet);
- :mod:`.sessions`: clicks to the ``sessions.jsonl`` ground truth of offline evaluation;
- :mod:`.simulate`: synthetic readers with a known preference, against the API or in process.

Kept light on purpose: the settings import :mod:`.variants`, so nothing here is imported eagerly.
"""
