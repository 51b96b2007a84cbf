"""`corpusmill export`: a checkpoint loads in transformers (AutoModelForCausalLM + AutoTokenizer) with the
same logits (max abs diff < 1e-5) and the same greedy text as `corpusmill sample --temperature 0`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from corpusmill.cli import main
from corpusmill.trainer.data import write_token_dir
from corpusmill.trainer.train import load_model, train

transformers = pytest.importorskip("transformers")


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    d = tmp_path_factory.mktemp("tok")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = ["the quick brown fox jumps over the lazy dog. " * 3, "a tiny corpus for a tiny tokenizer, the end."] * 20
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.save(str(d / "tokenizer.json"))
    ids = np.concatenate([tok.encode(t).ids for t in text])
    return d / "tokenizer.json", write_token_dir(d / "shards", [ids], [ids], vocab_size=tok.get_vocab_size())


def _checkpoint(tmp_path, shards, pos_emb: str, bias: bool) -> str:
    """A real `corpusmill train` checkpoint, its block weights scaled up so greedy decoding does not just
    repeat the last token (a few training steps leave the tied embedding dominant)."""
    out = tmp_path / f"model-{pos_emb}"
    train("tiny", dict(data_dir=str(shards), out_dir=str(out), seq_len=64, batch_size=4, max_steps=2, eval_interval=0,
                       eval_batches=1, threads=1, plot=False, quiet=True, n_embd=64, n_head=4, pos_emb=pos_emb,
                       bias=bias))
    ck = torch.load(out / "ckpt.pt", weights_only=False)
    g = torch.Generator().manual_seed(0)
    for k, v in ck["model"].items():
        if k.startswith("blocks.") and v.dim() >= 1:
            ck["model"][k] = v * 8 + (0.05 * torch.randn(v.shape, generator=g) if v.dim() == 1 else 0)
    torch.save(ck, out / "ckpt.pt")
    return str(out)


@pytest.mark.parametrize("pos_emb,bias,arch", [("learned", False, "GPT2LMHeadModel"), ("rotary", True, "GPTNeoXForCausalLM")])
def test_export_loads_in_transformers_with_identical_logits_and_greedy_text(tmp_path, tokenizer, capsys, pos_emb, bias, arch):
    tok_file, shards = tokenizer
    ckpt = _checkpoint(tmp_path, shards, pos_emb, bias)
    out = tmp_path / "hf"
    assert main(["export", ckpt, str(out), "--tokenizer", str(tok_file)]) == 0
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    capsys.readouterr()

    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    hft = transformers.AutoTokenizer.from_pretrained(out)
    assert type(hf).__name__ == arch
    assert hft.pad_token == "<|endoftext|>" and hft.pad_token_id == hf.config.pad_token_id

    ours, meta = load_model(ckpt)
    V = meta["vocab_size"]
    ids = torch.randint(0, V, (3, 64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = ours(ids)[0][..., :V]
        b = hf(ids).logits
    diff = (a - b).abs().max().item()
    assert b.shape == a.shape and diff < 1e-5, f"max abs logit diff {diff}"

    prompt = "the quick"
    assert main(["sample", "--checkpoint", ckpt, "--tokenizer", str(tok_file), "--prompt", prompt,
                 "--max-new-tokens", "30", "--temperature", "0", "--json"]) == 0
    sampled = json.loads(capsys.readouterr().out)
    enc = hft(prompt, return_tensors="pt")
    assert enc.input_ids[0].tolist() == sampled["prompt_ids"]
    with torch.no_grad():
        gen = hf.generate(**enc, max_new_tokens=30, do_sample=False)[0].tolist()
    new = gen[len(sampled["prompt_ids"]):]
    eos = hft.eos_token_id
    # transformers stops at <|endoftext|>; corpusmill sample goes on: equal up to there
    assert new == sampled["new_ids"][: len(new)] and (len(new) == 30 or new[-1] == eos)
    assert len(set(new)) > 3, "degenerate greedy output: the comparison would prove little"
    if len(new) == 30:
        assert hft.decode(gen) == sampled["text"]


def test_export_refuses_an_existing_directory_and_a_missing_tokenizer(tmp_path, tokenizer, capsys):
    tok_file, shards = tokenizer
    ckpt = _checkpoint(tmp_path, shards, "learned", False)
    (tmp_path / "taken").mkdir()
    assert main(["export", ckpt, str(tmp_path / "taken"), "--tokenizer", str(tok_file)]) == 2
    assert main(["export", ckpt, str(tmp_path / "new"), "--tokenizer", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "already exists" in err[0] and "nope.json" in err[1]
    assert not (tmp_path / "new").exists()
