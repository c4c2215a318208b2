#!/usr/bin/env python3
"""Python reference for `dak-prep h36m --2d gt` with only data_3d_h36m.npz.

Usage:
    convert_h36m.py DATA_DIR OUT_DIR

The yardstick of benches/convert_h36m.sh: the same conversion written the
way VideoPose3D's own scripts are (numpy, vectorised per sequence, one
process, no multiprocessing) with pyarrow writing the Parquet. Output is the
shard directory dak-prep writes: the source_frames columns and types of
schemas/source_frames.v1.json, zstd level 3, row groups of 32768 rows,
files of 2^20 rows (dak-io's WriterOptions for source_frames), cameras.parquet
and a manifest.json with each file's sha256.

For each subject (S1, S5, ..., S11) and action (sorted), for each of the
four cameras: keep VideoPose3D's 17 of the 32 mocap joints, metres -> mm,
world -> camera as VideoPose3D's world_to_camera (qrot(qinverse(q), X - t)),
and project with VideoPose3D's distortion model (project_to_2d followed by
image_coordinates, computed directly in pixels). Rows are camera-major
within a sequence, as dak-prep writes them.

Prints {"frames_3d", "rows", "files", "seconds"} as JSON on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parents[2]
CAMERAS_JSON = REPO_ROOT / "crates/dak-datasets/data/h36m_cameras.json"
SCHEMAS = REPO_ROOT / "schemas"

DATASET = "h36m"
FPS = 50.0
TRAIN_SUBJECTS = {"S1", "S5", "S6", "S7", "S8"}
# VideoPose3D's 17 joints among the 32 of the mocap (remove_static_joints).
KEPT_JOINTS = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
# dak-io's WriterOptions for source_frames.
ZSTD_LEVEL = 3
ROW_GROUP_ROWS = 32_768
ROWS_PER_FILE = 1 << 20
# Lists keep arrow-rs's element name ("item") rather than Parquet's
# "element", so the files read back with exactly the schema dak-prep writes.
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": ZSTD_LEVEL,
                   "use_compliant_nested_type": False}


# --------------------------------------------------------------------------
# Schemas: built from schemas/*.json as dak-io does, metadata included
# --------------------------------------------------------------------------

SCALARS = {"utf8": pa.string(), "bool": pa.bool_(), "u32": pa.uint32(), "u64": pa.uint64(),
           "f32": pa.float32(), "f64": pa.float64()}


def arrow_type(ty: str) -> pa.DataType:
    """`f32[51]` -> fixed_size_list<item: float not null>[51], `utf8` -> string, ..."""
    if ty.endswith("]"):
        scalar, width = ty[:-1].split("[")
        item = pa.field("item", SCALARS[scalar], nullable=False)
        return pa.list_(item, int(width)) if width else pa.list_(item)
    return SCALARS[ty]


def load_schema(file: str) -> pa.Schema:
    doc = json.loads((SCHEMAS / file).read_text())
    fields = [pa.field(c["name"], arrow_type(c["type"]), nullable=c["nullable"])
              for c in doc["columns"]]
    metadata = {**doc["metadata"], "dak.schema": doc["name"],
                "dak.schema_version": str(doc["version"])}
    return pa.schema(fields, metadata=metadata)


# --------------------------------------------------------------------------
# VideoPose3D's camera model (common/quaternion.py, common/camera.py)
# --------------------------------------------------------------------------

def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by the unit quaternion q (w, x, y, z)."""
    qvec = np.broadcast_to(q[1:], v.shape)
    uv = np.cross(qvec, v)
    uuv = np.cross(qvec, uv)
    return v + 2.0 * (q[0] * uv + uuv)


def qinverse(q: np.ndarray) -> np.ndarray:
    return np.concatenate([q[:1], -q[1:]])


def world_to_camera(x: np.ndarray, rotation: np.ndarray, t: np.ndarray) -> np.ndarray:
    return qrot(qinverse(rotation), x - t)


def project_to_pixels(x: np.ndarray, intr: dict) -> np.ndarray:
    """project_to_2d + image_coordinates: both affine in f and c, so this is
    f * XXX + c with VideoPose3D's clipping and tangential term as written."""
    f = np.asarray(intr["focal_length_px"])
    c = np.asarray(intr["center_px"])
    k = np.asarray(intr["radial"])
    p = np.asarray(intr["tangential"])
    xx = np.clip(x[..., :2] / x[..., 2:], -1.0, 1.0)
    r2 = np.sum(xx ** 2, axis=-1, keepdims=True)
    radial = 1.0 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    tan = np.sum(p * xx, axis=-1, keepdims=True)
    return f * (xx * (radial + tan) + p * r2) + c


# --------------------------------------------------------------------------
# Output: rolling Parquet files like dak-io's ShardWriter
# --------------------------------------------------------------------------

def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


class ShardWriter:
    """part-00000.parquet, part-00001.parquet, ...: ROWS_PER_FILE rows each.

    pyarrow cuts a row group at the end of every write_table call, so
    sequences are buffered until a full row group is there; dak-io's
    ArrowWriter fills row groups across batches the same way.
    """

    def __init__(self, out: Path, schema: pa.Schema):
        self.out, self.schema = out, schema
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.writer: pq.ParquetWriter | None = None
        self.file_rows = 0
        self.files: list[dict] = []

    def write(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        while self.pending_rows >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def _flush(self, rows: int) -> None:
        # ROWS_PER_FILE is a multiple of ROW_GROUP_ROWS: groups never straddle files.
        buffered = pa.concat_tables(self.pending)
        if self.writer is None:
            name = f"part-{len(self.files):05d}.parquet"
            self.writer = pq.ParquetWriter(self.out / name, self.schema, **PARQUET_OPTIONS)
            self.files.append({"path": name, "schema": self.schema.metadata[b"dak.schema"].decode(),
                               "rows": 0})
        self.writer.write_table(buffered.slice(0, rows), row_group_size=ROW_GROUP_ROWS)
        rest = buffered.slice(rows)
        self.pending, self.pending_rows = [rest], rest.num_rows
        self.file_rows += rows
        self.files[-1]["rows"] += rows
        if self.file_rows >= ROWS_PER_FILE:
            self._close()

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer, self.file_rows = None, 0

    def finish(self) -> list[dict]:
        if self.pending_rows:
            self._flush(self.pending_rows)
        self._close()
        for entry in self.files:
            path = self.out / entry["path"]
            entry.update(bytes=path.stat().st_size, sha256=sha256_of(path))
        return self.files


# --------------------------------------------------------------------------
# The conversion
# --------------------------------------------------------------------------

def subject_key(subject: str) -> tuple:
    return int(subject.lstrip("S")), subject


def sequence_tables(schema: pa.Schema, subject: str, action: str, positions: np.ndarray,
                    cameras: list, rig: list):
    """One table per camera (rows = frames) for a (N, 32, 3) metres sequence."""
    n = len(positions)
    world_mm = positions[:, KEPT_JOINTS].astype(np.float64) * 1000.0
    world_col = world_mm.astype(np.float32).reshape(n, -1)
    constants = {
        "dataset": DATASET,
        "split": "train" if subject in TRAIN_SUBJECTS else "test",
        "subject": subject,
        # "Walking 1" and "Walking 2" are takes of one action.
        "action": action.split()[0],
        "sequence": f"{subject}/{action}",
        "joints_2d_source": "projection",
    }
    frame = np.arange(n, dtype=np.uint32)
    fps = np.full(n, FPS, dtype=np.float32)
    valid = np.ones(n, dtype=bool)

    def fixed(values: np.ndarray, column: str) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()),
                                                 type=schema.field(column).type)

    for camera, ext in zip(cameras, rig):
        rotation = np.asarray(ext["world_from_camera_wxyz"])
        center = np.asarray(ext["center_world_mm"])
        camera_mm = world_to_camera(world_mm, rotation, center)
        pixels = project_to_pixels(camera_mm, camera["intrinsics"])
        columns = {
            **{name: pa.repeat(pa.scalar(value), n) for name, value in constants.items()},
            "camera": pa.repeat(pa.scalar(camera["id"]), n),
            "frame": pa.array(frame),
            "fps": pa.array(fps),
            "joints_3d_world_mm": fixed(world_col, "joints_3d_world_mm"),
            "joints_3d_camera_mm": fixed(camera_mm.astype(np.float32), "joints_3d_camera_mm"),
            "joints_2d_px": fixed(pixels.astype(np.float32), "joints_2d_px"),
            "valid": pa.array(valid),
        }
        # Absent columns (detections, confidences, detector) are all null.
        yield pa.Table.from_arrays(
            [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema],
            schema=schema)


def camera_table(schema: pa.Schema, subjects: list, cameras: list, extrinsics: dict) -> pa.Table:
    rows = []
    for subject in subjects:
        for camera, ext in zip(cameras, extrinsics[subject]):
            intr = camera["intrinsics"]
            rows.append({"dataset": DATASET, "subject": subject, "camera": camera["id"],
                         "focal_length_px": intr["focal_length_px"], "center_px": intr["center_px"],
                         "radial": intr["radial"], "tangential": intr["tangential"],
                         "width_px": intr["width_px"], "height_px": intr["height_px"],
                         "world_from_camera_wxyz": ext["world_from_camera_wxyz"],
                         "center_world_mm": ext["center_world_mm"]})
    return pa.Table.from_pylist(rows, schema=schema)


def convert(data_dir: Path, out: Path) -> dict:
    source = data_dir / "data_3d_h36m.npz"
    calibration = json.loads(CAMERAS_JSON.read_text())
    cameras, extrinsics = calibration["cameras"], calibration["extrinsics"]
    frames_schema = load_schema("source_frames.v1.json")
    cameras_schema = load_schema("cameras.v1.json")

    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("part-*.parquet"), out / "cameras.parquet", out / "manifest.json"]:
        stale.unlink(missing_ok=True)

    # dak-prep fingerprints its input for the manifest's up-to-date check.
    input_entry = {"file": source.name, "bytes": source.stat().st_size, "sha256": sha256_of(source)}
    positions_3d = np.load(source, allow_pickle=True)["positions_3d"].item()

    writer = ShardWriter(out, frames_schema)
    subjects = sorted(positions_3d, key=subject_key)
    frames_3d = sequences = 0
    for subject in subjects:
        for action in sorted(positions_3d[subject]):
            positions = positions_3d[subject][action]
            assert positions.ndim == 3 and positions.shape[1:] == (32, 3), (subject, action)
            assert np.isfinite(positions).all(), (subject, action)
            for table in sequence_tables(frames_schema, subject, action, positions,
                                         cameras, extrinsics[subject]):
                writer.write(table)
            frames_3d += len(positions)
            sequences += 1
    files = writer.finish()

    camera_path = out / "cameras.parquet"
    pq.write_table(camera_table(cameras_schema, subjects, cameras, extrinsics), camera_path,
                   **PARQUET_OPTIONS)
    files.append({"path": camera_path.name, "schema": "cameras", "rows": 4 * len(subjects),
                  "bytes": camera_path.stat().st_size, "sha256": sha256_of(camera_path)})
    rows = sum(f["rows"] for f in files if f["schema"] == "source_frames")
    manifest = {
        "manifest_version": 1, "schema": "source_frames", "schema_version": 1,
        "files": files, "total_rows": rows, "command": sys.argv, "seed": None,
        "producer": "benches/reference/convert_h36m.py",
        "extra": {"config": {"settings": {"2d": "gt"}, "inputs": [input_entry]},
                  "dataset": DATASET, "sequences": sequences, "rows": rows},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return {"frames_3d": frames_3d, "rows": rows,
            "files": sum(f["schema"] == "source_frames" for f in files)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    result = convert(args.data_dir, args.out_dir)
    result["seconds"] = round(time.perf_counter() - start, 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
