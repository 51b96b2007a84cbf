"""Reference GPT trainer.

    model.py   the GPT (decoder-only, pre-norm, causal SDPA, tied embeddings, learned or rotary positions)
    train.py   the loop: AdamW, warmup + cosine, grad accumulation, DDP, exact resume, logs, plot
    data.py    token shards (datatrove .ds, Megatron .bin/.idx, llm.c .bin) and the window sampler
    sample.py  decoding: sampling, greedy, speculative decoding with a draft model
    config.py  the flat TrainConfig, YAML presets (presets/tiny.yaml, presets/gpt2-124m.yaml)
    cli.py     `corpusmill train CONFIG [--set k=v]`, `corpusmill sample --checkpoint DIR ...`

The package itself imports nothing heavy, so `corpusmill --help` stays fast. From Python:
``from corpusmill.trainer.train import train; result = train("tiny", {"data_dir": "runs/x/tokens",
"out_dir": "runs/x/model"})``, then ``result["initial_val_loss"]``, ``result["final_val_loss"]``.
"""
