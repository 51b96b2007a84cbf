"""trainer/sample.py: greedy speculative decoding gives exactly the greedy tokens; sampled speculative
decoding keeps the target's distribution; `corpusmill sample` decodes with a tokenizer.json."""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np
import pytest
import torch

from corpusmill.trainer.data import write_token_dir
from corpusmill.trainer.model import GPT, GPTConfig
from corpusmill.trainer.sample import _process, generate, speculative_generate
from corpusmill.trainer.train import train


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """train(threads=1) and these tests set torch's process-wide thread count: give it back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def model(seed, n_layer=2, n_embd=64, pos_emb="learned", vocab=50, seq_len=96, gain=10.0) -> GPT:
    """A random GPT whose block weights are scaled up by ``gain``: at the usual init scale the tied
    embedding dominates and greedy decoding just repeats the last token (every draft would agree)."""
    torch.manual_seed(seed)
    m = GPT(GPTConfig(vocab_size=vocab, seq_len=seq_len, n_layer=n_layer, n_head=2, n_embd=n_embd, pos_emb=pos_emb))
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() >= 2 and name.startswith("blocks."):
                p.mul_(gain)
    return m.eval()


def perturbed(m: GPT, scale: float, seed: int) -> GPT:
    """A copy of m with noise on every weight: agrees with m on many (not all) greedy choices."""
    d = copy.deepcopy(m)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in d.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale * p.std().clamp_min(1e-3))
    return d


@pytest.mark.parametrize("pos_emb", ["learned", "rotary"])
def test_speculative_greedy_equals_greedy(pos_emb):
    torch.set_num_threads(1)
    target = model(0, pos_emb=pos_emb)
    drafts = {
        "identical": copy.deepcopy(target),
        "close": perturbed(target, 0.1, 1),
        "unrelated": model(5, n_layer=1, n_embd=32, pos_emb=pos_emb),
    }
    rng = np.random.default_rng(0)
    rates = {}
    for name, draft in drafts.items():
        for k in (1, 4):
            for plen in (1, 9):
                prompt = rng.integers(0, 50, plen).tolist()
                want = generate(target, prompt, 60, temperature=0)
                got, stats = speculative_generate(target, draft, prompt, 60, num_draft=k, temperature=0)
                assert got == want, (name, k, plen)
                assert len(got) == plen + 60
                rates.setdefault(name, []).append(stats["acceptance_rate"])
    assert min(rates["identical"]) == 1.0  # everything accepted: ~k+1 tokens per target forward
    partial = [r for r in rates["close"] + rates["unrelated"] if 0 < r < 1]
    assert partial, rates  # some drafts were cut short: the rollback path ran too


def test_speculative_respects_eos_and_padded_vocab():
    target = model(0, vocab=64)
    draft = perturbed(target, 0.3, 2)
    prompt = [1, 2, 3]
    plain = generate(target, prompt, 40, temperature=0, vocab_size=50)
    assert max(plain[3:]) < 50  # ids of the padded tail are never produced
    spec, _ = speculative_generate(target, draft, prompt, 40, num_draft=4, temperature=0, vocab_size=50)
    assert spec == plain
    eos = plain[10]
    cut = plain[: plain.index(eos, 3) + 1]
    assert generate(target, prompt, 40, temperature=0, vocab_size=50, eos_id=eos) == cut
    assert speculative_generate(target, draft, prompt, 40, temperature=0, vocab_size=50, eos_id=eos)[0] == cut


def test_generate_beyond_seq_len_and_speculative_cap():
    m = model(0, seq_len=16)
    out = generate(m, [1, 2, 3], 40, temperature=0)  # rebuilds the cache past 16 positions
    assert len(out) == 43
    with pytest.warns(UserWarning, match="max_new_tokens cut"):
        spec, _ = speculative_generate(m, copy.deepcopy(m), [1, 2, 3], 40, temperature=0)
    assert spec == out[:16]


def test_speculative_sampling_keeps_the_target_distribution():
    """Tokens 1 and 2 after the prompt, over 1,500 seeded runs: their frequencies match the target's
    exact probabilities (TV distance < 0.06; the sampling noise is ~0.02), though the draft differs."""
    torch.set_num_threads(1)
    target, draft = model(0, vocab=6, n_embd=32), model(3, vocab=6, n_embd=32)
    prompt, temp = [1, 4, 2], 1.5
    with torch.no_grad():
        p1 = _process(target(torch.tensor([prompt]))[0][0, -1], temp, None, None).numpy()
    g = torch.Generator().manual_seed(0)
    first, accepted, drafted = np.zeros(6), 0, 0
    for _ in range(1500):
        out, st = speculative_generate(target, draft, prompt, 2, num_draft=1, temperature=temp, generator=g)
        first[out[3]] += 1
        accepted, drafted = accepted + st["accepted"], drafted + st["drafted"]
    assert 0.5 * np.abs(first / first.sum() - p1).sum() < 0.06
    assert 0 < accepted < drafted  # both the accept and the resample branch ran
    same, _ = speculative_generate(target, copy.deepcopy(target), prompt, 30, num_draft=4, temperature=0.9,
                                   top_k=3, generator=torch.Generator().manual_seed(1))
    assert len(same) == 33


def test_sample_cli_with_tokenizer_json(tmp_path, capsys):
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = ["the quick brown fox jumps over the lazy dog. " * 3, "a tiny corpus for a tiny tokenizer, the end."] * 20
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.save(str(tmp_path / "tokenizer.json"))
    V = tok.get_vocab_size()
    ids = np.concatenate([tok.encode(t).ids for t in text])
    d = write_token_dir(tmp_path / "tok", [ids], [ids], vocab_size=V)
    common = dict(data_dir=str(d), seq_len=32, batch_size=4, max_steps=3, eval_interval=0, eval_batches=1,
                  threads=1, plot=False, quiet=True)
    train("tiny", dict(common, out_dir=str(tmp_path / "target"), n_embd=64))
    train("tiny", dict(common, out_dir=str(tmp_path / "draft"), n_layer=1, n_embd=32))

    from corpusmill.trainer.cli import add_subcommands

    p = argparse.ArgumentParser()
    add_subcommands(p.add_subparsers())
    base = ["sample", "--checkpoint", str(tmp_path / "target"), "--tokenizer", str(tmp_path / "tokenizer.json"),
            "--prompt", "the quick", "--max-new-tokens", "12", "--temperature", "0", "--json"]
    outs = []
    for extra in ([], ["--draft-checkpoint", str(tmp_path / "draft"), "--speculative", "--num-draft", "3"]):
        args = p.parse_args(base + extra)
        assert args.func(args) == 0
        outs.append(json.loads(capsys.readouterr().out))
    plain, spec = outs
    assert plain["new_ids"] == spec["new_ids"] and len(plain["new_ids"]) == 12
    assert plain["text"].startswith("the quick") and plain["text"] == tok.decode(plain["prompt_ids"] + plain["new_ids"])
    assert "acceptance_rate" in spec["stats"]
    args = p.parse_args(base[:-3] + ["--temperature", "1.0", "--top-k", "5"])  # sampled, plain text out
    assert args.func(args) == 0
    assert capsys.readouterr().out.startswith("the quick")
