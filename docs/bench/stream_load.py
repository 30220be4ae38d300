#!/usr/bin/env python3
"""A line server for streaming benchmarks (like `nc -lk`, but paced).

Listens on 127.0.0.1:PORT; to every receiver that connects it sends lines of ten
words drawn from a fixed vocabulary (splitmix64, so every run sends the same
text) at RATE lines per second for SECONDS seconds, then closes. Prints one JSON
line per connection: lines sent, seconds taken, and the word totals' checksum
(sum over words of count * (index + 1)), so the job's totals can be checked,
and how far behind its schedule it ended (a receiver that does not keep up
slows the sender through TCP: `behind_s` > 0 means the rate was not sustained).

Lines are sent in small slices (about 2 ms of lines each) of a pool of 1000
pre-built lines sent in a cycle; the text sent does not depend on the rate.
With --sent-log FILE it also writes, about every 10 ms, `<lines sent so far>
<wall clock ms>` (after the slice was handed to the kernel), starting with
`0 <start ms>`: docs/bench/stream_latency.py interpolates each line's send time
from it.

    python3 docs/bench/stream_load.py --port 9999 --rate 200000 --seconds 60
    python3 docs/bench/stream_load.py --port 9999 --rate 50000 --seconds 60 --sent-log sent.txt
"""
import argparse
import json
import socket
import time

MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=int, required=True, help="lines per second")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--vocabulary", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sent-log", help="write '<lines sent> <wall ms>' about every 10 ms here")
    a = p.parse_args()
    words = [f"w{i}" for i in range(a.vocabulary)]
    # A pool of POOL pre-built lines, sent whole and in a cycle, keeps Python out
    # of the per-line path; word totals are computed from the pool's.
    POOL = 1000
    state, lines, pool_counts = a.seed, [], [0] * a.vocabulary
    for _ in range(POOL):
        idx = []
        for _ in range(10):
            state, r = splitmix64(state)
            idx.append(r % a.vocabulary)
        for i in idx:
            pool_counts[i] += 1
        lines.append(" ".join(words[i] for i in idx) + "\n")
    blob = "".join(lines).encode()
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode()))
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.port))
    srv.listen(1)
    conn, _ = srv.accept()
    pools = max(1, int(a.rate * a.seconds) // POOL)
    total = pools * POOL
    # Lines per slice: about 2 ms of the rate, at least 10, at most the pool.
    slice_lines = max(10, min(POOL, a.rate // 500))
    log = open(a.sent_log, "w") if a.sent_log else None
    start = time.monotonic()
    if log:
        log.write(f"0 {time.time() * 1000:.3f}\n")
    last_logged = start
    sent = 0
    while sent < total:
        first = sent % POOL
        n = min(slice_lines, POOL - first, total - sent)
        conn.sendall(blob[offsets[first] : offsets[first + n]])
        sent += n
        now = time.monotonic()
        if log and (now - last_logged >= 0.01 or sent == total):
            log.write(f"{sent} {time.time() * 1000:.3f}\n")
            last_logged = now
        ahead = start + sent / a.rate - now
        if ahead > 0:
            time.sleep(ahead)
    elapsed = time.monotonic() - start
    conn.close()
    if log:
        log.close()
    checksum = sum(c * pools * (i + 1) for i, c in enumerate(pool_counts))
    planned = total / a.rate
    print(
        json.dumps(
            {
                "lines": total,
                "rate": a.rate,
                "seconds": round(elapsed, 3),
                "behind_s": round(max(0.0, elapsed - planned), 3),
                "checksum": checksum,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
