"""BPE training on curated Parquet and token-shard packing.

``train.py`` / ``bpe.py`` train a byte-level BPE with HF tokenizers; ``report.py`` / ``sweep.py`` measure
it on held-out text; ``fast_encode.py`` encodes (tiktoken when it reproduces HF ids); ``pack.py`` writes
the shard formats of ``formats.py``; ``shards.py`` reads them; ``reader.py`` streams curated Parquet;
``cli.py`` holds the subcommands. One line per module: docs/tokenizer.md.

Heavy imports (tokenizers, tiktoken) happen inside the functions that need them.
"""
