"""Train a birdanim generator (StyleGAN2 + projected or classic D + ADA, or the DCGAN baseline).

examples:
  python -m train.loop.train --preset tiny --max-images 64 --outdir /tmp/runs          # smoke run, seconds
  python -m train.loop.train --preset default --dry-run                                 # print the resolved config
  nohup nice -n 10 python -m train.loop.train --preset default --resume latest --init-from weights/ &  # the long CPU run (resume, or start from the shipped G)
  python -m train.loop.train --preset default --init-from weights/                     # new machine: start from shipped G
  python -m train.loop.train --branch-from RUN/snapshots/snapshot-000231744 --glr 0.004 --dlr 0.004   # a new run from a snapshot
  torchrun --nproc-per-node 4 -m train.loop.train --preset default --batch 64            # several GPUs / processes

A run lives in a numbered folder under --outdir (default ~/.cache/birdanim/runs): config.json,
log.jsonl, grid-*.png, snapshots/ (resumable, atomic), gema/ (G_ema per snapshot, for metric curves).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image

from birdanim.checkpoint import CheckpointError, load_generator, save_generator, write_json_atomic
from birdanim.device import pick_device, set_cpu_threads
from birdanim.imageops import make_grid, tensor_to_uint8
from birdanim.models import z_from_seeds
from train.loop import loss as L
from train.loop.augment import AdaController
from train.loop.data import BatchSampler, ImageDataset
from train.loop.networks import build_augment, build_discriminator, build_generator, growable, load_grown
from train.loop.presets import BOOKKEEPING, FLAT_NAMES, PRESETS, TrainConfig, field_type, flatten, make_config
from train.loop.snapshot import branch_run, load_snapshot, module_state, resolve_resume, run_number, save_snapshot, set_rng_state, unflatten_optimizer

DEFAULT_OUTDIR = Path.home() / ".cache" / "birdanim" / "runs"
EMA_RAMPUP = 0.05  # G_ema half-life <= this x images seen, so a random init's G_ema is not stuck at init


# ---------------------------------------------------------------- distributed helpers


class Dist:
    """rank/world of this process; world 1 without torchrun."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(t)
        return t

    def average_grads(self, module: torch.nn.Module) -> None:
        """All-reduce and average the gradients (manual DDP: GANs alternate which net gets grads)."""
        if self.world == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if grads:
            flat = torch.cat([g.flatten() for g in grads])
            dist.all_reduce(flat)
            flat /= self.world
            torch.nn.utils.vector_to_parameters(flat, grads)  # copies back into each .grad

    def broadcast_module(self, module: torch.nn.Module) -> None:
        if self.world > 1:
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)


# ---------------------------------------------------------------- the trainer


class Trainer:
    """Owns the networks, optimisers, data and counters; `step()` runs one G, D (and R1) update."""

    def __init__(self, cfg: TrainConfig, device: torch.device, dd: Dist, dataset: ImageDataset, feature_net=None):
        self.cfg, self.device, self.dd, self.ds = cfg, device, dd, dataset
        if dataset.resolution != cfg.generator.resolution:
            raise ValueError(f"dataset is {dataset.resolution} px, config wants {cfg.generator.resolution}")
        if cfg.optimiser.batch % dd.world:
            raise ValueError(f"batch {cfg.optimiser.batch} is not divisible by the {dd.world} processes")
        self.batch_gpu = cfg.optimiser.batch // dd.world
        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        self.G = build_generator(cfg).to(device).train()
        self.D = build_discriminator(cfg, feature_net).to(device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.augment = build_augment(cfg).to(device)
        self.ada = AdaController(self.augment, speed_kimg=cfg.augment.ada_kimg, interval=cfg.augment.ada_interval) if cfg.augment.kind == "ada" else None
        self.use_r1 = cfg.generator.arch == "stylegan2" and cfg.discriminator.kind == "classic" and cfg.optimiser.r1_interval > 0
        # Lazy regularisation: R1 every k steps costs 1/k as much; adjust Adam so the effective
        # schedule matches (NVlabs' mb_ratio).
        self.reg_ratio = cfg.optimiser.r1_interval / (cfg.optimiser.r1_interval + 1) if self.use_r1 else 1.0
        betas_d = (cfg.optimiser.beta1**self.reg_ratio, cfg.optimiser.beta2**self.reg_ratio)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.optimiser.glr, betas=(cfg.optimiser.beta1, cfg.optimiser.beta2), eps=1e-8)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.optimiser.dlr * self.reg_ratio, betas=betas_d, eps=1e-8)
        self.images_seen = 0
        self.steps = 0
        self.g_from_weights = False  # G and G_ema started from trained weights (init_generator_from): no EMA
        # ramp-up (it exists so a random init's G_ema is not stuck there), and D warms up first (cfg.optimiser.d_warmup_kimg)
        self.d_warmup_images = 0  # D-only images done so far
        self.cpu_seconds = 0.0  # process CPU time (user + system, all threads), summed over resumes
        self.wall_seconds = 0.0
        self.sampler = BatchSampler(len(dataset), self.batch_gpu, cfg.seed, dd.rank, dd.world)
        dd.broadcast_module(self.G)
        dd.broadcast_module(self.D)
        dd.broadcast_module(self.G_ema)
        torch.manual_seed(cfg.seed + 7919 * dd.rank)  # from here on each rank draws its own z, noise, augmentations

    # ---- one iteration

    def _fakes(self, n: int, update_w_avg: bool) -> torch.Tensor:
        z = torch.randn(n, self.G.z_dim).to(self.device)
        if self.cfg.generator.arch == "dcgan":
            return self.G(z)
        ws = L.mapping_with_mixing(self.G, z, self.cfg.optimiser.mixing, None, update_w_avg)
        return self.G.synthesis(ws, noise_mode="random")

    def _reals(self) -> torch.Tensor:
        return self.ds.batch(next(self.sampler), True, None, self.device)

    def gan_step(self, train_g: bool = True) -> dict:
        """One D update and one G update from a single batch of fakes (as in the DCGAN reference loop):
        D learns on the detached fakes, then G learns through the updated D on the same fakes. With
        the projected D, the frozen feature network's forward on the fakes is shared too. On a CPU
        this saves one G forward and one feature-network forward per iteration (about 20%).
        train_g False: the D update only (G untouched, w_avg included); loss_g is still measured."""
        cfg, D = self.cfg, self.D
        projected = hasattr(D, "project")
        self.G.requires_grad_(train_g)
        D.requires_grad_(False)
        fake = self._fakes(self.batch_gpu, update_w_avg=train_g and cfg.generator.arch == "stylegan2")
        fake_in = self.augment(fake)
        if projected:
            fake_in = D.project(fake_in)  # graph back to G; D's heads see it detached first
        # --- D update
        D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        real = self.augment(self._reals())
        if projected:
            with torch.no_grad():
                real_feats = D.project(real)
            fake_logits = D.logits([f.detach() for f in fake_in])
            real_logits = D.logits(real_feats)
        else:
            fake_logits = D(fake_in.detach())
            real_logits = D(real)
        weights = getattr(D, "patch_weights", None)
        loss_d = L.d_loss(real_logits, fake_logits, cfg.optimiser.loss, weights)
        loss_d.backward()
        self.dd.average_grads(D)
        self.opt_D.step()
        if self.ada is not None:
            self.ada.accumulate(real_logits, real.shape[0])
            self.ada.maybe_update(self.dd.sum)
        # --- G update through the updated D
        D.requires_grad_(False)
        margin = float(real_logits.detach().mean() - fake_logits.detach().mean())
        # E[sign(D(real))] of this batch: logged as r_t also when no ADA controller measures it (aug fixed/none).
        rt = float(real_logits.detach().reshape(real_logits.shape[0], -1).mean(1).sign().mean())
        stats = {"loss_d": float(loss_d.detach()), "d_margin": margin, "rt_batch": rt}
        if not train_g:
            with torch.no_grad():
                stats["loss_g"] = float(L.g_loss(D.logits(fake_in) if projected else D(fake_in), cfg.optimiser.loss, weights))
            return stats
        self.opt_G.zero_grad(set_to_none=True)
        loss_g = L.g_loss(D.logits(fake_in) if projected else D(fake_in), cfg.optimiser.loss, weights)
        loss_g.backward()
        self.dd.average_grads(self.G)
        self.opt_G.step()
        stats["loss_g"] = float(loss_g.detach())
        return stats

    def r1_step(self) -> float:
        self.D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        real = self._reals().detach().requires_grad_(True)
        logits = self.D(self.augment(real))
        pen = L.r1_penalty(real, logits)
        (pen.mean() * (self.cfg.r1_gamma / 2) * self.cfg.optimiser.r1_interval).backward()
        self.dd.average_grads(self.D)
        self.opt_D.step()
        return float(pen.detach().mean())

    @torch.no_grad()
    def ema_update(self) -> None:
        cfg = self.cfg
        if cfg.optimiser.ema_kimg <= 0:
            beta = 0.0
        else:
            ema_nimg = cfg.optimiser.ema_kimg * 1000
            if not self.g_from_weights:
                ema_nimg = min(ema_nimg, self.images_seen * EMA_RAMPUP)
            beta = 0.5 ** (cfg.optimiser.batch / max(ema_nimg, 1e-8))
        for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
            pe.copy_(p.detach().lerp(pe, beta))
        for be, b in zip(self.G_ema.buffers(), self.G.buffers()):
            be.copy_(b)  # w_avg, constant noise, BN statistics: follow G

    def step(self) -> dict:
        if self.g_from_weights and self.d_warmup_images < self.cfg.optimiser.d_warmup_kimg * 1000:
            stats = self.gan_step(train_g=False)  # G, G_ema frozen: nothing for the EMA or R1 to do
            stats["d_warmup"] = 1.0
            self.steps += 1
            self.images_seen += self.cfg.optimiser.batch
            self.d_warmup_images += self.cfg.optimiser.batch
            return stats
        stats = self.gan_step()
        self.steps += 1
        if self.use_r1 and self.steps % self.cfg.optimiser.r1_interval == 0:
            stats["r1"] = self.r1_step()
        self.images_seen += self.cfg.optimiser.batch
        self.ema_update()
        return stats

    # ---- state

    def modules(self) -> dict:
        return {"G": self.G, "G_ema": self.G_ema, "D": self.D, "augment": self.augment}

    def optimizers(self) -> dict:
        return {"G": self.opt_G, "D": self.opt_D}

    def train_state(self) -> dict:
        return {
            "config": dataclasses.asdict(self.cfg),
            "steps": self.steps,
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
            "sampler": {"epoch": self.sampler.epoch, "buf": self.sampler._buf},
            "ada_p": float(self.augment.p),
            "ada": self.ada.state_dict() if self.ada else None,
            "dataset_key": self.ds.key,
            "g_from_weights": self.g_from_weights,
            "d_warmup_images": self.d_warmup_images,
        }

    def restore(self, tensors: dict, state: dict) -> None:
        for name, m in self.modules().items():
            m.load_state_dict(module_state(tensors, name))
        lrs = {"G": self.cfg.optimiser.glr, "D": self.cfg.optimiser.dlr * self.reg_ratio}
        for name, opt in self.optimizers().items():
            opt.load_state_dict(unflatten_optimizer(name, tensors, state["optimizers"][name]))
            for g in opt.param_groups:  # the config's learning rate (maybe overridden on resume) wins
                g["lr"] = lrs[name]
        self.images_seen = int(state["images_seen"])
        self.steps = int(state["steps"])
        self.cpu_seconds = float(state["cpu_seconds"])
        self.wall_seconds = float(state["wall_seconds"])
        self.g_from_weights = bool(state.get("g_from_weights", False))  # runs before 2026-12-04: ramp-up, no warm-up
        self.d_warmup_images = int(state.get("d_warmup_images", 0))
        self.sampler.epoch = int(state["sampler"]["epoch"])
        self.sampler._buf = list(state["sampler"]["buf"])
        if self.ada is not None and state.get("ada"):
            self.ada.load_state_dict(state["ada"])
        if self.dd.rank == 0:
            set_rng_state(tensors, state["rng"])
        else:  # other ranks: distinct streams derived from the restored counters
            torch.manual_seed(self.cfg.seed + 7919 * self.dd.rank + self.steps)

    def init_generator_from(self, weights: str) -> str:
        """Start G and G_ema from exported weights of the same architecture, or grow a smaller generator
        into this run's (`train.loop.networks.load_grown`): a lower resolution (its blocks loaded, the finer
        ones fresh; in the skip architecture the output is then upsample(source output) + the new
        blocks' toRGB, small at init with rgb_init_gain 0.1: train at 128 px, continue at 256) and/or
        wider layers (`--channel-base` larger than the source's: the old channels loaded, the new ones
        invisible to the output until training uses them). Both start exactly where the source is.
        Returns what was done, for the log."""
        src = load_generator(weights, device=self.device)
        if not growable(src.cfg, self.G.cfg):
            raise CheckpointError(f"--init-from {weights}: its generator config {src.cfg} differs from this run's {self.G.cfg}")
        state = src.state_dict()
        self.g_from_weights = True
        for m in (self.G, self.G_ema):
            grown = load_grown(m, state)
        if not grown:
            return f"G from {weights}"
        what = []
        if src.cfg.img_resolution != self.G.cfg.img_resolution:
            what.append(f"{src.cfg.img_resolution} px -> {self.G.cfg.img_resolution} px")
        res = [2**i for i in range(2, int(np.log2(src.cfg.img_resolution)) + 1)]
        wider = [f"{r}: {src.cfg.channels(r)} -> {self.G.cfg.channels(r)}" for r in res if src.cfg.channels(r) != self.G.cfg.channels(r)]
        if wider:
            what.append("channels " + ", ".join(wider))
        return f"G grown from {weights} ({'; '.join(what)}; {grown} new or widened tensors)"

    @torch.no_grad()
    def sample_grid(self, path: Path) -> None:
        n = self.cfg.grid_size
        z = z_from_seeds(range(n), self.G_ema.z_dim, self.device)
        imgs = []
        for i in range(0, n, 8):
            zz = z[i : i + 8]
            imgs.append(self.G_ema(zz) if self.cfg.generator.arch == "dcgan" else self.G_ema(zz, noise_mode="const"))
        cols = next(c for c in range(int(np.ceil(np.sqrt(n))), n + 1) if n % c == 0 or c * c >= 2 * n)  # 32 -> 8 x 4
        grid = make_grid(tensor_to_uint8(torch.cat(imgs)), cols=cols)
        Image.fromarray(grid).save(path)


# ---------------------------------------------------------------- run folders, logging


def new_run_dir(outdir: Path, cfg: TrainConfig, suffix: str = "") -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    nums = [run_number(p) for p in outdir.iterdir() if p.is_dir()]
    n = max([x for x in nums if x >= 0], default=-1) + 1
    while True:  # another process may take the same number: mkdir is the lock
        run = outdir / f"{n:05d}-{cfg.preset}{'-' + suffix if suffix else ''}"
        try:
            run.mkdir()
            return run
        except FileExistsError:
            n += 1


def branch_suffix(changed: dict) -> str:
    """A branch's folder name tail: the recipe fields it changes (bookkeeping left out), e.g. 'glr0.004-dlr0.004'."""
    parts = [f"{k}{v}" for k, (_, v) in changed.items() if k not in BOOKKEEPING]
    return "-".join(parts)[:60].replace("/", "_") or "branch"


class JsonlLog:
    def __init__(self, path: Path):
        self.path = path

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()


def export_gema(trainer: Trainer, run_dir: Path) -> None:
    meta = {
        "images_seen": trainer.images_seen,
        "cpu_hours": trainer.cpu_seconds / 3600,
        "wall_hours": trainer.wall_seconds / 3600,
        "ada_p": float(trainer.augment.p),
        "run": run_dir.name,
        "dataset": trainer.ds.key,
        "preset": trainer.cfg.preset,
    }
    save_generator(trainer.G_ema, run_dir / "gema" / f"{trainer.images_seen:09d}", meta, fp16=True)


# ---------------------------------------------------------------- command line


def parse_args(argv=None) -> tuple[argparse.Namespace, dict]:
    p = argparse.ArgumentParser(
        prog="birdanim train", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", default="default", choices=sorted(PRESETS))
    p.add_argument("--outdir", type=Path, default=DEFAULT_OUTDIR, help="parent of the numbered run folders")
    p.add_argument("--resume", default=None, help="'latest' (the run under --outdir whose snapshot was written last), a run folder or a snapshot folder")
    p.add_argument("--init-from", default=None, help="start G and G_ema from exported generator weights (e.g. weights/); "
                   "a lower-resolution source is grown (its blocks loaded, the finer ones new)")
    p.add_argument("--branch-from", default=None, metavar="SNAPSHOT",
                   help="a new run folder continuing a snapshot (or a run folder's latest) with its D, Adam state and EMA, "
                        "under the config overrides given; the source run is left as it is; BRANCH.json records where it came from")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: CUDA if present)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar (log lines only)")
    groups = {}
    for name, path in FLAT_NAMES.items():  # one flag per config field, by its short name (train/loop/presets.py)
        section = path.split(".")[0] if "." in path else "run"
        if section not in groups:
            groups[section] = p.add_argument_group(f"config overrides: {section}")
        g = groups[section]
        flag = "--disc" if name == "d" else "--" + name.replace("_", "-")  # "--d" clashes with torchrun's options
        typ = field_type(name)
        if typ == "bool":
            g.add_argument(flag, type=_bool, default=None, metavar="BOOL", dest=name, help=path)
        elif name == "data":
            g.add_argument(flag, nargs="+", default=None, metavar="ZIP", help="training zips (train splits only)")
        else:
            g.add_argument(flag, type={"int": int, "float": float, "str": str}[typ], default=None, dest=name, help=path)
    args = p.parse_args(argv)
    overrides = {name: getattr(args, name) for name in FLAT_NAMES if getattr(args, name, None) is not None}
    return args, overrides


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def resolve(args, overrides) -> tuple[TrainConfig, Path | None, Path | None]:
    """(config, run folder to continue or None, snapshot to load or None). For --branch-from the run folder is
    None and the snapshot the source one: main() makes the branch's folder."""
    given = [f for f in ("resume", "branch_from", "init_from") if getattr(args, f)]
    if "branch_from" in given and len(given) > 1:
        raise ValueError("--branch-from starts from a snapshot: not with --resume or --init-from")
    if args.branch_from:
        _, snap = resolve_resume(args.branch_from, args.outdir.expanduser())
        return snapshot_config(snap, overrides), None, snap
    if args.resume:
        try:
            run_dir, snap = resolve_resume(args.resume, args.outdir.expanduser())
        except CheckpointError:
            if args.resume == "latest":  # nothing to resume yet: start fresh (lets one command start or continue)
                return make_config(args.preset, overrides), None, None
            raise
        return snapshot_config(snap, overrides), run_dir, snap
    return make_config(args.preset, overrides), None, None


def snapshot_config(snap: Path, overrides: dict) -> TrainConfig:
    """The config a snapshot was trained with, under the command line's overrides (its preset name kept)."""
    return TrainConfig.from_dict(json.loads((snap / "state.json").read_text())["config"], overrides)


def main(argv=None) -> int:
    args, overrides = parse_args(argv)
    try:
        cfg, run_dir, snap = resolve(args, overrides)
    except (ValueError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps(dataclasses.asdict(cfg), indent=2))
        if snap:
            print(f"would {'branch from' if args.branch_from else 'resume'} {snap}")
        return 0
    if args.branch_from:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            print("error: --branch-from with one process, then --resume the new run with several", file=sys.stderr)
            return 2
        changed = config_changes(json.loads((snap / "state.json").read_text())["config"], cfg)
        run_dir = new_run_dir(args.outdir.expanduser(), cfg, branch_suffix(changed))
        snap = branch_run(snap, run_dir, changed)
        print(f"branched {args.branch_from} into {run_dir}", flush=True)
    device = pick_device(args.device)
    set_cpu_threads(cfg.threads)  # also tunes glibc malloc: large elementwise ops run several x faster
    dd = Dist(device)
    if dd.world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return train(cfg, device, dd, args.outdir.expanduser(), run_dir, snap, args.init_from, not args.no_progress)


def train(
    cfg: TrainConfig,
    device: torch.device,
    dd: Dist,
    outdir: Path,  # parent of the numbered run folders
    run_dir: Path | None,  # run folder to continue (resume), or None for a new one
    snap: Path | None,  # snapshot folder to load, or None
    init_from: str | None,  # generator weights folder to start G / G_ema from (new runs only)
    progress: bool,  # show the tqdm bar
    dataset: ImageDataset | None = None,  # in-memory images instead of cfg.data (tests)
    feature_net=None,  # a loaded EfficientNet-Lite0 to share (tests, benchmarks)
) -> int:
    t0 = time.time()
    ds = dataset if dataset is not None else ImageDataset.from_zips(cfg.data, cfg.generator.resolution, cfg.max_images or None)
    trainer = Trainer(cfg, device, dd, ds, feature_net)
    rank0 = dd.rank == 0
    if snap is not None:
        tensors, state = load_snapshot(snap)
        trainer.restore(tensors, state)
        msg = f"resumed {snap} at {trainer.images_seen / 1000:.3f} kimg, ADA p {float(trainer.augment.p):.3f}"
        changed = config_changes(state["config"], cfg)
        if changed:
            msg += "; changed: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
        if rank0:  # every resume, with what its command line changed, so a metric curve can be read honestly
            with open(run_dir / "resumes.jsonl", "a") as f:
                f.write(json.dumps({"snapshot": snap.name, "kimg": trainer.images_seen / 1000,
                                    "cpu_hours": trainer.cpu_seconds / 3600, "time": time.time(),
                                    "changed": changed}) + "\n")
    else:
        init_msg = trainer.init_generator_from(init_from) if init_from else ""
        if rank0:
            run_dir = new_run_dir(outdir, cfg)
            if init_from:  # lineage: export adds the source's images and CPU-hours to this run's own
                write_json_atomic(run_dir / "init_from.json", init_record(init_from))
        msg = f"new run, {len(ds)} training images" + (f", {init_msg}" if init_msg else "")
    if rank0:
        write_json_atomic(run_dir / "config.json", dataclasses.asdict(cfg))
        print(f"{msg}; run folder {run_dir}; device {device}, {dd.world} process(es), {torch.get_num_threads()} threads; data ready in {time.time() - t0:.1f}s", flush=True)
    log = JsonlLog(run_dir / "log.jsonl") if rank0 else None
    return loop(trainer, cfg, run_dir, log, progress and rank0, rank0)


def config_changes(saved: dict, cfg: TrainConfig) -> dict[str, list]:
    """{short name: [value in the snapshot, value now]} for every config field a resume overrides (a snapshot
    written before the config was nested included; a field it lacks counts as None)."""
    was = flatten(saved)
    return {k: [was.get(k), v] for k, v in cfg.flat().items() if was.get(k) != v}


def init_record(weights: str) -> dict:
    """What a run started from: the weights' path and, from their meta.json, the images and CPU-hours
    (including that source's own lineage) that went into them."""
    from birdanim.checkpoint import load_meta

    meta = load_meta(weights)  # {} when there is none (or a Hub id is unreachable): the name only
    return {
        "source": str(weights),
        "run": meta.get("run"),
        "images_seen": meta.get("total_images_seen", meta.get("images_seen")),
        "cpu_hours": meta.get("total_cpu_hours", meta.get("cpu_hours")),
    }


def loop(trainer: Trainer, cfg: TrainConfig, run_dir: Path, log: JsonlLog | None, progress: bool, rank0: bool) -> int:
    stop = {"flag": False}

    def on_signal(signum, frame):  # SIGTERM / SIGINT: finish the step, snapshot, exit
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    total = int(cfg.kimg * 1000)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=min(trainer.images_seen, total), unit="img", dynamic_ncols=True, smoothing=0.05)
    cpu0, wall0 = time.process_time(), time.time()
    cpu_base, wall_base = trainer.cpu_seconds, trainer.wall_seconds
    last_snap_t, last_snap_img = time.time(), trainer.images_seen
    last_log_t, last_log_img = time.time(), trainer.images_seen
    acc: dict[str, list[float]] = {}
    if rank0 and trainer.images_seen == 0:
        trainer.sample_grid(run_dir / "grid-init.png")
    while trainer.images_seen < total and not stop["flag"]:
        stats = trainer.step()
        for k, v in stats.items():
            acc.setdefault(k, []).append(v)
        trainer.cpu_seconds = cpu_base + (time.process_time() - cpu0) * trainer.dd.world
        trainer.wall_seconds = wall_base + time.time() - wall0
        if bar is not None:
            bar.update(min(cfg.optimiser.batch, total - bar.n))
            bar.set_postfix(G=f"{stats['loss_g']:.2f}", D=f"{stats['loss_d']:.2f}", p=f"{float(trainer.augment.p):.2f}", refresh=False)
        now = time.time()
        if rank0 and now - last_log_t >= cfg.log_seconds:
            rec = {k: float(np.mean(v)) for k, v in acc.items()}
            rec.update(
                kimg=trainer.images_seen / 1000, step=trainer.steps, p=float(trainer.augment.p),
                rt=trainer.ada.last_rt if trainer.ada else rec.get("rt_batch"),
                img_s=(trainer.images_seen - last_log_img) / max(now - last_log_t, 1e-9),
                cpu_hours=trainer.cpu_seconds / 3600, wall_hours=trainer.wall_seconds / 3600, time=now,
            )
            log.write(rec)
            acc, last_log_t, last_log_img = {}, now, trainer.images_seen
            if not all(np.isfinite(v) for k, v in rec.items() if k in ("loss_g", "loss_d")):
                print(f"error: non-finite loss at {rec['kimg']:.3f} kimg: {rec}", file=sys.stderr)
                return 1
        due_time = cfg.snap_minutes > 0 and now - last_snap_t >= cfg.snap_minutes * 60
        due_kimg = cfg.snap_kimg > 0 and trainer.images_seen - last_snap_img >= cfg.snap_kimg * 1000
        if due_time or due_kimg:
            if rank0:
                snapshot(trainer, cfg, run_dir)
            last_snap_t, last_snap_img = time.time(), trainer.images_seen
    if bar is not None:
        bar.close()
    if rank0 and trainer.images_seen != last_snap_img:
        snapshot(trainer, cfg, run_dir)
    if rank0:
        why = "stopped by signal" if stop["flag"] else "done"
        print(f"{why} at {trainer.images_seen / 1000:.3f} kimg, {trainer.cpu_seconds / 3600:.3f} CPU-hours; run folder {run_dir}", flush=True)
    return 0


def snapshot(trainer: Trainer, cfg: TrainConfig, run_dir: Path) -> None:
    path = save_snapshot(run_dir, trainer.images_seen, trainer.modules(), trainer.optimizers(), trainer.train_state(), cfg.keep_snapshots)
    trainer.sample_grid(run_dir / f"grid-{trainer.images_seen:09d}.png")
    if cfg.export_gema:
        export_gema(trainer, run_dir)
    JsonlLog(run_dir / "snapshots.jsonl").write(
        {"kimg": trainer.images_seen / 1000, "snapshot": str(path), "cpu_hours": trainer.cpu_seconds / 3600, "time": time.time(), "p": float(trainer.augment.p)}
    )


if __name__ == "__main__":
    sys.exit(main())
