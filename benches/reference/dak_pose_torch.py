"""The DAK-Pose estimator G in PyTorch, layer for layer and name for name the
same as crates/dak-model, so `dak-train`'s export loads with
`model.load_state_dict(safetensors.torch.load_file(".../export/model.safetensors"))`.

Used as the PyTorch reference of the GPU benchmarks (issue 9) and by the
interop test that checks our export predicts the same 3D in PyTorch.

    python benches/reference/dak_pose_torch.py EXPORT_DIR KEYPOINTS.npy WIDTH HEIGHT OUT.json
lifts (F, 17, 2) pixel keypoints like `dak-infer --no-flip` and writes the
root-relative 3D (mm) per frame.
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, channels, heads):
        super().__init__()
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.heads = heads

    def forward(self, x):
        n, s, c = x.shape
        qkv = self.qkv(x).view(n, s, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(n, s, c))


class Mlp(nn.Module):
    def __init__(self, channels, ratio):
        super().__init__()
        self.fc1 = nn.Linear(channels, ratio * channels)
        self.fc2 = nn.Linear(ratio * channels, channels)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, channels, heads, ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(channels)
        self.attn = Attention(channels, heads)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = Mlp(channels, ratio)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def over_joints(block, x):
    b, t, j, c = x.shape
    return block(x.reshape(b * t, j, c)).view(b, t, j, c)


def over_frames(block, x):
    b, t, j, c = x.shape
    y = block(x.permute(0, 2, 1, 3).reshape(b * j, t, c))
    return y.view(b, j, t, c).permute(0, 2, 1, 3)


class Pos(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(shape))


class Encoder(nn.Module):
    def __init__(self, pos_name, pos_shape, channels, heads, ratio, layers):
        super().__init__()
        self.embed = nn.Linear(2, channels)
        setattr(self, pos_name, Pos(pos_shape))
        self.pos_name = pos_name
        self.blocks = nn.ModuleList(Block(channels, heads, ratio) for _ in range(layers))


class Decoder(nn.Module):
    def __init__(self, frames, joints, channels, heads, ratio, layers):
        super().__init__()
        self.fuse = nn.Linear(2 * channels, channels)
        self.spatial = Pos((1, 1, joints, channels))
        self.temporal = Pos((1, frames, 1, channels))
        self.spatial_blocks = nn.ModuleList(Block(channels, heads, ratio) for _ in range(layers))
        self.temporal_blocks = nn.ModuleList(Block(channels, heads, ratio) for _ in range(layers))
        self.norm = nn.LayerNorm(channels)


class Estimator(nn.Module):
    """G: (B, T, 17, 2) normalised 2D -> (B, T, 17, 3) root-relative metres."""

    def __init__(self, frames=27, joints=17, channels=512, encoder_layers=4, decoder_layers=6, heads=8, mlp_ratio=2,
                 dropout=0.0):
        super().__init__()
        c, half = channels, encoder_layers // 2
        self.structural = Encoder("spatial", (1, 1, joints, c), c, heads, mlp_ratio, half)
        self.dynamic = Encoder("temporal", (1, frames, 1, c), c, heads, mlp_ratio, half)
        self.decoder = Decoder(frames, joints, c, heads, mlp_ratio, decoder_layers)
        self.head = nn.Linear(c, 3)

    def encode(self, x):
        s = self.structural.embed(x) + self.structural.spatial.pos
        for b in self.structural.blocks:
            s = over_joints(b, s)
        d = self.dynamic.embed(x) + self.dynamic.temporal.pos
        for b in self.dynamic.blocks:
            d = over_frames(b, d)
        return s, d

    def decode(self, s, d):
        dec = self.decoder
        x = dec.fuse(torch.cat([s, d], -1)) + dec.spatial.pos + dec.temporal.pos
        for sb, tb in zip(dec.spatial_blocks, dec.temporal_blocks):
            x = over_frames(tb, over_joints(sb, x))
        return self.head(dec.norm(x))

    def forward(self, x):
        return self.decode(*self.encode(x))


def load_export(export_dir, device="cpu"):
    from safetensors.torch import load_file

    with open(f"{export_dir}/model.json") as f:
        config = json.load(f)["model"]
    model = Estimator(**config).to(device)
    model.load_state_dict(load_file(f"{export_dir}/model.safetensors", device=device), strict=True)
    return model.eval(), config


def lift(model, frames, pixels, width, height):
    """Non-overlapping T-frame windows, edge-padded, like dak-infer --no-flip."""
    import numpy as np

    x = pixels[..., :2] / width * 2.0 - np.array([1.0, height / width])
    n = x.shape[0]
    starts = list(range(0, n, frames))
    windows = np.stack([x[np.clip(np.arange(s, s + frames), 0, n - 1)] for s in starts]).astype(np.float32)
    with torch.no_grad():
        pred = model(torch.from_numpy(windows)).numpy()
    pred = (pred - pred[:, :, :1]) * 1000.0
    out = np.concatenate([p for p in pred])[:n]
    return out


def main():
    import numpy as np

    export_dir, keypoints, width, height, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    model, config = load_export(export_dir)
    poses = lift(model, config["frames"], np.load(keypoints), width, height)
    with open(out, "w") as f:
        json.dump(poses.tolist(), f)


if __name__ == "__main__":
    main()
