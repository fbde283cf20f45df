"""Building blocks of the generator: RoPE, time embedding, MLP, adaLN-Zero blocks with joint attention.

Letters: B batch, N tokens, H heads, Dh head size, D model width. Conditioning vectors ``c`` are (B, 1, D),
one per sample; the audio stream adds a per-token modulation from the sync features of its own frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ---- rotary position embedding with fractional positions ----


def rope_angles(positions: torch.Tensor, head_dim: int, base: float) -> torch.Tensor:
    """Rotation angles of RoPE (Su et al. 2021) at any real-valued positions.

    Args:
        positions: (B, N) positions in audio latent frames (fractional for visual tokens).
        head_dim: channels per head (even).
        base: frequency base.

    Returns:
        (B, N, head_dim / 2) angles; channel pair i turns by ``position * base ** (-2i / head_dim)``.
    """
    freqs = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (Dh/2,)
    # float64 keeps the phase of long clips exact before the cast back
    return (positions.to(torch.float64)[..., None] * freqs.to(positions.device)).float()


def rope_tables(
    angles: torch.Tensor, enabled: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables for :func:`apply_rope` from :func:`rope_angles`.

    Args:
        angles: (B, N, Dh/2).
        enabled: (B, N) bool, False for tokens without a position (text): they get the identity rotation.

    Returns:
        cos and sin, each (B, 1, N, Dh/2) (the 1 broadcasts over heads).
    """
    if enabled is not None:
        angles = angles * enabled[..., None]
    return angles.cos()[:, None], angles.sin()[:, None]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (i, i + Dh/2) of ``x`` (B, H, N, Dh) by the tabled angles."""
    x1, x2 = x.chunk(2, dim=-1)  # (B, H, N, Dh/2) each
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


# ---- embeddings and small layers ----


class TimestepEmbedding(nn.Module):
    """Flow time t in [0, 1] -> (B, D): sinusoidal features (DiT, Peebles & Xie 2023) and an MLP."""

    def __init__(self, width: int, *, freq_dim: int = 256, max_period: float = 10_000.0):
        super().__init__()
        self.freq_dim = freq_dim
        self.max_period = max_period
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) flow times -> (B, D)."""
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(self.max_period) * torch.arange(half, device=t.device) / half)
        args = 1000.0 * t.float()[:, None] * freqs  # t scaled to [0, 1000] like a diffusion step index
        return self.mlp(torch.cat((args.cos(), args.sin()), dim=-1))


class MLP(nn.Module):
    """Position-wise feed-forward: Linear -> GELU -> Linear."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact GELU: 4x faster than the tanh form on CPU


class ConvMLP(nn.Module):
    """Temporal projection (B, T, C_in) -> (B, T, D): two 1-D convolutions with SiLU between.

    The kernel gives each frame a little local context (odd kernel, same length; 1 = per-frame MLP).
    With a mask, frames outside it are zeroed before each convolution, so a padded sequence gives on its
    valid frames exactly what the unpadded one gives.
    """

    def __init__(self, c_in: int, width: int, kernel: int):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, width, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(width, width, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C_in) frames and an optional (B, T) bool mask -> (B, T, D)."""
        x = x.transpose(1, 2)  # (B, T, C) -> (B, C, T)
        m = None if mask is None else mask[:, None].to(x.dtype)  # (B, 1, T)
        if m is not None:
            x = x * m
        h = F.silu(self.conv1(x))
        if m is not None:
            h = h * m
        return self.conv2(h).transpose(1, 2)  # (B, D, T) -> (B, T, D)


def _rms_norm(x: torch.Tensor, norm: nn.RMSNorm) -> torch.Tensor:
    """``norm(x)`` in the dtype of ``x`` (under bf16 autocast the fused kernel needs matching dtypes)."""
    return F.rms_norm(x, norm.normalized_shape, norm.weight.to(x.dtype), norm.eps)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x * (1 + scale) + shift`` with (B, 1 or N, D) shift and scale."""
    return torch.addcmul(shift, x, 1 + scale)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Multi-head attention over (B, H, N, Dh) with an optional (B, N) key mask (True = attend).

    Returns:
        (B, N, H * Dh).
    """
    attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, N)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, N, Dh)
    B, H, N, Dh = out.shape
    return out.transpose(1, 2).reshape(B, N, H * Dh)  # (B, N, D)


# ---- transformer blocks ----


class Stream(nn.Module):
    """One token stream of a block: adaLN-Zero around attention and MLP (DiT), with QK-norm.

    The modulation is ``W silu(c) + b`` for per-sample conditioning ``c``, plus ``W silu(s_n)`` for a
    per-token track ``s`` (the audio stream's sync features). Splitting the two makes the per-token part
    independent of the flow time, so it is computed once per clip instead of at every ODE step; per-token
    adaLN is otherwise a third of the audio stream's cost.

    ``pre_only`` streams stop after producing q/k/v (the condition stream of the last joint block, whose
    output nobody reads).
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float, *, pre_only: bool = False):
        super().__init__()
        self.heads = heads
        self.pre_only = pre_only
        head_dim = width // heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.q_norm = nn.RMSNorm(head_dim, eps=1e-6)  # QK-norm keeps attention logits bounded (SD3)
        self.k_norm = nn.RMSNorm(head_dim, eps=1e-6)
        n_mod = 2 if pre_only else 6
        self.modulation = nn.Linear(width, n_mod * width)
        nn.init.zeros_(self.modulation.weight)  # adaLN-Zero: each block starts as the identity
        nn.init.zeros_(self.modulation.bias)
        if not pre_only:
            self.proj = nn.Linear(width, width)
            self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
            self.mlp = MLP(width, round(width * mlp_ratio))

    def token_modulation(self, s: torch.Tensor) -> torch.Tensor:
        """Per-token part of the modulation from a (B, N, D) conditioning track (cacheable per clip)."""
        return F.linear(F.silu(s), self.modulation.weight)  # (B, N, n_mod * D)

    def pre_attention(
        self,
        x: torch.Tensor,
        c: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        token_mod: torch.Tensor | None = None,
    ) -> tuple[tuple[torch.Tensor, ...], list[torch.Tensor]]:
        """Normalise, modulate and project the tokens.

        Args:
            x: (B, N, D) tokens.
            c: (B, 1, D) per-sample conditioning.
            cos, sin: (B, 1, N, Dh/2) RoPE tables of these tokens.
            token_mod: (B, N, n_mod * D) per-token modulation from :meth:`token_modulation`, or None.

        Returns:
            (q, k, v), each (B, H, N, Dh), and the remaining modulation tensors for :meth:`post_attention`.
        """
        mod = self.modulation(F.silu(c))  # (B, 1, n_mod * D)
        if token_mod is not None:
            mod = mod + token_mod  # (B, N, n_mod * D)
        mods = list(mod.chunk(2 if self.pre_only else 6, dim=-1))
        h = modulate(self.norm1(x), mods[0], mods[1])
        B, N, D = h.shape
        qkv = (
            self.qkv(h).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        )  # (3, B, H, N, Dh)
        q, k, v = qkv.unbind(0)
        q = apply_rope(_rms_norm(q, self.q_norm), cos, sin)
        k = apply_rope(_rms_norm(k, self.k_norm), cos, sin)
        return (q, k, v), mods[2:]

    def post_attention(self, x: torch.Tensor, attn: torch.Tensor, mods: list[torch.Tensor]) -> torch.Tensor:
        """Gated residual updates from the attention output (B, N, D) and the MLP."""
        gate_attn, shift_mlp, scale_mlp, gate_mlp = mods
        x = x + gate_attn * self.proj(attn)
        return x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class JointBlock(nn.Module):
    """MM-DiT block (SD3, Esser et al. 2024; MMAudio): audio and condition tokens attend jointly.

    Each stream has its own weights; visual and text tokens share the condition stream (they are told
    apart by their input projections, type embeddings and RoPE: text tokens have no position).
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float, *, last: bool = False):
        super().__init__()
        self.audio = Stream(width, heads, mlp_ratio)
        self.cond = Stream(width, heads, mlp_ratio, pre_only=last)

    def forward(
        self,
        audio: torch.Tensor,
        cond: torch.Tensor,
        c: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
        sync_mod: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One joint block.

        Args:
            audio: (B, Na, D) audio tokens; cond: (B, Nc, D) visual + text tokens.
            c: (B, 1, D) per-sample conditioning (both streams).
            rope: cos/sin tables (B, 1, Na + Nc, Dh/2) of the joint sequence (audio first).
            mask: (B, Na + Nc) key mask or None when every token is valid.
            sync_mod: (B, Na, 6D) per-token modulation of the audio stream (``self.audio.token_modulation``).

        Returns:
            Updated (audio, cond); cond is returned unchanged by the last block.
        """
        Na = audio.shape[1]
        cos, sin = rope
        (qa, ka, va), mods_a = self.audio.pre_attention(audio, c, cos[:, :, :Na], sin[:, :, :Na], sync_mod)
        (qc, kc, vc), mods_c = self.cond.pre_attention(cond, c, cos[:, :, Na:], sin[:, :, Na:])
        q, k, v = torch.cat((qa, qc), 2), torch.cat((ka, kc), 2), torch.cat((va, vc), 2)  # (B, H, N, Dh)
        out = attention(q, k, v, mask)  # (B, Na + Nc, D)
        audio = self.audio.post_attention(audio, out[:, :Na], mods_a)
        if not self.cond.pre_only:
            cond = self.cond.post_attention(cond, out[:, Na:], mods_c)
        return audio, cond


class AudioBlock(nn.Module):
    """DiT block over the audio tokens alone, with per-token adaLN conditioning."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.stream = Stream(width, heads, mlp_ratio)

    def forward(
        self,
        x: torch.Tensor,
        c: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
        sync_mod: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One audio block.

        Args:
            x: (B, Na, D) tokens.
            c: (B, 1, D) per-sample conditioning.
            rope: cos/sin tables (B, 1, Na, Dh/2).
            mask: (B, Na) key mask or None.
            sync_mod: (B, Na, 6D) per-token modulation (``self.stream.token_modulation``), or None.

        Returns:
            (B, Na, D).
        """
        (q, k, v), mods = self.stream.pre_attention(x, c, *rope, sync_mod)
        return self.stream.post_attention(x, attention(q, k, v, mask), mods)


class FinalLayer(nn.Module):
    """adaLN + linear read-out to the latent channels, zero-initialised (the net starts by predicting 0)."""

    def __init__(self, width: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Linear(width, 2 * width)
        self.linear = nn.Linear(width, out_dim)
        for layer in (self.modulation, self.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def token_modulation(self, s: torch.Tensor) -> torch.Tensor:
        """Per-token part of the modulation from a (B, N, D) track (as :meth:`Stream.token_modulation`)."""
        return F.linear(F.silu(s), self.modulation.weight)  # (B, N, 2D)

    def forward(self, x: torch.Tensor, c: torch.Tensor, sync_mod: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N, D) tokens, (B, 1, D) conditioning, (B, N, 2D) per-token modulation -> (B, N, out_dim)."""
        mod = self.modulation(F.silu(c))
        if sync_mod is not None:
            mod = mod + sync_mod
        shift, scale = mod.chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))
