#!/usr/bin/env python3
"""A line server for streaming benchmarks (like `nc -lk`, but paced).

Listens on 127.0.0.1:PORT; to every receiver that connects it sends lines of ten
words drawn from a fixed vocabulary (splitmix64, so every run sends the same
text) at RATE lines per second for SECONDS seconds, then closes. Prints one JSON
line per connection: lines sent, seconds taken, and the word totals' checksum
(sum over words of count * (index + 1)), so the job's totals can be checked.

    python3 docs/bench/stream_load.py --port 9999 --rate 200000 --seconds 60
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
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.port))
    srv.listen(1)
    conn, _ = srv.accept()
    pools = max(1, int(a.rate * a.seconds) // POOL)
    start = time.monotonic()
    for k in range(pools):
        conn.sendall(blob)
        ahead = start + (k + 1) * POOL / a.rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    elapsed = time.monotonic() - start
    conn.close()
    checksum = sum(c * pools * (i + 1) for i, c in enumerate(pool_counts))
    print(json.dumps({"lines": pools * POOL, "seconds": round(elapsed, 3), "checksum": checksum}))


if __name__ == "__main__":
    main()
