"""Capture cross-attention maps of a diffusers UNet.

`trace(unet, latent_size, columns)` swaps a capturing processor onto the cross-attention layers
(decoder only by default) with `set_attn_processor` and restores the original processors on exit,
even on error. While the store is `active`, each layer computes softmax(QK^T/sqrt(d)) over all
text positions, as the model does (the softmax in float32, whatever the model's dtype), averages the
heads and keeps only the requested token columns.
Layers are grouped by the spatial resolution of their query, never by module names.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0

from .errors import InfsplignError
from .losses import second_copies

LayerSelection = Literal["decoder", "all"]


class AttentionStore:
    """Maps captured during one forward pass (float32), keyed by their height in latent cells.

    `columns` (LongTensor [T]) selects the text positions to keep; None keeps all of them.
    Nothing accumulates across passes: call `reset()` before each captured forward. Only the
    thread that turned capture on is captured: a forward that another thread runs meanwhile (the
    unconditional one of `cfg_forward="concurrent"`) passes through uncaptured.
    """

    def __init__(
        self, latent_size: tuple[int, int], columns: torch.Tensor | None = None, keep_features: bool = False
    ) -> None:
        self.latent_size = latent_size
        self.columns = columns
        self.keep_features = keep_features
        self._capturing_thread: int | None = None
        self.maps: dict[int, list[torch.Tensor]] = {}
        self.features: dict[int, list[torch.Tensor]] = {}

    @property
    def active(self) -> bool:
        """Whether the calling thread's forward passes are being captured."""
        return self._capturing_thread == threading.get_ident()

    @active.setter
    def active(self, value: bool) -> None:
        self._capturing_thread = threading.get_ident() if value else None

    def reset(self) -> None:
        self.maps = {}
        self.features = {}

    @contextmanager
    def capturing(self) -> Iterator[None]:
        """Capture this thread's passes into a fresh store during the block, never outside it (also on error)."""
        self.reset()
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def add(self, probs: torch.Tensor, heads: int) -> None:
        """probs: [B*heads, Q, K] attention probabilities of one layer."""
        batch_heads, queries, keys = probs.shape
        if self.columns is not None:
            probs = probs.index_select(-1, self.columns)
        probs = probs.view(batch_heads // heads, heads, queries, probs.shape[-1]).mean(dim=1)
        height, width = self._map_size(queries)
        maps = probs.transpose(1, 2).reshape(probs.shape[0], probs.shape[-1], height, width)
        self.maps.setdefault(height, []).append(maps)

    def add_features(self, hidden_states: torch.Tensor) -> None:
        """hidden_states: [B, Q, C], a layer's input (its queries' source), kept detached when
        `keep_features`: what the picture looks like where the maps are read."""
        if self.keep_features:
            height, _ = self._map_size(hidden_states.shape[1])
            self.features.setdefault(height, []).append(hidden_states.detach())

    def level_features(self, height: int) -> torch.Tensor:
        """The layers' features of one resolution side by side: [B, h*w, C_total]."""
        return torch.cat(self.features[height], dim=-1)

    def _map_size(self, queries: int) -> tuple[int, int]:
        latent_h, latent_w = self.latent_size
        factor = math.sqrt(latent_h * latent_w / queries)
        height, width = round(latent_h / factor), round(latent_w / factor)
        if height * width != queries:
            raise ValueError(f"cannot place {queries} attention queries on a {latent_h}x{latent_w} latent")
        return height, width

    def resolutions(self) -> list[int]:
        """Captured map heights, coarsest first."""
        return sorted(self.maps)

    def level(self, height: int) -> torch.Tensor:
        """Mean over the layers of one resolution: [B, T, h, w]."""
        return torch.stack(self.maps[height]).mean(dim=0)


def float32_attention_probabilities(
    attn: Attention, query: torch.Tensor, key: torch.Tensor, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """softmax(QK^T * scale + mask) as `Attention.get_attention_scores` computes it, but with the
    softmax in float32 and left there: [B*heads, Q, K].

    The loss's gradient with respect to a map grows as the map's mass shrinks (a centroid moves by
    (x - c) / mass), past float16's range for an object the model barely attends to; the softmax's
    backward multiplies it by the probabilities again, so in float32 it is back in range before it
    meets the float16 layers."""
    if attn.upcast_attention:
        query, key = query.float(), key.float()
    scores = torch.baddbmm(
        attention_mask if attention_mask is not None else query.new_empty(query.shape[0], query.shape[1], key.shape[1]),
        query,
        key.transpose(-1, -2),
        beta=0 if attention_mask is None else 1,
        alpha=attn.scale,
    )
    return scores.float().softmax(dim=-1)


class CaptureProcessor:
    """Cross-attention with explicit probabilities, handed to an `AttentionStore` while it is active."""

    def __init__(self, store: AttentionStore) -> None:
        self.store = store
        self.fallback = AttnProcessor2_0()

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        if not self.store.active or encoder_hidden_states is None:
            return self.fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs)
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = encoder_hidden_states.shape
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        self.store.add_features(hidden_states)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = float32_attention_probabilities(attn, query, key, attention_mask)
        self.store.add(probs, attn.heads)
        hidden_states = attn.batch_to_head_dim(torch.bmm(probs.to(value.dtype), value))
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


class WrappingCaptureProcessor:
    """Capture beside a processor that is not diffusers' plain one (IP-Adapter's, a user's): the
    layer's output is the wrapped processor's, unchanged; the map is computed from the same query
    and key, as that layer's attention would weigh the text."""

    def __init__(self, store: AttentionStore, inner: Any, name: str) -> None:
        self.store = store
        self.inner = inner
        self.name = name

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None, *args, **kwargs):
        if self.store.active and encoder_hidden_states is not None:
            try:
                self._capture(attn, hidden_states, encoder_hidden_states)
            except (RuntimeError, ValueError) as error:
                raise InfsplignError(
                    f"cannot read the attention map of {self.name} beside its {type(self.inner).__name__}: {error}"
                ) from None
        return self.inner(attn, hidden_states, encoder_hidden_states, *args, **kwargs)

    def _capture(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor) -> None:
        if hidden_states.ndim == 4:
            batch, channels, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        self.store.add_features(hidden_states)
        text = encoder_hidden_states
        if isinstance(text, tuple):  # IP-Adapter hands (text, image) embeddings: the map is the text's
            text = text[0]
        elif hasattr(self.inner, "num_tokens"):  # IP-Adapter's older form: image tokens after the text
            text = text[:, : text.shape[1] - self.inner.num_tokens[0]]
        if attn.norm_cross:
            text = attn.norm_encoder_hidden_states(text)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(text))
        self.store.add(float32_attention_probabilities(attn, query, key, None), attn.heads)


def cross_attention_layers(
    unet: torch.nn.Module, layers: LayerSelection = "decoder", levels: int | None = None
) -> list[str]:
    """Names (as in `unet.attn_processors`, without '.processor') of the cross-attention layers.

    The decoder is `unet.up_blocks`, coarsest block first; `levels=2` keeps the layers of the first
    two decoder blocks that have cross-attention (the coarse and middle levels the loss reads), so
    finer levels run their usual fused attention. The selection is structural, never by name."""
    if layers == "decoder":
        roots = [(f"up_blocks.{i}", block) for i, block in enumerate(unet.up_blocks)]
    else:
        roots = list(unet.named_children())
    names, used_levels = [], 0
    for root_name, root in roots:
        found = [
            f"{root_name}.{name}" if name else root_name
            for name, module in root.named_modules()
            if isinstance(module, Attention) and module.is_cross_attention
        ]
        if found:
            if levels is not None and used_levels >= levels:
                break
            names += found
            used_levels += 1
    if not names:
        raise ValueError("this UNet has no cross-attention layers in the selected part")
    return names


@contextmanager
def trace(
    unet: torch.nn.Module,
    latent_size: tuple[int, int],
    columns: torch.Tensor | None = None,
    layers: LayerSelection = "decoder",
    levels: int | None = None,
    keep_features: bool = False,
) -> Iterator[AttentionStore]:
    """Install capturing processors on the chosen cross-attention layers for the duration of the block
    (`keep_features`: the store keeps each layer's input beside its map, `AttentionStore.add_features`).

    >>> with trace(pipe.unet, (64, 64), columns) as store:
    ...     with store.capturing():
    ...         pipe.unet(latents, t, embeddings)
    ...     coarse = store.level(store.resolutions()[0])
    """
    store = AttentionStore(latent_size, columns, keep_features)
    original = dict(unet.attn_processors)
    processor = CaptureProcessor(store)
    replaced = dict(original)
    for name in cross_attention_layers(unet, layers, levels):
        key = f"{name}.processor"
        plain = type(original[key]) in (AttnProcessor2_0, AttnProcessor)
        # diffusers' own attention is recomputed with explicit probabilities; anything else is wrapped
        replaced[key] = processor if plain else WrappingCaptureProcessor(store, original[key], name)
    unet.set_attn_processor(replaced)
    try:
        yield store
    finally:
        unet.set_attn_processor(original)


def _detach(value):
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (tuple, list)):
        return type(value)(_detach(v) for v in value)
    return value


@contextmanager
def no_graph_after(unet: torch.nn.Module, levels: int = 2) -> Iterator[None]:
    """Record no autograd graph in the decoder blocks after the first `levels` blocks with
    cross-attention (and in the output head): the loss reads nothing there, so the backward never
    visits them, and their activations need not be kept. The gradient is unchanged."""
    seen, handles = 0, []
    for block in unet.up_blocks:
        if seen >= levels:
            handles.append(block.register_forward_pre_hook(lambda m, a, k: (_detach(a), _detach(k)), with_kwargs=True))
        elif any(isinstance(m, Attention) and m.is_cross_attention for m in block.modules()):
            seen += 1
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def object_second_copies(
    store: AttentionStore, levels: dict[int, torch.Tensor], conditional_rows: int | None = None
) -> torch.Tensor | None:
    """`losses.second_copies` on the finest level, [B, K], when the store kept the layers' inputs;
    else None."""
    if not store.keep_features:
        return None
    finest = max(levels)
    features = store.level_features(finest)
    if conditional_rows is not None:
        features = features[-conditional_rows:]
    return second_copies(levels[finest].detach(), features)
