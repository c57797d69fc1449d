"""Turns compare.sh's stream-layer W5 results into a Markdown table.

Input: lines "IMPL CONNECTIONS METRIC VALUE" (bench/results/net_counts.txt); a metric
with several values (one per repetition) shows median [min-max]. The ratio columns
put IOStream on io_uring beside IOStream on the default poller and both beside the
raw epoll loop.
"""
import collections
import statistics
import sys

IMPLS = ["raw", "ioloop", "iostream", "iostream_strings", "iostream_coro", "iostream_uring"]
RATIOS = [("iostream_uring", "iostream"), ("iostream", "raw"), ("iostream_uring", "raw")]
LABELS = {
    "instructions_per_round_trip": "instructions per round trip (user space)",
    "syscalls_per_round_trip": "system calls per round trip",
    "round_trips_per_s": "round trips/s",
    "server_user_us_per_round_trip": "server CPU per round trip, user space (µs)",
    "server_kernel_us_per_round_trip": "server CPU per round trip, kernel (µs)",
    "memory_per_connection_kb": "memory per connection (KiB, peak RSS delta)",
    "allocations_per_round_trip": "allocations per round trip",
    "bytes_copied_per_byte_echoed": "bytes copied per byte echoed",
}


def fmt(v):
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:,.1f}"
    if abs(v) >= 0.01 or v == 0:
        return f"{v:,.2f}"
    return f"{v:.2g}"


def main(path):
    values = collections.defaultdict(list)  # (metric, conns) -> impl -> [values]
    order = []
    for line in open(path):
        parts = line.split()
        if len(parts) != 4:
            continue
        impl, conns, metric, value = parts
        try:
            v = float(value)
        except ValueError:
            continue
        key = (metric, int(conns))
        if key not in values:
            order.append(key)
            values[key] = collections.defaultdict(list)
        values[key][impl].append(v)
    order.sort(key=lambda k: (list(LABELS).index(k[0]) if k[0] in LABELS else 99, k[1]))
    header = IMPLS + [f"{a}/{b}" for a, b in RATIOS]
    print("| W5 server, per round trip | connections | " + " | ".join(header) + " |")
    print("| --- | --- |" + " --- |" * len(header))
    for metric, conns in order:
        per = values[(metric, conns)]
        medians, cells = {}, []
        for impl in IMPLS:
            vs = per.get(impl)
            if not vs:
                cells.append("n/a")
                continue
            m = statistics.median(vs)
            medians[impl] = m
            cells.append(fmt(m) if len(vs) == 1 else f"{fmt(m)} [{fmt(min(vs))}-{fmt(max(vs))}]")
        for a, b in RATIOS:
            ok = medians.get(a) is not None and medians.get(b)
            cells.append(f"{medians[a] / medians[b]:.2f}" if ok else "n/a")
        print(f"| {LABELS.get(metric, metric)} | {conns:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
