"""A GPT decoder, small enough to read in one sitting (after Karpathy's nanoGPT).

    tokens -> token embedding (+ learned positions) -> n_layer x Block -> LayerNorm -> tied LM head

    Block(x) = x + Attention(LN(x));  x + MLP(LN(x))          (pre-norm residual blocks)

Attention is causal and goes through ``F.scaled_dot_product_attention`` (flash / memory-efficient
kernels on GPUs). Positions are either a learned table (GPT-2) or rotary embeddings applied to
queries and keys (``pos_emb="rotary"``). The output projection shares its weight with the token
embedding. A small key/value cache (:class:`KVCache`) serves decoding in trainer/sample.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int
    seq_len: int = 128  # longest context (the learned position table / rotary cache size)
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False  # biases in Linear and LayerNorm layers
    pos_emb: str = "learned"  # "learned" | "rotary"
    rope_theta: float = 10000.0


class KVCache:
    """Keys and values of the tokens seen so far, per layer: (B, n_head, capacity, head_dim) each.

    ``pos`` is the number of cached positions. Decoding rolls back rejected speculative tokens by
    simply lowering ``pos`` (later writes overwrite the stale entries).
    """

    def __init__(self, cfg: GPTConfig, batch_size: int = 1, capacity: int | None = None, device=None, dtype=None):
        hd = cfg.n_embd // cfg.n_head
        self.capacity = capacity or cfg.seq_len
        shape = (batch_size, cfg.n_head, self.capacity, hd)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.pos = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store the new keys/values after ``pos``; return all keys/values up to them."""
        T = k.size(2)
        end = self.pos + T
        if end > self.capacity:
            raise ValueError(f"KV cache full: {end} > {self.capacity} positions")
        self.k[layer][:, :, self.pos : end] = k
        self.v[layer][:, :, self.pos : end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


def rotary_tables(head_dim: int, length: int, theta: float):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float32), inv_freq)  # (T, hd/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, hd)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[i], x[i + hd/2]) by position-dependent angles (GPT-NeoX layout)."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.float() * cos + rotated.float() * sin).type_as(x)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.proj.is_residual_projection = True  # scaled init, see GPT._init_weights
        self.dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, rope=None, cache: KVCache | None = None, layer: int = 0):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        dropout = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            k, v = cache.update(layer, k, v)
            S = k.size(2)  # queries are the last T of S positions: causal mask aligned bottom-right
            mask = None if T == 1 else torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.proj.is_residual_projection = True
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x, rope=None, cache=None, layer=0):
        x = x + self.attn(self.ln_1(x), rope, cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.pos_emb not in ("learned", "rotary"):
            raise ValueError(f"pos_emb must be 'learned' or 'rotary', not {cfg.pos_emb!r}")
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.seq_len, cfg.n_embd) if cfg.pos_emb == "learned" else None
        if cfg.pos_emb == "rotary":
            cos, sin = rotary_tables(cfg.n_embd // cfg.n_head, cfg.seq_len, cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied input/output embeddings
        self.apply(self._init_weights)

    def _init_weights(self, m: nn.Module):
        if isinstance(m, nn.Linear):
            # GPT-2: residual projections scaled by 1/sqrt(2 * n_layer), two per block add to the stream
            std = 0.02 / math.sqrt(2 * self.cfg.n_layer) if getattr(m, "is_residual_projection", False) else 0.02
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None):
        """idx (B, T) token ids -> (logits (B, T, vocab), loss or None).

        With ``targets`` (B, T) the loss is the mean next-token cross-entropy (targets of -1 are
        ignored). With ``cache`` the tokens continue the cached sequence at position ``cache.pos``.
        """
        B, T = idx.shape
        start = cache.pos if cache is not None else 0
        if start + T > self.cfg.seq_len:
            raise ValueError(f"sequence of {start + T} tokens exceeds seq_len {self.cfg.seq_len}")
        x = self.wte(idx)
        rope = None
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(start, start + T, device=idx.device))
        else:
            rope = (self.rope_cos[start : start + T], self.rope_sin[start : start + T])
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, rope, cache, i)
        if cache is not None:
            cache.pos += T
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    # --- accounting --------------------------------------------------------------------------

    def num_params(self, exclude_position_embeddings: bool = False) -> int:
        """Parameter count (the tied embedding counted once)."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_position_embeddings and self.wpe is not None:
            n -= self.wpe.weight.numel()
        return n

    def estimate_flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward): 6 N + 12 L T d (PaLM, appendix B).

        N counts every weight a token multiplies (not the position table); the second term is the
        attention score and value products over a context of T tokens.
        """
        T = seq_len or self.cfg.seq_len
        N = self.num_params(exclude_position_embeddings=True)
        return 6 * N + 12 * self.cfg.n_layer * T * self.cfg.n_embd

    def configure_optimizer(self, lr: float, weight_decay: float, betas=(0.9, 0.95), device_type: str = "cpu"):
        """AdamW with weight decay on matrices and embeddings (>= 2-D) only, not on biases or norms."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        # the fused kernel (CUDA, and CPU since torch 2.4) is one pass over all parameters:
        # on these CPUs 6x faster than the default per-tensor-list ("foreach") update
        try:
            return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device_type in ("cuda", "cpu"))
        except (RuntimeError, TypeError):  # an older torch without fused AdamW for this device
            return torch.optim.AdamW(groups, lr=lr, betas=betas)
