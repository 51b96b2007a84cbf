"""Commands that are not part of a curation run: ``corpusmill assets``, ``train-classifier`` and
``eval-toxicity`` (``cli.py``, ``toxicity_train.py``), and the derivation of the token-ratio
thresholds shipped in ``curation/data`` (``python -m corpusmill.tools.derive_token_ratio``)."""
