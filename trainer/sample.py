"""Decoding from a trained GPT: plain sampling / greedy, and speculative decoding with a draft model.

Speculative decoding (Leviathan et al. 2023; Chen et al. 2023): a small draft model proposes ``k``
tokens one by one, the target model scores all of them in ONE forward pass, and the longest prefix
the target agrees with is kept, plus one token from the target itself. With ``temperature == 0``
"agrees" means "is the target's argmax", so the output is exactly the target's greedy decoding; with
``temperature > 0`` the accept/resample rule keeps the target's sampling distribution exactly.
It pays off when a target forward over k + 1 tokens costs about as much as over one (decoding is
bound by reading weights, not by arithmetic) and the draft is much cheaper than the target.
"""

from __future__ import annotations

import warnings

import torch

from corpusmill.trainer.model import GPT, KVCache


def _process(logits: torch.Tensor, temperature: float, top_k: int | None, vocab_size: int | None) -> torch.Tensor:
    """Last-dim logits -> probabilities after masking padded ids, temperature and top-k."""
    logits = logits.float()
    if vocab_size is not None and vocab_size < logits.size(-1):
        logits[..., vocab_size:] = -float("inf")
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    return torch.softmax(logits, dim=-1)


def _pick(logits: torch.Tensor, temperature: float, top_k: int | None, vocab_size: int | None, generator) -> int:
    """Next token from one position's logits: argmax when temperature == 0, else a sample."""
    if temperature == 0:
        if vocab_size is not None and vocab_size < logits.size(-1):
            logits = logits[..., :vocab_size]
        return int(torch.argmax(logits, dim=-1))
    probs = _process(logits, temperature, top_k, vocab_size)
    return int(torch.multinomial(probs, 1, generator=generator))


def _device(model: GPT):
    return next(model.parameters()).device


def _dtype(model: GPT):
    return next(model.parameters()).dtype


@torch.no_grad()
def generate(
    model: GPT,
    prompt: list[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    vocab_size: int | None = None,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Prompt + up to ``max_new_tokens`` tokens, one target forward per token (with a KV cache).

    When the context reaches the model's seq_len the cache is rebuilt from the last seq_len / 2
    tokens (the model never sees more than seq_len positions).
    """
    if not prompt:
        raise ValueError("empty prompt")
    model.eval()
    dev, cap = _device(model), model.cfg.seq_len
    tokens = list(prompt)
    cache = KVCache(model.cfg, capacity=cap, device=dev, dtype=_dtype(model))
    feed = tokens[-cap:]
    for _ in range(max_new_tokens):
        if cache.pos + len(feed) > cap:  # full: restart the cache from the recent context
            cache.pos = 0
            feed = tokens[-(cap // 2) :]
        logits, _ = model(torch.tensor([feed], device=dev), cache=cache)
        nxt = _pick(logits[0, -1], temperature, top_k, vocab_size, generator)
        tokens.append(nxt)
        feed = [nxt]
        if eos_id is not None and nxt == eos_id:
            break
    return tokens


@torch.no_grad()
def speculative_generate(
    target: GPT,
    draft: GPT,
    prompt: list[int],
    max_new_tokens: int,
    num_draft: int = 4,
    temperature: float = 0.0,
    top_k: int | None = None,
    vocab_size: int | None = None,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[list[int], dict]:
    """Speculative decoding; returns (prompt + new tokens, stats).

    Invariant between rounds: ``seq`` holds every token so far; the target's cache holds all but
    the last one (the "pending" token), the draft's cache a prefix of ``seq``.
    """
    if not prompt:
        raise ValueError("empty prompt")
    if target.cfg.vocab_size != draft.cfg.vocab_size:
        raise ValueError(f"target and draft vocabularies differ: {target.cfg.vocab_size} vs {draft.cfg.vocab_size}")
    target.eval()
    draft.eval()
    cap = min(target.cfg.seq_len, draft.cfg.seq_len)
    if len(prompt) + max_new_tokens > cap:
        new = max(cap - len(prompt), 0)
        warnings.warn(f"speculative decoding keeps the whole context: max_new_tokens cut to {new} (seq_len {cap})")
        max_new_tokens = new
    dev = _device(target)
    tcache = KVCache(target.cfg, capacity=cap, device=dev, dtype=_dtype(target))
    dcache = KVCache(draft.cfg, capacity=cap, device=_device(draft), dtype=_dtype(draft))
    seq = list(prompt)
    if len(seq) > 1:
        target(torch.tensor([seq[:-1]], device=dev), cache=tcache)
    stats = {"rounds": 0, "drafted": 0, "accepted": 0, "target_forwards": 1 if len(seq) > 1 else 0}
    greedy = temperature == 0
    goal = len(prompt) + max_new_tokens
    while len(seq) < goal:
        # 1. draft k tokens; never more than the cache has room for (the target feeds len(seq) + k positions)
        k = max(0, min(num_draft, cap - len(seq), goal - len(seq) - 1))
        drafted, q_probs = [], []
        ddev = _device(draft)
        feed = seq[dcache.pos :]
        for _ in range(k):
            logits, _ = draft(torch.tensor([feed], device=ddev), cache=dcache)
            last = logits[0, -1].to(dev)
            if greedy:
                tok = _pick(last, 0, None, vocab_size, None)
            else:
                q = _process(last, temperature, top_k, vocab_size)
                tok = int(torch.multinomial(q, 1, generator=generator))
                q_probs.append(q)
            drafted.append(tok)
            feed = [tok]
        # 2. the target scores the pending token and all drafts at once: k + 1 next-token predictions
        tlogits, _ = target(torch.tensor([seq[-1:] + drafted], device=dev), cache=tcache)
        tlogits = tlogits[0]
        stats["target_forwards"] += 1
        # 3. keep the agreed prefix plus one token of the target's own
        n, extra = 0, None
        if greedy:
            choices = (tlogits[:, :vocab_size] if vocab_size else tlogits).argmax(dim=-1).tolist()
            while n < k and drafted[n] == choices[n]:
                n += 1
            extra = choices[n]
        else:
            p_probs = _process(tlogits, temperature, top_k, vocab_size)  # (k + 1, V)
            while n < k:
                tok = drafted[n]
                p, q = p_probs[n, tok], q_probs[n][tok]
                u = torch.rand((), generator=generator, device=p.device)
                if u * q <= p:  # accept with probability min(1, p / q)
                    n += 1
                    continue
                resid = (p_probs[n] - q_probs[n]).clamp_min(0)
                resid = resid / resid.sum() if resid.sum() > 0 else p_probs[n]
                extra = int(torch.multinomial(resid, 1, generator=generator))
                break
            if extra is None:
                extra = int(torch.multinomial(p_probs[k], 1, generator=generator))
        new = drafted[:n] + [extra]
        stats["rounds"] += 1
        stats["drafted"] += k
        stats["accepted"] += n
        # 4. roll the caches back to what is still valid
        tcache.pos = len(seq) + n  # pending token + accepted drafts
        dcache.pos = min(dcache.pos, len(seq) + n)
        seq.extend(new)
        if eos_id is not None and eos_id in new:
            seq = seq[: len(seq) - len(new) + new.index(eos_id) + 1]
            break
    seq = seq[:goal]
    stats["acceptance_rate"] = stats["accepted"] / stats["drafted"] if stats["drafted"] else 0.0
    return seq, stats
