"""Read a dak-pose shard directory with pyarrow and polars; print what was read as JSON.

Used by the Rust interop test (tests/it/interop.rs), which compares every
value with what Rust wrote. Also checks the files' Arrow schema against the
JSON schema in schemas/, the single source of truth for column layout.
"""
import json
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

TYPES = {"utf8": pa.string(), "bool": pa.bool_(), "u32": pa.uint32(), "u64": pa.uint64(),
         "f32": pa.float32(), "f64": pa.float64()}


def arrow_type(spec: str) -> pa.DataType:
    if spec.endswith("]"):
        scalar, size = spec[:-1].split("[")
        item = pa.field("item", TYPES[scalar], nullable=False)
        return pa.list_(item) if size == "" else pa.list_(item, int(size))
    return TYPES[spec]


def check_schema(table: pa.Table, schema_doc: dict, path: Path) -> None:
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    assert meta.get("dak.schema") == schema_doc["name"], (path, meta)
    assert meta.get("dak.schema_version") == str(schema_doc["version"]), (path, meta)
    for col in schema_doc["columns"]:
        field = table.schema.field(col["name"])
        assert field.type == arrow_type(col["type"]), (path, col["name"], field.type)
        assert field.nullable == col["nullable"], (path, col["name"])


def main() -> None:
    shard_dir, schemas_dir = Path(sys.argv[1]), Path(sys.argv[2])
    manifest = json.loads((shard_dir / "manifest.json").read_text())
    doc = json.loads((schemas_dir / f"{manifest['schema']}.v{manifest['schema_version']}.json").read_text())
    files = [shard_dir / f["path"] for f in manifest["files"] if f["schema"] == manifest["schema"]]

    rows = []
    for path in files:
        table = pq.read_table(path)
        check_schema(table, doc, path)
        rows.extend(table.to_pylist())

    # polars: a lazy scan over the same files must see the same rows and values.
    lazy = pl.concat([pl.scan_parquet(p) for p in files])
    frame = lazy.collect()
    assert frame.height == len(rows), (frame.height, len(rows))
    for name in ("joints_3d_camera_mm", "joints_2d_px"):
        by_polars = frame[name].to_list()
        assert all(list(a) == b[name] for a, b in zip(by_polars, rows)), name
    per_subject = (lazy.group_by("dataset", "subject").agg(pl.len().alias("rows"))
                   .sort("dataset", "subject").collect().to_dicts())

    json.dump({"rows": rows, "polars_rows": frame.height, "per_subject": per_subject}, sys.stdout)


if __name__ == "__main__":
    main()
