#!/usr/bin/env bash
# Converter benchmark at full Human3.6M scale (issue 3).
#
# Usage: benches/convert_h36m.sh [FRAMES]        (default 1560000, the real size)
#
# Converts a generated data_3d_h36m.npz of FRAMES 3D frames (x 4 cameras =
# rows) twice, each under /usr/bin/time -v:
#   - dak-prep -q h36m --2d gt (target/release/dak-prep, RAYON_NUM_THREADS=2)
#   - benches/reference/convert_h36m.py, the numpy + pyarrow reference
# and appends wall time, rows/s, 3D frames/s and peak RSS of both, with the
# speed-up, to benches/RESULTS.md. The goal of issue 3 is a speed-up >= 10x.
#
# Builds nothing: run `cargo build --release --bins` first.
# Environment: PYTHON (default .venv/bin/python, else python3); DAK_PREP
# (default target/release/dak-prep); KEEP_OUTPUT=1 keeps both shard
# directories (~3 GB each at full scale).
# Work files live in target/bench-h36m/; the input is regenerated only when
# FRAMES or the fixture generator changes.

set -euo pipefail

FRAMES="${1:-1560000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/target/bench-h36m"
DATA="$WORK/h36m-scale"
INPUT="$DATA/data_3d_h36m.npz"
STAMP="$WORK/input.stamp"
DAK_PREP="${DAK_PREP:-$ROOT/target/release/dak-prep}"
GENERATOR="$ROOT/scripts/fixtures/make_fixtures.py"
REFERENCE="$ROOT/benches/reference/convert_h36m.py"
RESULTS="$ROOT/benches/RESULTS.md"
HEADING="## Converter: Human3.6M at full scale (issue 3)"
THREADS=2
CAMERAS=4

die() {
    echo "convert_h36m.sh: $*" >&2
    exit 1
}

[[ "$FRAMES" =~ ^[1-9][0-9]*$ ]] || die "FRAMES must be a positive integer, got '$FRAMES'"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (GNU time; apt-get install time)"
[[ -x "$DAK_PREP" ]] || die "$DAK_PREP not found; run \`cargo build --release --bins\` first"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
"$PYTHON" -c "import numpy, pyarrow, scipy, h5py" 2>/dev/null \
    || die "$PYTHON lacks numpy/pyarrow/scipy/h5py (set PYTHON to an interpreter that has them)"

mkdir -p "$WORK"

# ---- Input: regenerate when FRAMES or the generator changed.
want_stamp="frames=$FRAMES generator=$(sha256sum "$GENERATOR" | cut -d' ' -f1)"
if [[ ! -f "$INPUT" || "$(cat "$STAMP" 2>/dev/null)" != "$want_stamp" ]]; then
    echo "generating $INPUT ($FRAMES 3D frames) ..." >&2
    rm -f "$STAMP"
    "$PYTHON" "$GENERATOR" "$WORK" --h36m-scale "$FRAMES" >&2 || die "fixture generation failed"
    echo "$want_stamp" >"$STAMP"
fi

# ---- Same cores for both: pin to two CPUs where the machine has more.
PIN=()
PINNED="no"
if [[ "$(nproc)" -gt "$THREADS" ]] && command -v taskset >/dev/null; then
    PIN=(taskset -c "0-$((THREADS - 1))")
    PINNED="CPUs 0-$((THREADS - 1))"
fi

# Runs a command under GNU time; logs go to $WORK/NAME.{log,time}.
timed() {
    local name="$1"
    shift
    # Both converters read a warm page cache, whichever runs first.
    cat "$INPUT" >/dev/null
    echo "running $name ..." >&2
    if ! /usr/bin/time -v -o "$WORK/$name.time" ${PIN[@]+"${PIN[@]}"} "$@" >"$WORK/$name.log" 2>&1; then
        tail -n 20 "$WORK/$name.log" >&2
        die "$name failed (full output in $WORK/$name.log)"
    fi
}

# "Elapsed (wall clock) time (h:mm:ss or m:ss): 1:02.35" -> seconds.
wall_seconds() {
    awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($NF, p, ":"); s = 0
        for (i = 1; i <= n; i++) s = s * 60 + p[i]
        printf "%.2f", s
    }' "$1"
}

peak_mib() {
    awk -F': ' '/Maximum resident set size/ { printf "%.0f", $NF / 1024 }' "$1"
}

manifest_rows() {
    "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["total_rows"])' "$1/manifest.json"
}

RUST_OUT="$WORK/out-dak-prep"
PY_OUT="$WORK/out-python"
timed dak-prep env RAYON_NUM_THREADS="$THREADS" "$DAK_PREP" -q h36m --2d gt \
    --data-dir "$DATA" --out "$RUST_OUT" --force
timed python "$PYTHON" "$REFERENCE" "$DATA" "$PY_OUT"

rust_rows="$(manifest_rows "$RUST_OUT")"
py_rows="$(manifest_rows "$PY_OUT")"
[[ "$rust_rows" == "$py_rows" ]] || die "row counts differ: dak-prep $rust_rows, Python $py_rows"
[[ "$rust_rows" == "$((FRAMES * CAMERAS))" ]] \
    || die "expected $((FRAMES * CAMERAS)) rows ($FRAMES frames x $CAMERAS cameras), got $rust_rows"

# Same work, same answer: the first and last row groups of both outputs agree.
"$PYTHON" - "$RUST_OUT" "$PY_OUT" <<'EOF' || die "dak-prep and the Python reference disagree"
import json, sys
import numpy as np
import pyarrow.parquet as pq

def row_group(out, which):
    files = [f["path"] for f in json.load(open(f"{out}/manifest.json"))["files"]
             if f["schema"] == "source_frames"]
    parquet = pq.ParquetFile(f"{out}/{files[which]}")
    return parquet.read_row_group(which if which == 0 else parquet.num_row_groups - 1)

tolerance = {"joints_3d_world_mm": 0.0, "joints_3d_camera_mm": 1e-2, "joints_2d_px": 1e-3}
for which in (0, -1):
    ours, ref = row_group(sys.argv[1], which), row_group(sys.argv[2], which)
    # Files split differently (dak-prep: one file per group of sequences),
    # rows come in the same order: compare the leading / trailing rows both have.
    n = min(ours.num_rows, ref.num_rows)
    ours, ref = (ours.slice(0, n), ref.slice(0, n)) if which == 0 else \
        (ours.slice(ours.num_rows - n), ref.slice(ref.num_rows - n))
    for name in ("sequence", "camera", "frame", "split", "action", "joints_2d_source"):
        assert ours[name].equals(ref[name]), name
    for name, tol in tolerance.items():
        a = ours[name].combine_chunks().flatten().to_numpy()
        b = ref[name].combine_chunks().flatten().to_numpy()
        err = float(np.abs(a - b).max())
        assert err <= tol, f"{name}: max |difference| {err} > {tol}"
EOF

rust_s="$(wall_seconds "$WORK/dak-prep.time")"
py_s="$(wall_seconds "$WORK/python.time")"
rust_mib="$(peak_mib "$WORK/dak-prep.time")"
py_mib="$(peak_mib "$WORK/python.time")"
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / (s > 0 ? s : 0.01) }'; }
rust_rows_s="$(rate "$rust_rows" "$rust_s")"
py_rows_s="$(rate "$py_rows" "$py_s")"
rust_frames_s="$(rate "$FRAMES" "$rust_s")"
py_frames_s="$(rate "$FRAMES" "$py_s")"
speedup="$(awk -v a="$rust_rows_s" -v b="$py_rows_s" 'BEGIN { printf "%.1f", a / b }')"
goal="$(awk -v x="$speedup" 'BEGIN { print (x >= 10 ? "met" : "not met") }')"

commit="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [[ "$commit" != unknown ]] && ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then
    commit="$commit (uncommitted changes)"
fi
cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
versions="$("$PYTHON" -c 'import sys, numpy, pyarrow; print(f"Python {sys.version.split()[0]}, numpy {numpy.__version__}, pyarrow {pyarrow.__version__}")')"
input_mib="$(du -m "$INPUT" | cut -f1)"

block="$(cat <<EOF
### $(date -u +%Y-%m-%d), commit $commit, $FRAMES frames

Machine: $(nproc) CPUs (${cpu:-unknown CPU}), pinned: $PINNED; $(${DAK_PREP} --version), $versions.
Input: $input_mib MiB data_3d_h36m.npz, $FRAMES 3D frames x $CAMERAS cameras = $rust_rows rows.
Command: \`benches/convert_h36m.sh $FRAMES\`. Speed-up ${speedup}x (goal >= 10x: $goal).

| converter | wall s | rows/s | 3D frames/s | peak RSS MiB |
|---|---:|---:|---:|---:|
| dak-prep h36m --2d gt (RAYON_NUM_THREADS=$THREADS) | $rust_s | $rust_rows_s | $rust_frames_s | $rust_mib |
| Python reference (numpy + pyarrow, 1 process) | $py_s | $py_rows_s | $py_frames_s | $py_mib |
EOF
)"
echo "$block"

# Append at the end of the section (created once, at the end of the file),
# before any later section, with exactly one blank line around the block.
section_file="$WORK/results-section.md"
cat >"$section_file" <<EOF
$HEADING

\`benches/convert_h36m.sh [FRAMES]\`: dak-prep against the numpy + pyarrow reference
(\`benches/reference/convert_h36m.py\`) on a generated Human3.6M-sized data_3d_h36m.npz
(2D projected from 3D), same machine, same run. Wall time and peak RSS from \`/usr/bin/time -v\`.
EOF
block_file="$WORK/results-block.md"
echo "$block" >"$block_file"
awk -v heading="$HEADING" -v block_file="$block_file" -v section_file="$section_file" '
    function emit(file) { print ""; while ((getline line < file) > 0) print line; close(file) }
    /^$/ { blanks++; next }  # held back, so the block never lands after a run of blank lines
    {
        if (inside && !done && /^## /) { emit(block_file); done = 1; blanks = 1 }
        for (; blanks > 0; blanks--) print ""
        if ($0 == heading) inside = 1
        print
    }
    END {
        if (!inside) emit(section_file)
        if (!done) emit(block_file)
    }
' "$RESULTS" >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
echo "appended to $RESULTS" >&2

if [[ "${KEEP_OUTPUT:-0}" != 1 ]]; then
    rm -rf "$RUST_OUT" "$PY_OUT"
fi
