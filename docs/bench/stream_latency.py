#!/usr/bin/env python3
"""Figures of one streaming benchmark run (docs/BENCHMARKS.md, "Streaming, side by
side with Spark Streaming"), from the files docs/bench/stream_bench.sh leaves in OUTDIR:

  sent.txt  `<lines sent so far> <wall ms>` about every 10 ms (stream_load.py --sent-log)
  gen.json  stream_load.py's summary: lines, rate, seconds, behind_s, checksum
  job.out   the job's stdout: `BATCH time_ms= lines= cum_lines= done_ms= words= checksum=`
            once a batch's totals are computed, `STAT time_ms= records= sched_ms=
            proc_ms= total_ms=` once a batch completed (Ember: stateful-wordcount
            --report; Spark: docs/bench/spark_streaming/StatefulWordCount.scala)
  load.txt  `uptime` every 5 s during the run (optional)

    python3 docs/bench/stream_latency.py OUTDIR --batch-ms 1000

Latency: one receiver delivers lines in order, so line i (1-based) belongs to the
first batch whose cum_lines >= i; its latency is that batch's done_ms minus line i's
send time, interpolated linearly between the two sent.txt records around it. Lines
are sampled evenly (at most 2,000,000) for the percentiles.

Warm-up: processing times and latencies leave out the first --warmup-s seconds
(default 10) after the first line was sent (JIT compilation of the JVM, first
connections); `latency_all_ms` keeps every line.

Processing time: over the batches that carried data, without the first and the last
of them (partly filled) and the warm-up. Scheduling delay: its maximum over the data period, over its
last 10 s, and at the last data batch.

Sustained (the definition used for the highest sustained rate): the generator ended
less than 1 s behind its schedule (the receiver kept up with the socket), the
scheduling delay over the last 10 s of the data period stayed below one batch
interval (bounded, not growing), every line sent was in a batch's totals before the
job stopped, and the final checksum equals the generator's.

Prints one JSON object.
"""
import argparse
import bisect
import json
import os
import re


def kv(line):
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", line)}


def pct(sorted_values, q):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("outdir")
    p.add_argument("--batch-ms", type=int, required=True)
    p.add_argument("--warmup-s", type=float, default=10.0)
    a = p.parse_args()
    d = a.outdir
    sent = [tuple(float(x) for x in l.split()) for l in open(os.path.join(d, "sent.txt")) if l.strip()]
    gen_text = open(os.path.join(d, "gen.json")).read().strip()
    if gen_text:
        gen = json.loads(gen_text)
    else:  # the generator was stopped before it finished: not sustained
        gen = {"lines": int(sent[-1][0]), "rate": None, "behind_s": float("inf"), "checksum": None, "killed": True}
    sent_n = [int(s[0]) for s in sent]
    sent_t = [s[1] for s in sent]
    batches, stats = {}, {}
    for line in open(os.path.join(d, "job.out"), errors="replace"):
        if line.startswith("BATCH "):
            b = kv(line)
            batches[b["time_ms"]] = b
        elif line.startswith("STAT "):
            s = kv(line)
            stats[s["time_ms"]] = s
    times = sorted(batches)
    data = [t for t in times if batches[t]["lines"] > 0]
    out = {"rate": gen["rate"], "batch_ms": a.batch_ms, "gen": gen, "batches": len(times), "data_batches": len(data)}

    loads = []
    lp = os.path.join(d, "load.txt")
    if os.path.exists(lp):
        for line in open(lp):
            m = re.search(r"load average: ([\d.]+)", line)
            if m:
                loads.append(float(m.group(1)))
    out["load_1min"] = [min(loads), max(loads)] if loads else None

    if not data:
        out["error"] = "no batch carried data"
        print(json.dumps(out))
        return
    warm_t = sent_t[0] + a.warmup_s * 1000
    out["warmup_s"] = a.warmup_s
    # Processing time, without the first and last data batches and the warm-up.
    inner = [t for t in data[1:-1] if t >= warm_t] or data
    procs = sorted(stats[t]["proc_ms"] for t in inner if t in stats)
    out["proc_ms"] = {"median": pct(procs, 50), "p90": pct(procs, 90), "max": procs[-1] if procs else None}
    recs = sorted(batches[t]["lines"] for t in inner)
    out["lines_per_batch"] = {"median": pct(recs, 50), "min": recs[0], "max": recs[-1]}
    sched = [(t, stats[t]["sched_ms"]) for t in data if t in stats]
    last_t = data[-1]
    tail = [s for t, s in sched if t > last_t - 10000]
    out["sched_ms"] = {
        "max": max(s for _, s in sched) if sched else None,
        "max_last_10s": max(tail) if tail else None,
        "at_last_data_batch": stats[last_t]["sched_ms"] if last_t in stats else None,
    }
    final = batches[times[-1]]
    out["final"] = {"cum_lines": final["cum_lines"], "checksum": final["checksum"]}
    out["exact"] = final["checksum"] == gen["checksum"] and final["cum_lines"] == gen["lines"]

    # Latency of sampled lines.
    total = min(gen["lines"], final["cum_lines"])
    step = max(1, total // 2_000_000)
    cum = [batches[t]["cum_lines"] for t in times]
    done = [batches[t]["done_ms"] for t in times]
    lat, lat_all = [], []
    for i in range(1, total + 1, step):
        j = bisect.bisect_left(sent_n, i)  # first record with n >= i
        if j == 0:
            ts = sent_t[0]
        else:
            n0, n1, t0, t1 = sent_n[j - 1], sent_n[j], sent_t[j - 1], sent_t[j]
            ts = t0 + (i - n0) / (n1 - n0) * (t1 - t0)
        k = bisect.bisect_left(cum, i)
        lat_all.append(done[k] - ts)
        if ts >= warm_t:
            lat.append(done[k] - ts)
    for key, values in (("latency_ms", lat), ("latency_all_ms", lat_all)):
        values.sort()
        if values:
            out[key] = {q: round(pct(values, v)) for q, v in (("p50", 50), ("p90", 90), ("p99", 99))}
            out[key]["max"] = round(values[-1])
            out[key]["samples"] = len(values)
    out["sustained"] = bool(
        gen["behind_s"] < 1.0
        and out["sched_ms"]["max_last_10s"] is not None
        and out["sched_ms"]["max_last_10s"] < a.batch_ms
        and out["exact"]
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
