"""Cost of one guided denoising step on the SD 1.4 or SDXL UNet architecture (random weights).

    python benchmarks/guided_step.py [--family sd14|sdxl] [--quick] [--json PATH]

In one process, alternating the variants and repeating them, it times:
1. plain CFG step: one batch-2 forward without grad (the unit);
2. our guided step as `GuidanceConfig()` runs it (`guided`): unconditional forward without grad,
   conditional forward with grad on the latents capturing only the objects' token columns at
   native resolution on the coarse and middle decoder levels, no autograd graph in the decoder
   blocks after them, backward to the latents only (weights frozen); on CPU the two forwards run
   side by side in two threads (`cfg_forward="concurrent"`, the default), and `guided_split` runs
   them one after the other; also under bfloat16 autocast, and with both CFG halves in one
   graph-recording batch (`guided_joint`, `cfg_forward="joint"`) (neither with `--quick` on CPU);
3. the authors' step structure, reimplemented: the CFG batch of 2 run with grad, probabilities of
   all 77 tokens on their layers (SD: the six up_blocks.1/2 cross-attention layers; SDXL:
   up_blocks.0.attentions.1.transformer_blocks.{1,2,3}) resized to 64x64, backward through both
   halves (weights frozen as well, so the comparison is about structure); on SDXL also our step
   capturing only the authors' three coarse layers (`guided_authors_layers`): what reading all 30
   coarse layers costs;
4. our guided step with R = 1, 4, 16, 32 relations over 8 objects;
5. the parts of our guided step: the unconditional forward, the conditional forward recording
   the graph, and the backward, each against the plain step (where the time goes);
6. on CPU (not with `--quick`), the plain and the guided step again with PyTorch's own
   convolution kernels instead of oneDNN's (`torch.backends.mkldnn.enabled = False`);
7. on CUDA, the plain step, both guided steps and the authors' structure replayed from CUDA graphs
   (no launch cost);
and, in a fresh child process, peak memory (RSS on CPU, `torch.cuda.max_memory_allocated` on
GPU) for 5 vs 50 guided steps and 1 vs 32 relations (one run: 50 steps with 1 relation, the
peaks after its 5th and its last step, then 5 steps with 32), and in another for the split step
on CPU and the joint step on CUDA. Medians and their ratios go to a table and to JSON, each timing
ratio also as the median of its per-round ratios (`paired`: robust to a machine whose speed
drifts between rounds).
SDXL (`--family sdxl`) is conditioned on its pooled text embedding and time ids as well; its 2.6
billion parameters need about 10 GB in float32, so on a 24 GB CPU machine time it with
`--time-only` and measure memory in a separate `--memory-only` run.
Latents are 32x32 on CPU, 64x64 in float16 on a GPU; `--quick` on CPU measures the peak memory
at latent 8 (a leak of a step's graph, maps or trace would show at any size). The timing process
has glibc keep the memory it frees (`keep_freed_memory`; `--allocator system` leaves malloc as it
is): otherwise a variant's page faults depend on which variants ran before it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor2_0

from infsplign_scene import cuda_graphs
from infsplign_scene.analysis import analyze
from infsplign_scene.attention import cross_attention_layers, no_graph_after, trace
from infsplign_scene.compile import compile_objective
from infsplign_scene.compile import statistics as statistics_of
from infsplign_scene.guidance import GuidanceConfig
from infsplign_scene.lab.testing import SD14_UNET_CONFIG, SDXL_UNET_CONFIG
from infsplign_scene.losses import centroids_and_variances, spatial_loss
from infsplign_scene.scene import SceneGraph
from infsplign_scene.step import frozen_weights, guided_step, object_maps

DEFAULT_CFG_FORWARD = GuidanceConfig().cfg_forward
UNET_CONFIGS = {"sd14": SD14_UNET_CONFIG, "sdxl": SDXL_UNET_CONFIG}
# The authors' captured layers (without '.attn2'), per family
REFERENCE_LAYERS = {
    "sd14": [f"up_blocks.{b}.attentions.{a}.transformer_blocks.0" for b in (1, 2) for a in range(3)],
    "sdxl": [f"up_blocks.0.attentions.1.transformer_blocks.{k}" for k in (1, 2, 3)],
}


def setup(latent: int, device: str, dtype: torch.dtype, family: str = "sd14"):
    """The UNet, a DDIM schedule, text embeddings and latents; and SDXL's added conditions
    (pooled text embedding and time ids; None on SD)."""
    from diffusers import DDIMScheduler, UNet2DConditionModel

    torch.manual_seed(0)
    config = UNET_CONFIGS[family]
    unet = UNet2DConditionModel(**config).to(device).eval()
    if dtype != torch.float32:
        unet = unet.to(dtype)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)
    scheduler.set_timesteps(50)
    width = config["cross_attention_dim"]
    cond = torch.randn(1, 77, width, device=device, dtype=dtype)
    uncond = torch.randn(1, 77, width, device=device, dtype=dtype)
    latents = torch.randn(1, 4, latent, latent, device=device, dtype=dtype)
    added = None
    if family == "sdxl":
        size = latent * 8
        added = {
            "text_embeds": torch.randn(1, 1280, device=device, dtype=dtype),
            "time_ids": torch.tensor([[size, size, 0, 0, size, size]], device=device, dtype=dtype),
        }
    return unet, scheduler, cond, uncond, latents, added


def doubled(added: dict | None) -> dict | None:
    """Added conditions for a CFG batch of 2."""
    return None if added is None else {key: torch.cat([value] * 2) for key, value in added.items()}


def relation_graph(relations: int, objects: int = 8) -> SceneGraph:
    """R distinct, consistent relations over 8 objects (2 objects when R = 1).

    Object k stands k-th from the left and k-th from the top, so every x-order, y-order and "near"
    statement about a pair holds together: nothing is dropped as a contradiction or merged as a
    duplicate, and the objective guides exactly R relations (up to 3 per pair: 84 over 8 objects)."""
    count = 2 if relations == 1 else objects
    phrasings = {  # per kind, alternating between the two ways of saying it
        "x": [("left_of", False), ("right_of", True)],
        "y": [("above", False), ("below", True)],
        "near": [("near", False)],
    }
    candidates = [(a, b, kind) for a in range(count) for b in range(a + 1, count) for kind in phrasings]
    if relations > len(candidates):
        raise ValueError(f"at most {len(candidates)} distinct relations over {count} objects, asked for {relations}")
    order = torch.randperm(len(candidates), generator=torch.Generator().manual_seed(relations))[:relations]
    chosen = []
    for n, index in enumerate(order.tolist()):
        a, b, kind = candidates[index]
        predicate, reversed_ = phrasings[kind][n % len(phrasings[kind])]
        subject, obj = (b, a) if reversed_ else (a, b)
        chosen.append({"subject": f"o{subject}", "predicate": predicate, "object": f"o{obj}"})
    return SceneGraph(objects=[{"id": f"o{k}", "name": f"thing{k}"} for k in range(count)], relations=chosen)


def token_matrix(objective, device: str | torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Averaging matrix [1, K, K] and captured columns [K] on `device`: object k stands on text
    position k + 1 (after the start token)."""
    count = objective.num_objects
    return torch.eye(count, device=device).unsqueeze(0), torch.arange(1, count + 1, device=device)


def plain_step(unet, scheduler, latents, t, cond, uncond, scale=7.5, added=None):
    with torch.no_grad():
        noise = unet(
            torch.cat([latents] * 2),
            t,
            encoder_hidden_states=torch.cat([uncond, cond]),
            added_cond_kwargs=doubled(added),
        ).sample
        noise_uncond, noise_text = noise.chunk(2)
        return noise_uncond + scale * (noise_text - noise_uncond)


def our_step(
    unet,
    scheduler,
    latents,
    t,
    cond,
    uncond,
    store,
    matrix,
    objective,
    weights,
    precision="model",
    cfg_forward=DEFAULT_CFG_FORWARD,
    added=None,
):
    """The pipeline's guided step (`infsplign_scene.step.guided_step`) with CFG and the update."""
    step = guided_step(
        unet,
        scheduler,
        latents,
        t,
        cond,
        store,
        matrix,
        objective,
        weights,
        negative_embeds=uncond,
        precision=precision,
        cfg_forward=cfg_forward,
        added_cond=added,
        negative_added_cond=added,
    )
    noise_uncond = step.noise_uncond
    return noise_uncond + 7.5 * (step.noise_text - noise_uncond) + 1000 * step.grad.to(latents.dtype)


def guided_parts(
    unet, scheduler, latents, t, cond, store, matrix, objective, weights, added=None
) -> tuple[float, float]:
    """Seconds of the guided step's conditional forward (recording the graph) and of its backward."""
    with torch.enable_grad():
        started = time.perf_counter()
        guided = latents.detach().requires_grad_(True)
        with store.capturing():
            unet(scheduler.scale_model_input(guided, t), t, encoder_hidden_states=cond, added_cond_kwargs=added)
        loss = objective.evaluate(statistics_of(object_maps(store, matrix)), weights).total.sum()
        forward_done = time.perf_counter()
        torch.autograd.grad(loss, guided)
    return forward_done - started, time.perf_counter() - forward_done


class ReferenceCapture:
    """The authors' capture: all 77 token probabilities of their layers, resized to 64x64."""

    def __init__(self):
        self.maps = []

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = attn.get_attention_scores(query, key, None)
        batch = hidden_states.shape[0]
        side = int(probs.shape[1] ** 0.5)
        averaged = probs.view(batch, attn.heads, side * side, 77).mean(1).transpose(1, 2).reshape(batch, 77, side, side)
        self.maps.append(F.interpolate(averaged, size=(64, 64), mode="bilinear", antialias=True))
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        return attn.to_out[1](attn.to_out[0](out))


def reference_step(unet, scheduler, latents, t, cond, uncond, capture: ReferenceCapture, added=None):
    capture.maps = []
    with torch.enable_grad():
        guided = latents.detach().requires_grad_(True)
        noise = unet(
            torch.cat([guided] * 2),
            t,
            encoder_hidden_states=torch.cat([uncond, cond]),
            added_cond_kwargs=doubled(added),
        ).sample
        maps = torch.stack(capture.maps).mean(0)[1:]  # conditional half, [1, 77, 64, 64]
        centroids, _ = centroids_and_variances(maps[:, [2, 5]].float())
        index = torch.zeros(1, 1, dtype=torch.long, device=latents.device)
        loss = spatial_loss(centroids, index, index + 1, index, alpha=1.5, margin=0.25, near_margin=0.25).sum()
        grad = torch.autograd.grad(loss, guided)[0]
    noise_uncond, noise_text = noise.detach().chunk(2)
    return noise_uncond + 7.5 * (noise_text - noise_uncond) + 1000 * grad


def reference_processors(unet, capture, family: str = "sd14") -> dict:
    processors = dict(unet.attn_processors)
    for layer in REFERENCE_LAYERS[family]:
        processors[f"{layer}.attn2.processor"] = capture
    return processors


@contextlib.contextmanager
def only_layers(unet, layers: list[str]):
    """Inside a `trace`: capture on the coarse level only at `layers` (their attn2), as the authors
    read SDXL; the other coarse layers run their own processors again."""
    current = dict(unet.attn_processors)
    kept = {f"{layer}.attn2" for layer in layers}
    reduced = dict(current)
    for name in cross_attention_layers(unet, levels=1):
        if name not in kept:
            reduced[f"{name}.processor"] = AttnProcessor2_0()
    unet.set_attn_processor(reduced)
    try:
        yield
    finally:
        unet.set_attn_processor(dict(current))


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_memory(device: str) -> None:
    """Start peak tracking afresh, so the model's construction peak does not mask the steps'."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return
    gc.collect()
    with contextlib.suppress(OSError):  # Linux: writing 5 resets VmHWM (peak RSS) to the current RSS
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        return _status_mib("VmHWM")
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux


def current_memory(device: str) -> float:
    if device == "cuda":
        return torch.cuda.memory_allocated() / 2**20
    return _status_mib("VmRSS")


def memory_child(segments: list[tuple[int, int]], latent: int, device: str, cfg: str, family: str) -> None:
    """Run guided steps (`cfg`: a `cfg_forward`) in this process, segment after segment, each
    (relations, steps) from the same start latents with its own scheduler; print the peak memory
    (MiB, model included) after each segment's 5th step and after its last."""
    dtype = torch.float16 if device == "cuda" else torch.float32
    unet, scheduler, cond, uncond, start, added = setup(latent, device, dtype, family)
    reset_peak_memory(device)
    baseline = current_memory(device)
    weights = GuidanceConfig()
    peaks = []
    for relations, steps in segments:
        objective = compile_objective(analyze(relation_graph(relations)))
        matrix, columns = token_matrix(objective, device)
        scheduler.set_timesteps(steps)
        latents = start
        with (
            trace(unet, (latent, latent), columns, levels=2) as store,
            frozen_weights(unet),
            no_graph_after(unet),
        ):
            for number, t in enumerate(scheduler.timesteps, start=1):
                arguments = (unet, scheduler, latents, t, cond, uncond, store, matrix, objective, weights)
                noise = our_step(*arguments, cfg_forward=cfg, added=added)
                latents = scheduler.step(noise, t, latents).prev_sample
                if number in (5, steps):
                    peaks.append({"relations": relations, "step": number, "peak_mib": peak_memory(device)})
    print(json.dumps({"peaks": peaks, "baseline_mib": baseline}))


def seconds_of(run, device: str | torch.device) -> float:
    """Wall-clock seconds of `run()`, the GPU's queue drained before and after."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    run()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started


def cuda_graph_timings(
    unet, scheduler, latents, t, cond, uncond, objective, weights, repeats, family="sd14", added=None
) -> dict:
    """Median seconds of the plain step, our guided step (joint and split CFG) and the authors'
    structure, each replayed from a CUDA graph, alternating; and the error of any capture that failed."""
    t = t.to(latents.device)  # a host-to-device copy may not run inside a capture
    objective = objective.to(latents.device)
    matrix, columns = token_matrix(objective, latents.device)
    side = latents.shape[-1]
    replays, errors = {}, {}

    def record(name: str, run) -> None:
        try:
            replays[name] = cuda_graphs.capture(run)[0].replay
        except RuntimeError as error:  # report what a capture met instead of losing the whole run
            errors[name] = f"{type(error).__name__}: {error}"[:2000]

    record("plain_cuda_graph", lambda: plain_step(unet, scheduler, latents, t, cond, uncond, added=added))
    with trace(unet, (side, side), columns, levels=2) as store, no_graph_after(unet):
        arguments = (unet, scheduler, latents, t, cond, uncond, store, matrix, objective, weights)
        for name, cfg in (("guided_joint_cuda_graph", "joint"), ("guided_cuda_graph", "split")):
            record(name, lambda cfg=cfg: our_step(*arguments, cfg_forward=cfg, added=added))
    capture, ours = ReferenceCapture(), dict(unet.attn_processors)
    unet.set_attn_processor(reference_processors(unet, capture, family))
    try:  # a replay runs the kernels recorded with the authors' processors, whatever is installed later
        record(
            "reference_cuda_graph",
            lambda: reference_step(unet, scheduler, latents, t, cond, uncond, capture, added=added),
        )
    finally:
        unet.set_attn_processor(ours)
    times: dict[str, list[float]] = {name: [] for name in replays}
    for _ in range(repeats):
        for name, replay in replays.items():
            times[name].append(seconds_of(replay, latents.device))
    medians = {name: statistics.median(v) for name, v in times.items()}
    return {"median_seconds": medians, "seconds": times, "errors": errors}


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over the timing rounds of the ratio within each round.

    A round runs every variant back to back, so when the machine speeds up or slows down between
    rounds (a shared 2-core machine does, by tens of percent) both sides of a round's ratio move
    together; the ratio of the two medians can pair a fast round with a slow one."""
    return statistics.median(n / d for n, d in zip(numerator, denominator, strict=True))


def keep_freed_memory() -> str:
    """Have glibc's malloc keep what the process frees, in one heap: no page faults at every pass.

    oneDNN writes a reordered copy of each large convolution weight at every call (59 MB for a
    1280x1280x3x3 weight, 295 such blocks per plain step at latent 32). glibc serves a block that
    big with mmap and unmaps it at free, so each call faults the copy's pages in afresh (about
    480,000 faults, 1.9 GB, per plain step), unless a free block large enough happens to sit in
    the heap, which depends on what ran before: with the authors' structure in the alternation the
    plain step faulted 0 times, without it 454,000. No mmap, no trimming and one arena (the
    concurrent step's second thread would get its own) make every variant run fault-free whatever
    ran before it. Returns how the allocator was left, for the results."""
    if platform.libc_ver()[0] != "glibc":
        return "system (not glibc)"
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # malloc.h
    if not (libc.mallopt(m_mmap_max, 0) and libc.mallopt(m_trim_threshold, -1) and libc.mallopt(m_arena_max, 1)):
        return "system (mallopt refused)"
    return "glibc: no mmap, no trimming, one arena"


def with_native_convolutions(run):
    """`run` with PyTorch's own CPU convolution kernels instead of oneDNN's.

    PyTorch hands a float32 convolution to oneDNN for batches above 1 (and for large batch-1
    inputs); oneDNN then reorders the weight into its blocked layout on every call, which costs
    more than the convolution itself for big weights on small maps (the deep UNet levels)."""

    def run_native():
        previous = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = False  # not mkldnn.flags(), which also warns about TF32
        try:
            run()
        finally:
            torch.backends.mkldnn.enabled = previous

    return run_native


def cpu_name() -> str:
    """The CPU's model name (Linux), else what `platform` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


_STARTED = time.perf_counter()


def progress(message: str) -> None:
    """A line on stderr with the time since start: the run takes minutes."""
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def child_memory(
    segments: list[tuple[int, int]], latent: int, device: str, cfg: str = DEFAULT_CFG_FORWARD, family: str = "sd14"
) -> dict:
    described = ", then ".join(f"{relations} relation(s) for {steps} steps" for relations, steps in segments)
    progress(f"peak memory: {described}, {cfg} CFG, latent {latent}, in a fresh process")
    plan = ",".join(f"{relations}x{steps}" for relations, steps in segments)
    command = [sys.executable, __file__, "--memory-child", plan, str(latent), device, cfg, family]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure_memory(latent: int, device: str, family: str = "sd14") -> dict:
    """Peak memory with 1 relation after 5 and after 50 steps, and with 32 relations over 5 steps.

    One process runs 50 steps with 1 relation and then 5 steps with 32: whatever a step kept for
    later would make the 50-step peak exceed the 5-step one, and the 32-relation peak is the
    running peak after those 5 steps, so it can only overstate what 32 relations add. One process
    instead of two saves building the model again (half a minute on 2 CPU cores). A second process
    runs 5 steps of the device's other CFG step (`r1_split` on CPU, `r1_joint` on CUDA)."""
    run = child_memory([(1, 50), (32, 5)], latent, device, family=family)
    memory = {
        "r1": peak_entry(run, 1, 5),
        "r32": peak_entry(run, 32, 5),
        "steps5": peak_entry(run, 1, 5),
        "steps50": peak_entry(run, 1, 50),
    }
    # on CUDA the default runs the split step, and the joint one is the faster there
    other = "joint" if device == "cuda" else "split"
    memory[f"r1_{other}"] = peak_entry(child_memory([(1, 5)], latent, device, other, family), 1, 5)
    return memory


def peak_entry(run: dict, relations: int, step: int) -> dict:
    """The peak a memory child printed after `step` steps of its segment with `relations`."""
    (peak,) = [p["peak_mib"] for p in run["peaks"] if (p["relations"], p["step"]) == (relations, step)]
    return {"peak_mib": peak, "baseline_mib": run["baseline_mib"]}


def memory_ratios(memory: dict) -> dict:
    """Peak memory during the steps (model included) and its rise above the loaded model."""

    def rise(entry: dict) -> float:
        return max(entry["peak_mib"] - entry["baseline_mib"], 1e-9)

    ratios = {
        "memory_mib": memory,
        "r32_over_r1_memory": memory["r32"]["peak_mib"] / memory["r1"]["peak_mib"],
        "steps50_over_steps5_memory": memory["steps50"]["peak_mib"] / memory["steps5"]["peak_mib"],
        "r32_over_r1_memory_above_model": rise(memory["r32"]) / rise(memory["r1"]),
        "steps50_over_steps5_memory_above_model": rise(memory["steps50"]) / rise(memory["steps5"]),
    }
    for cfg in ("joint", "split"):
        if f"r1_{cfg}" in memory:
            ratios[f"{cfg}_over_default_memory"] = memory[f"r1_{cfg}"]["peak_mib"] / memory["r1"]["peak_mib"]
            ratios[f"{cfg}_over_default_memory_above_model"] = rise(memory[f"r1_{cfg}"]) / rise(memory["r1"])
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 repeats, R = 1 and 32 only, no timing of the step's parts; on CPU peak memory at latent 8, "
        "no bfloat16, joint-CFG or native-convolution variants: under 5 minutes on 2 CPU cores",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--family", choices=tuple(UNET_CONFIGS), default="sd14", help="the UNet architecture")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--latent", type=int, default=None, help="latent side (default 32 on CPU, 64 on GPU)")
    parser.add_argument("--memory-only", action="store_true", help="only the memory measurements")
    parser.add_argument(
        "--time-only",
        metavar="VARIANTS",
        help="only these timed variants, comma-separated (e.g. plain,unconditional_forward,guided_parts,guided), "
        "no memory runs: for large latents on CPU",
    )
    parser.add_argument(
        "--allocator",
        choices=("kept", "system"),
        default="kept",
        help="timing process only: 'kept' has glibc keep freed memory (no mmap, no trimming, one arena), so no "
        "variant pays page faults that depend on what ran before it; 'system' leaves malloc as it is",
    )
    parser.add_argument("--memory-child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        plan, latent, device, cfg, family = args.memory_child
        segments = [tuple(int(n) for n in segment.split("x")) for segment in plan.split(",")]
        memory_child(segments, int(latent), device, cfg, family)
        return

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    latent = args.latent or (64 if device == "cuda" else 32)
    memory_latent = 8 if args.quick and device == "cpu" else latent
    # the memory children are fresh processes with the system's malloc: their peaks mean what they always did
    allocator = keep_freed_memory() if args.allocator == "kept" and not args.memory_only else "system"
    family = args.family
    if args.memory_only:
        memory = measure_memory(memory_latent, device, family)
        print(json.dumps(memory_ratios(memory), indent=2))
        if args.json:
            args.json.write_text(json.dumps(memory_ratios(memory), indent=2))
        return
    repeats = args.repeats or (3 if args.quick else 7)
    unet, scheduler, cond, uncond, latents, added = setup(latent, device, dtype, family)
    progress(f"{family} UNet built; latent {latent}, {repeats} repeats after a warm-up")
    t = scheduler.timesteps[10]
    weights = GuidanceConfig()
    objectives = {r: compile_objective(analyze(relation_graph(r))) for r in (1, 4, 16, 32)}
    assert all(objective.num_relations == r for r, objective in objectives.items())
    capture = ReferenceCapture()
    ours = dict(unet.attn_processors)
    reference = reference_processors(unet, capture, family)

    def run_guided(
        relations: int, precision: str = "model", cfg_forward: str = DEFAULT_CFG_FORWARD, authors_layers: bool = False
    ):
        objective = objectives[relations]
        matrix, columns = token_matrix(objective, device)
        with trace(unet, (latent, latent), columns, levels=2) as store, no_graph_after(unet):
            layers = only_layers(unet, REFERENCE_LAYERS[family]) if authors_layers else contextlib.nullcontext()
            with layers:
                arguments = (unet, scheduler, latents, t, cond, uncond, store, matrix, objective, weights)
                our_step(*arguments, precision=precision, cfg_forward=cfg_forward, added=added)

    def run_reference():
        unet.set_attn_processor(dict(reference))  # diffusers empties the dict it is given
        try:
            reference_step(unet, scheduler, latents, t, cond, uncond, capture, added=added)
        finally:
            unet.set_attn_processor(dict(ours))

    parts: dict[str, list[float]] = {"conditional_forward": [], "backward": []}

    def run_parts():
        objective = objectives[1]
        matrix, columns = token_matrix(objective, device)
        with trace(unet, (latent, latent), columns, levels=2) as store, no_graph_after(unet):
            forward, backward = guided_parts(
                unet, scheduler, latents, t, cond, store, matrix, objective, weights, added=added
            )
        parts["conditional_forward"].append(forward)
        parts["backward"].append(backward)

    def run_unconditional():
        with torch.no_grad():
            unet(latents, t, encoder_hidden_states=uncond, added_cond_kwargs=added)

    variants = {
        "plain": lambda: plain_step(unet, scheduler, latents, t, cond, uncond, added=added),
        "unconditional_forward": run_unconditional,
        "guided_parts": run_parts,
        "guided": lambda: run_guided(1),
        "guided_split": lambda: run_guided(1, cfg_forward="split"),
        "guided_joint": lambda: run_guided(1, cfg_forward="joint"),
        "guided_bf16": lambda: run_guided(1, "bfloat16"),
        "reference": run_reference,
        "guided_r4": lambda: run_guided(4),
        "guided_r16": lambda: run_guided(16),
        "guided_r32": lambda: run_guided(32),
    }
    if family == "sdxl":
        variants["guided_authors_layers"] = lambda: run_guided(1, authors_layers=True)
    if device != "cpu":
        variants.pop("guided_split")  # the concurrent step is a CPU option: elsewhere it is the split step
    if device == "cpu" and not args.quick:
        variants["plain_native_conv"] = with_native_convolutions(variants["plain"])
        variants["guided_native_conv"] = with_native_convolutions(variants["guided"])
    if args.time_only:
        variants = {name: variants[name] for name in args.time_only.split(",")}
    elif args.quick:
        # R = 1 and 32 give the ratio; 4 and 16 show the curve, the parts where the time goes, in a full run
        for name in ("guided_r4", "guided_r16", "unconditional_forward", "guided_parts"):
            variants.pop(name)
        if device == "cpu":
            # bfloat16 is a GPU option; CPUs without native bfloat16 (no AVX512-BF16/AMX) take minutes per step
            variants.pop("guided_bf16")
            variants.pop("guided_joint")  # more compute than "guided": a GPU option too
    times: dict[str, list[float]] = {name: [] for name in variants}
    with frozen_weights(unet):
        for name, run in variants.items():  # warm-up; the R variants take the path "guided" warms
            if not (name.startswith("guided_r") and "guided" in variants):
                run()
        for repeat in range(repeats):
            progress(f"timing round {repeat + 1} of {repeats}: {', '.join(variants)}")
            for name, run in variants.items():
                times[name].append(seconds_of(run, device))
    times.pop("guided_parts", None)
    # the parts' first entries come from the warm-up
    times.update({name: values[1:] for name, values in parts.items() if values})
    median = {name: statistics.median(values) for name, values in times.items()}
    graphs = {}
    if device == "cuda":
        progress("the plain and guided steps as CUDA graphs")
        with frozen_weights(unet):
            graphs = cuda_graph_timings(
                unet, scheduler, latents, t, cond, uncond, objectives[1], weights, repeats, family, added
            )
        median.update(graphs.get("median_seconds", {}))
    memory = {} if args.time_only else measure_memory(memory_latent, device, family)
    progress("done")

    results = {
        "machine": {
            "device": torch.cuda.get_device_name() if device == "cuda" else cpu_name(),
            "family": family,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "latent": latent,
            "dtype": str(dtype),
            "repeats": repeats,
            "allocator": allocator,
            "cfg_forward": DEFAULT_CFG_FORWARD,  # of the `guided` variant
        },
        "median_seconds": median,
        "seconds": {**times, **graphs.get("seconds", {})},  # every timed run: the spread behind each median
    }
    if graphs.get("errors"):
        results["cuda_graph_errors"] = graphs["errors"]
    ratios = {
        "guided_over_plain": ("guided", "plain"),
        "guided_bf16_over_plain": ("guided_bf16", "plain"),
        # CFG's halves in one graph-recording batch (cfg_forward="joint")
        "guided_joint_over_plain": ("guided_joint", "plain"),
        "guided_joint_over_guided": ("guided_joint", "guided"),
        "reference_over_guided_joint": ("reference", "guided_joint"),
        # CPU: the two forwards one after the other instead of side by side (cfg_forward="split")
        "guided_split_over_plain": ("guided_split", "plain"),
        "guided_split_over_guided": ("guided_split", "guided"),
        "reference_over_guided_split": ("reference", "guided_split"),
        "reference_over_guided": ("reference", "guided"),
        "r32_over_r1_time": ("guided_r32", "guided"),
        # SDXL: all 30 coarse layers read against the authors' three
        "guided_over_guided_authors_layers": ("guided", "guided_authors_layers"),
        # where a guided step's time goes, in units of the plain step
        "unconditional_over_plain": ("unconditional_forward", "plain"),
        "conditional_forward_over_plain": ("conditional_forward", "plain"),
        "backward_over_plain": ("backward", "plain"),
        # the same two steps with PyTorch's own convolutions (CPU only)
        "guided_over_plain_native_conv": ("guided_native_conv", "plain_native_conv"),
        "plain_native_conv_over_plain": ("plain_native_conv", "plain"),
        "guided_native_conv_over_guided": ("guided_native_conv", "guided"),
        # every step replayed from a CUDA graph (GPU only): no kernel launch cost
        "guided_joint_cuda_graph_over_plain_cuda_graph": ("guided_joint_cuda_graph", "plain_cuda_graph"),
        "guided_cuda_graph_over_plain_cuda_graph": ("guided_cuda_graph", "plain_cuda_graph"),
        "reference_cuda_graph_over_guided_cuda_graph": ("reference_cuda_graph", "guided_cuda_graph"),
        "reference_cuda_graph_over_guided_joint_cuda_graph": ("reference_cuda_graph", "guided_joint_cuda_graph"),
        "plain_cuda_graph_over_plain": ("plain_cuda_graph", "plain"),
    }
    seconds = results["seconds"]
    for key, (numerator, denominator) in ratios.items():
        if numerator in median and denominator in median:
            results[key] = median[numerator] / median[denominator]
            results.setdefault("paired", {})[key] = paired_ratio(seconds[numerator], seconds[denominator])
    if memory:
        results.update(memory_ratios(memory), memory_latent=memory_latent)
    print(f"{'variant':<26} {'median s':>9} {'min-max s':>15} {'x plain':>8}")
    for name, value in median.items():
        spread = f"{min(seconds[name]):.3f}-{max(seconds[name]):.3f}"
        relative = f"{value / median['plain']:8.2f}" if "plain" in median else ""
        print(f"{name:<26} {value:9.4f} {spread:>15} {relative}")
    print(f"{'ratio':<48} {'of medians':>10} {'paired':>7}")
    for key, value in results.items():
        if isinstance(value, float):
            paired = results.get("paired", {}).get(key)
            print(f"{key:<48} {value:10.3f} {'' if paired is None else f'{paired:7.3f}'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
