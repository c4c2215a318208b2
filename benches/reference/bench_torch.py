"""PyTorch eager reference timings for issue 9, on the model of
dak_pose_torch.py (same layers, shapes and parameter count as dak-model).

Times, with device synchronisation, the median of repeated steps after
warm-up:
  (a) a training step of G alone (baseline: MPJPE + Adam) and of the full
      method (G, G', G'', D_str, D_dyn, GRL, cross-reconstruction with
      structure augmentation and projection), batch 64, T = 27 and 81,
      fp32 and bf16 autocast;
  (b) inference frames/s of G at T = 81 for batch 1, 64, 1024;
  (c) peak GPU memory of each.
Prints one JSON object per measurement; a training row also has the
update alone (update_s) and the objective's forward alone (forward_s).
--split-aux and --zero-grad-in-place run the step the way dak-train's
default does (auxiliary passes apart; gradients accumulated into zeroed
buffers), to price those choices on the same GPU.

    python benches/reference/bench_torch.py [--device cuda] [--channels 512] [--steps 20] [--quick]
        [--frames T] [--precision fp32|bf16] [--method g|full] [--no-inference]
        [--split-aux] [--zero-grad-in-place]
"""
import argparse
import gc
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from dak_pose_torch import Block, Estimator

PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]
FLIP = [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13]


class StructuralDiscriminator(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.LayerNorm(c)
        self.fc1 = nn.Linear(c, c // 2)
        self.fc2 = nn.Linear(c // 2, 1)

    def forward(self, s):
        return self.fc2(F.leaky_relu(self.fc1(self.norm(s.mean(dim=(1, 2)))))).squeeze(-1)


class DynamicDiscriminator(nn.Module):
    def __init__(self, c, frames):
        super().__init__()
        width = max(c // 2, 8)
        self.norm = nn.LayerNorm(c)
        self.embed = nn.Linear(c, width)
        self.pos = nn.Parameter(torch.randn(1, frames, width) * 0.02)
        self.block = Block(width, 4, 2)
        self.out = nn.Linear(width, 1)

    def forward(self, d):
        h = self.block(self.embed(self.norm(d.mean(dim=2))) + self.pos)
        return self.out(h.mean(dim=1)).squeeze(-1)


class Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.lam * g, None


def mpjpe(pred, target):
    return (pred.float() - target).norm(dim=-1).mean()


def lsgan(d_syn, d_real):
    return d_syn.float().sigmoid().square().mean() + (d_real.float().sigmoid() - 1).square().mean()


def structure_augment(x, factors):
    bones = [x[..., j, :] - x[..., p, :] for j, p in enumerate(PARENTS) if p >= 0]
    joints = [x[..., 0, :]]
    for b, (j, p) in enumerate((j, p) for j, p in enumerate(PARENTS) if p >= 0):
        joints.append(joints[p] + bones[b] * factors[:, None, j, None])
    return torch.stack(joints, -2)


def project(x, f, c, k, p, size):
    xx = (x[..., :2] / x[..., 2:3]).clamp(-1, 1)
    r2 = (xx ** 2).sum(-1, keepdim=True)
    radial = 1 + k[:, None, None, 0:1] * r2 + k[:, None, None, 1:2] * r2 ** 2 + k[:, None, None, 2:3] * r2 ** 3
    tan = (p[:, None, None] * xx).sum(-1, keepdim=True)
    px = f[:, None, None] * (xx * (radial + tan) + p[:, None, None] * r2) + c[:, None, None]
    w, h = size[:, 0, None, None, None], size[:, 1, None, None, None]
    return px / w * 2 - torch.cat([torch.ones_like(h), h / w], -1)


class Full(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.g = Estimator(**cfg)
        self.g_sma = Estimator(**cfg)
        self.g_dma = Estimator(**cfg)
        self.d_str = StructuralDiscriminator(cfg["channels"])
        self.d_dyn = DynamicDiscriminator(cfg["channels"], cfg["frames"])


def batch(b, t, device):
    g = torch.Generator(device="cpu").manual_seed(0)
    pose = torch.randn(b, t, 17, 3, generator=g) * 200 + torch.tensor([0.0, 0.0, 4500.0])
    return {
        "x": (torch.rand(b, t, 17, 2, generator=g) * 2 - 1).to(device),
        "pose": pose.to(device),
        "f": torch.full((b, 2), 1145.0, device=device),
        "c": torch.full((b, 2), 500.0, device=device),
        "k": torch.zeros(b, 3, device=device),
        "p": torch.zeros(b, 2, device=device),
        "size": torch.tensor([[1000.0, 1002.0]] * b, device=device),
        "factors": (1 + 0.2 * torch.randn(b, 17, generator=g)).to(device),
        "x_sma": (torch.rand(b, t, 17, 2, generator=g) * 2 - 1).to(device),
        "X_sma": (torch.randn(b, t, 17, 3, generator=g) * 0.2).to(device),
        "x_dma": (torch.rand(b, t, 17, 2, generator=g) * 2 - 1).to(device),
        "X_dma": (torch.randn(b, t, 17, 3, generator=g) * 0.2).to(device),
    }


def full_loss(m, d, lam=0.5, split_aux=False):
    b = d["x"].shape[0]
    target = (d["pose"] - d["pose"][:, :, :1]) / 1000
    pose_sa = structure_augment(d["pose"], d["factors"])
    x_sa = project(pose_sa, d["f"], d["c"], d["k"], d["p"], d["size"])
    target_sa = (pose_sa - pose_sa[:, :, :1]) / 1000
    s_all, d_all = m.g.encode(torch.cat([d["x"], x_sa]))
    s, dd, s_sa, d_sa = s_all[:b], d_all[:b], s_all[b:], d_all[b:]
    pe = mpjpe(m.g.decode(s, dd), target)
    fd = mpjpe(m.g.decode(s, d_sa), target) + mpjpe(m.g.decode(s_sa, dd), target_sa)
    adv = []
    for aux, disc, xs, ts, kind in ((m.g_sma, m.d_str, d["x_sma"], d["X_sma"], 0), (m.g_dma, m.d_dyn, d["x_dma"], d["X_dma"], 1)):
        if split_aux:
            # Real and synthetic clips in two passes (dak-train's part-by-part
            # backward does this to hold one pass at a time): the same
            # function, smaller matrix products.
            fs, fdyn = aux.encode(xs)
            pe = pe + mpjpe(aux(d["x"]), target) + mpjpe(aux.decode(fs, fdyn), ts)
        else:
            fs, fdyn = aux.encode(torch.cat([d["x"], xs]))
            pred = aux.decode(fs, fdyn)
            pe = pe + mpjpe(pred[:b], target) + mpjpe(pred[b:], ts)
            fs, fdyn = fs[b:], fdyn[b:]
        feat, real = (fs, s) if kind == 0 else (fdyn, dd)
        adv.append(lsgan(disc(Reverse.apply(feat, lam)), disc(Reverse.apply(real, lam))))
    return 10 * pe + 4 * fd + 4 * (adv[0] + 2 * adv[1])


def timed(fn, steps, warmup, device):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--channels", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="T=27 only, fp32 only, small batches (CPU smoke run)")
    # One row per process, for a peak-memory reading from outside (nvidia-smi).
    ap.add_argument("--frames", type=int, help="only this T")
    ap.add_argument("--precision", choices=["fp32", "bf16"], help="only this precision")
    ap.add_argument("--method", choices=["g", "full"], help="only this training step")
    ap.add_argument("--no-inference", action="store_true", help="skip the inference rows")
    ap.add_argument("--zero-grad-in-place", action="store_true",
                    help="zero the gradients and let the backward accumulate into them (as dak-train's flat "
                         "gradient buffers) instead of freeing them; work gains -grads-in-place")
    ap.add_argument("--split-aux", action="store_true",
                    help="full method: real and synthetic clips through each auxiliary estimator in two passes "
                         "(as dak-train's default part-by-part backward), work train-full-split-aux")
    args = ap.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    frames_list = [args.frames] if args.frames else [27] if args.quick else [27, 81]
    precisions = ["fp32"] if args.quick or device.type != "cuda" else ["fp32", "bf16"]
    if args.precision:
        precisions = [args.precision]
    methods = [args.method] if args.method else ["g", "full"]
    for frames in frames_list:
        cfg = dict(frames=frames, channels=args.channels)
        for precision in precisions:
            for method in methods:
                torch.manual_seed(0)
                model = (Estimator(**cfg) if method == "g" else Full(cfg)).to(device)
                opt = torch.optim.Adam(model.parameters(), lr=5e-5)
                data = batch(args.batch, frames, device)

                def objective():
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                        if method == "g":
                            return mpjpe(model(data["x"]), (data["pose"] - data["pose"][:, :, :1]) / 1000)
                        return full_loss(model, data, split_aux=args.split_aux)

                def step():
                    loss = objective()
                    opt.zero_grad(set_to_none=not args.zero_grad_in_place)
                    loss.backward()
                    opt.step()

                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                work = f"train-{method}" + ("-split-aux" if method == "full" and args.split_aux else "")
                work += "-grads-in-place" if args.zero_grad_in_place else ""
                row = {"impl": "pytorch-eager", "device": name, "work": work, "frames": frames, "batch": args.batch,
                       "precision": precision}
                oom = None
                try:
                    t = timed(step, args.steps, args.warmup, device)
                except torch.OutOfMemoryError as e:
                    oom = str(e).split(" Including")[0]
                if oom:
                    # Does not fit (T = 81 fp32 full method): a result too; go on
                    # once the failed step's tensors are freed.
                    print(json.dumps({**row, "out_of_memory": oom}), flush=True)
                    del model, opt, data, step, objective
                    gc.collect()
                    torch.cuda.empty_cache()
                    continue
                peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
                # The update alone, from the last step's gradients (still in
                # place): dak-train --bench's update_s.
                update = timed(opt.step, args.steps, 1, device)
                # The objective's forward alone, without autograd: dak-train
                # --bench's forward_s (a gap there is in the forward, else in
                # the backward).
                with torch.no_grad():
                    forward = timed(objective, args.steps, 1, device)
                print(json.dumps({**row, "step_s": t, "samples_per_s": args.batch / t, "update_s": update,
                                  "forward_s": forward, "peak_gib": peak}), flush=True)
                # Give the cache back before the next row: the full method at
                # T = 27 fp32 leaves ~77 GiB cached on an H100, and cuDNN's own
                # workspace (outside the cache) then fails with
                # CUDNN_STATUS_INTERNAL_ERROR instead of an out-of-memory error.
                del model, opt, data, step, objective
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    if args.no_inference:
        return
    cfg = dict(frames=81 if not args.quick else 27, channels=args.channels)
    model = Estimator(**cfg).to(device).eval()
    for b in ([1, 64] if args.quick else [1, 64, 1024]):
        x = torch.rand(b, cfg["frames"], 17, 2, device=device) * 2 - 1
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with torch.no_grad():
            t = timed(lambda: model(x), args.steps, args.warmup, device)
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None
        print(json.dumps({"impl": "pytorch-eager", "device": name, "work": "inference", "frames": cfg["frames"],
                          "batch": b, "precision": "fp32", "step_s": t, "frames_per_s": b * cfg["frames"] / t,
                          "peak_gib": peak}), flush=True)


if __name__ == "__main__":
    main()
