"""BPE training on curated Parquet and token-shard packing.

* ``train.py``      — ``train_tokenizer``: byte-level BPE (GPT-4 split regex, 256-byte alphabet) with HF tokenizers.
* ``report.py``     — bytes/token per language / source_kind and vocabulary utilisation on a held-out split; sweep.
* ``fast_encode.py``— ``Encoder``: tiktoken built from our merges (ids checked against HF), HF fallback.
* ``pack.py``       — ``pack`` / ``verify``: parallel encoding into fixed-size shards, train/val split by id hash.
* ``formats.py``    — shard layouts and writers: datatrove ``.ds``, Megatron ``.bin/.idx``, llm.c ``.bin``.
* ``shards.py``     — ``open_shards``: memory-mapped windows for the trainer, any format.
* ``reader.py``     — streaming Parquet batches, id hashing, sampling weights.
* ``sample_corpus.py`` — a curated-like Parquet corpus from ../shared/data for tests and benchmarks.
* ``cli.py``        — ``corpusmill train-tokenizer | tokenizer-report | tokenizer-sweep | pack``.

Heavy imports (tokenizers, tiktoken) happen inside the functions that need them.
"""
