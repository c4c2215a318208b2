"""Ours / reference step-time ratios of `benches/gpu.sh compare`.

Reads the JSON lines of gpu.jsonl, keeps the fp32 training rows that carry
a "round", pairs ours (dak-pose) with the reference (pytorch-eager) per
method (G alone: work train-g*, full method: train-full*), clip length T and
round, and prints one JSON line per method and T: each round's ratio, the
medians' ratio, and whether every round met the goal (ratio <= 1.0). Rows without a step time
(out of memory, a failed part) are left out and counted.

    python compare_summary.py gpu.jsonl
"""

import json
import statistics
import sys


def method_of(work):
    for prefix, method in (("train-g", "g"), ("train-full", "full")):
        if work.startswith(prefix):
            return method
    return None


def summarise(lines):
    times = {}  # (method, impl) -> {round: step_s}
    missing = 0
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        method = method_of(row.get("work", ""))
        if "round" not in row or method is None:
            continue
        if row.get("precision") != "fp32":
            continue
        if not isinstance(row.get("step_s"), (int, float)):
            missing += 1
            continue
        times.setdefault((method, row.get("frames"), row.get("impl")), {})[row["round"]] = row["step_s"]
    out = []
    for method, frames in sorted({(m, f) for m, f, _ in times}, key=lambda k: (k[0] != "g", k[1] or 0)):
        ours = times.get((method, frames, "dak-pose"), {})
        ref = times.get((method, frames, "pytorch-eager"), {})
        rounds = sorted(set(ours) & set(ref))
        if not rounds:
            continue
        ratios = {str(r): ours[r] / ref[r] for r in rounds}
        median_ours = statistics.median(ours[r] for r in rounds)
        median_ref = statistics.median(ref[r] for r in rounds)
        out.append(
            {
                "work": "compare-summary",
                "method": method,
                "frames": frames,
                "rounds": ratios,
                "median_ours_s": median_ours,
                "median_reference_s": median_ref,
                "ratio_of_medians": median_ours / median_ref,
                "every_round_at_most_1": all(v <= 1.0 for v in ratios.values()),
                "rows_without_step_time": missing,
            }
        )
    return out


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        summary = summarise(f)
    if not summary:
        print("compare_summary: no paired rounds in " + sys.argv[1], file=sys.stderr)
    for row in summary:
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
