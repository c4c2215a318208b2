"""numpy reference for structure augmentation + projection (issue 4 bench).

Does what dak-augment's `--mode structure` does per clip: draw truncated-normal
limb-group factors (local N(1,0.2), global N(1,0.3), both cut at 2 sigma) and
the thorax/hip perturbation u ~ U(-0.1, 0.1), scale every bone keeping its
direction, rebuild joints by forward kinematics, and project with the
Human3.6M camera model as VideoPose3D's `project_to_2d` (clip to [-1, 1],
radial k1..k3, tangential p1, p2).

--mode per-clip  one clip at a time, as a PyTorch Dataset.__getitem__ would
--mode batched   all clips at once (the fastest numpy can do)

Usage: augment_structure.py CLIPS.npy [--mode per-clip|batched]
Prints {"clips": N, "seconds": s, "clips_per_s": r} as JSON.
"""
import argparse
import json
import time

import numpy as np

PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15])
GROUPS = [[1, 4], [2, 5], [3, 6], [7, 8], [9], [10], [11, 14], [12, 15], [13, 16]]
PERTURBED = [8, 1, 4]
K = dict(f=np.array([1145.05, 1143.78]), c=np.array([512.54, 515.45]),
         k=np.array([-0.2071, 0.2479, -0.0031]), p=np.array([-0.0009, -0.0013]))


def truncated_normal(rng, std, size):
    out = rng.normal(1.0, std, size)
    bad = np.abs(out - 1.0) > 2 * std
    while bad.any():
        out[bad] = rng.normal(1.0, std, bad.sum())
        bad = np.abs(out - 1.0) > 2 * std
    return out


def bone_factors(rng, n):
    local = truncated_normal(rng, 0.2, (n, 9))
    glob = truncated_normal(rng, 0.3, (n, 1))
    f = np.ones((n, 17))
    for g, bones in enumerate(GROUPS):
        f[:, bones] = local[:, g:g + 1] * glob
    f[:, PERTURBED] *= 1.0 + rng.uniform(-0.1, 0.1, (n, 3))
    return f


def augment(x, f):
    """x (..., T, 17, 3), f (..., 17)."""
    bones = x[..., 1:, :] - x[..., PARENTS[1:], :]
    bones = bones * f[..., None, 1:, None]
    out = np.empty_like(x)
    out[..., 0, :] = x[..., 0, :]
    for j in range(1, 17):
        out[..., j, :] = out[..., PARENTS[j], :] + bones[..., j - 1, :]
    return out


def project(x):
    xx = np.clip(x[..., :2] / x[..., 2:], -1, 1)
    r2 = np.sum(xx ** 2, axis=-1, keepdims=True)
    radial = 1 + K["k"][0] * r2 + K["k"][1] * r2 ** 2 + K["k"][2] * r2 ** 3
    tan = np.sum(K["p"] * xx, axis=-1, keepdims=True)
    d = xx * (radial + tan) + K["p"] * r2
    return K["f"] * d + K["c"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("clips")
    ap.add_argument("--mode", choices=["per-clip", "batched"], default="per-clip")
    args = ap.parse_args()
    clips = np.load(args.clips)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    if args.mode == "batched":
        aug = augment(clips, bone_factors(rng, len(clips)))
        px = project(aug).astype(np.float32)
        out = aug.astype(np.float32)
    else:
        for clip in clips:
            aug = augment(clip, bone_factors(rng, 1)[0])
            px = project(aug).astype(np.float32)
            out = aug.astype(np.float32)
    seconds = time.perf_counter() - start
    assert np.isfinite(px).all() and np.isfinite(out).all()
    print(json.dumps({"clips": len(clips), "seconds": seconds, "clips_per_s": len(clips) / seconds}))


if __name__ == "__main__":
    main()
