"""A/B of the layout move (issue 12): the filter chain of a checkout from before the move (import paths
``curation.*``) and of this one (``corpusmill.*``) on the same input, each run a fresh process.

    python benchmarks/ab_layout_filters.py dump /tmp/mix.json              # this checkout's benchmark input
    git worktree add --detach /tmp/old 4a1a98d                           # the last commit before the move
    python benchmarks/ab_layout_filters.py run /tmp/old OLD /tmp/mix.json  # alternate with:
    python benchmarks/ab_layout_filters.py run . NEW /tmp/mix.json         # (prints CPU s and the decisions)
"""
import importlib, json, os, sys, time
if sys.argv[1] == "dump":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from corpusmill.tools.shared_corpus import benchmark_mix
    s = benchmark_mix()
    json.dump([[x.id, x.text] for x in s], open(sys.argv[2], "w"))
    raise SystemExit
tree, kind, inp = sys.argv[2:5]
sys.path.insert(0, tree)
from datatrove.data import Document
# the same modules under both layouts: ``curation.*`` before the move, ``corpusmill.curation.*`` after
pre = "" if kind == "OLD" else "corpusmill."
filters = importlib.import_module(pre + "curation.filters")
C4Quality, FineWebQuality = filters.C4Quality, filters.FineWebQuality
GopherQuality, GopherRepetition = filters.GopherQuality, filters.GopherRepetition
english = importlib.import_module(pre + ("curation.filters.text_stats" if kind == "OLD" else "curation.text.english_words")).english
apply_stage = importlib.import_module(pre + "curation.stage").apply_stage
document = importlib.import_module(pre + "curation.document")
REASON, STAGE, STATUS = document.REASON, document.STAGE, document.STATUS
docs = json.load(open(inp))
chain = [GopherRepetition(), GopherQuality(), C4Quality(filter_no_terminal_punct=False), FineWebQuality()]
english()
for f in chain:
    f.setup()
t0 = time.process_time(); w0 = time.perf_counter()
out = []
for i, t in docs:
    d = Document(text=t, id=i, metadata={})
    for f in chain:
        apply_stage(f, d)
    md = d.metadata
    out.append([md.get(STAGE), md.get(REASON), hash(d.text)])
print(json.dumps({"kind": kind, "cpu": time.process_time() - t0, "wall": time.perf_counter() - w0,
                  "decisions": out, "load": os.getloadavg()[0]}))
