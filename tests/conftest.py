"""Shared fixtures: small real diffusers/transformers models built from configs (random weights)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[2] / "shared"


class DispatchedOperators(TorchDispatchMode):
    """Records every operator that reaches dispatch inside the block, in order (`seen`)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.append(func)
        return func(*args, **(kwargs or {}))


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    path = SHARED / "benchmarks"
    if not path.is_dir():
        pytest.skip("../shared/benchmarks is not available")
    return path


def _bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable character table of GPT-2/CLIP byte-level BPE."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars, n = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars), strict=False))


@pytest.fixture(scope="session")
def clip_tokenizer(tmp_path_factory):
    """The real 49,408-token SD CLIP tokenizer, built offline from open-clip-torch's BPE file."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        pytest.skip("open-clip-torch (source of the CLIP BPE vocabulary) is not installed")
    bpe_path = Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(bpe_path) as handle:
        merges = handle.read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    vocab = list(_bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(merge.split()) for merge in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder = tmp_path_factory.mktemp("clip_tokenizer")
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<|endoftext|>", model_max_length=77
    )
    assert len(tokenizer) == 49408
    return tokenizer


def build_tiny_pipeline(tokenizer=None, seed: int = 0):
    """A StableDiffusionPipeline small enough for CPU tests: 8x8 latents, decoder cross-attention
    at 4x4 (coarse) and 8x8 (middle), a 2-layer CLIP text encoder, a 2x AutoencoderKL."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from infsplign_scene.lab.shapes.model import build_tokenizer
    from infsplign_scene.lab.testing import assemble_pipeline

    tokenizer = tokenizer or build_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=16,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
            pad_token_id=tokenizer.pad_token_id or 0,
        )
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=16,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, steps_offset=1
    )
    pipe = assemble_pipeline(vae, text_encoder, tokenizer, unet, scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def tiny_pipe():
    return build_tiny_pipeline()


def objective_for(scenes, policy: str = "keep"):
    """The objective of prompts or graphs, through the library's stages (load, analyse, compile)."""
    from infsplign_scene import analyze, compile_objective
    from infsplign_scene.parsing import load_scene

    scenes = scenes if isinstance(scenes, list) else [scenes]
    return compile_objective([analyze(load_scene(scene), policy=policy) for scene in scenes])
