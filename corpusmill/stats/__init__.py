"""After a run: DuckDB views over its Parquet and key tables (``views.py``), the self-contained HTML
report (``report.py``) and the ``corpusmill stats`` / ``corpusmill report`` commands (``cli.py``)."""
