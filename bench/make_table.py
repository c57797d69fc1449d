"""Turns compare.sh's raw results into the Markdown table (and chart data)."""
import collections
import json
import statistics
import sys

out, reps = sys.argv[1], sys.argv[2]
IMPLS = ["ioloop", "ioloop_uring", "raw", "libevent", "libuv"]

# (label, benchmark name pattern, counter, unit, lower is better)
ROWS = [
    ("W1 dispatch, 100 pairs", "W1_PipeChainDispatch/{}/100", "ns_per_event", "ns/event", True),
    ("W1 dispatch, 1,000 pairs", "W1_PipeChainDispatch/{}/1000", "ns_per_event", "ns/event", True),
    ("W1 dispatch, 9,900 pairs", "W1_PipeChainDispatch/{}/9900", "ns_per_event", "ns/event", True),
    ("W1 setup, 1,000 fds", "W1_PipeChainSetup/{}/1000", "ns_per_fd", "ns/fd", True),
    ("W2 (a) 1M timers already due", "W2_Timers/{}/1000000/0/iterations:3", "ns_per_timer", "ns/timer", True),
    ("W2 (b) 1M timers over 50 ms", "W2_Timers/{}/1000000/1/iterations:3", "ns_per_timer", "ns/timer", True),
    ("W3 1M add+cancel", "W3_CancelChurn/{}/1000000/iterations:3", "ns_per_op", "ns/op", True),
    ("W4 2x500k cross-thread", "W4_CrossThread/{}/500000/iterations:3", "real_ns_per_callback", "ns/callback", True),
    ("W4 wake-ups", "W4_CrossThread/{}/500000/iterations:3", "wakeups_per_1k_callbacks", "per 1k callbacks", True),
    ("W5 TCP echo, 50 conns", "W5_TcpEcho/{}/1000/iterations:1/real_time", "round_trips_per_s", "round trips/s", False),
    ("W5 server CPU", "W5_TcpEcho/{}/1000/iterations:1/real_time", "server_cpu_ns_per_rt", "ns/round trip", True),
]

samples = collections.defaultdict(list)
for line in open(f"{out}/wall.jsonl"):
    b = json.loads(line)
    name = b["name"]
    for key, value in b.items():
        if isinstance(value, (int, float)):
            # Google Benchmark reports inverted-rate counters in seconds.
            scale = 1e9 if key.startswith("ns_per") else 1.0
            samples[(name, key)].append(float(value) * scale)
    if name.startswith("W4_CrossThread"):
        # Wall-clock time per callback (the loop thread waits on producers).
        calls = 2 * 500000 * b["iterations"]
        ns = b["real_time"] * {"ms": 1e6, "us": 1e3, "ns": 1.0}[b["time_unit"]] * b["iterations"]
        samples[(name, "real_ns_per_callback")].append(ns / calls)


def fmt(v):
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:,.1f}"
    if v >= 0.01 or v == 0:
        return f"{v:,.2f}"
    return f"{v:.2g}"


def cell(values):
    if not values:
        return "n/a", None
    m = statistics.median(values)
    return f"{fmt(m)} [{fmt(min(values))}-{fmt(max(values))}]", m


print(f"Wall time: median [min-max] of {reps} fresh-process runs, interleaved.\n")
print("| workload | unit | " + " | ".join(IMPLS) + " | ioloop/raw | ioloop/libevent | ioloop/libuv |")
print("| --- | --- |" + " --- |" * (len(IMPLS) + 3))
chart = collections.defaultdict(dict)
for label, pattern, counter, unit, _ in ROWS:
    cells, medians = [], {}
    for impl in IMPLS:
        key = (pattern.format(impl), counter)
        values = samples.get(key, [])
        text, m = cell(values)
        cells.append(text)
        medians[impl] = m
    def ratio(a, b):
        return f"{medians[a] / medians[b]:.2f}" if medians[a] and medians[b] else "n/a"
    print(f"| {label} | {unit} | " + " | ".join(cells) +
          f" | {ratio('ioloop', 'raw')} | {ratio('ioloop', 'libevent')} | {ratio('ioloop', 'libuv')} |")
    for impl in IMPLS:
        chart[label][impl] = medians[impl]

rss = collections.defaultdict(list)
for line in open(f"{out}/rss.txt"):
    fields = dict(f.split("=", 1) for f in line.split())
    rss[fields["impl"]].append(float(fields["peak_rss_kb"]) / 1024)
cells = [cell(rss[i])[0] for i in IMPLS]
m = {i: statistics.median(rss[i]) for i in IMPLS if rss[i]}
print(f"| W3 peak RSS (fresh process) | MiB | " + " | ".join(cells) +
      f" | {m['ioloop'] / m['raw']:.2f} | {m['ioloop'] / m['libevent']:.2f} | {m['ioloop'] / m['libuv']:.2f} |")

counts = collections.defaultdict(dict)
for line in open(f"{out}/counts.txt"):
    impl, workload, metric, value = line.split()
    counts[(workload, metric)][impl] = float(value)
print("\nCounts (one run each; callgrind and strace counts repeat exactly or nearly so):\n")
print("| workload | measure | " + " | ".join(IMPLS) + " | ioloop/raw | ioloop/libevent | ioloop/libuv |")
print("| --- | --- |" + " --- |" * (len(IMPLS) + 3))
for (workload, metric), per in sorted(counts.items()):
    vals = [per.get(i) for i in IMPLS]
    def r(b):
        return f"{per['ioloop'] / per[b]:.2f}" if per.get(b) else "n/a"
    print(f"| {workload.upper()} | {metric.replace('_', ' ')} | " +
          " | ".join("n/a" if v is None else fmt(v) for v in vals) +
          f" | {r('raw')} | {r('libevent')} | {r('libuv')} |")

with open(f"{out}/chart.dat", "w") as f:
    f.write("pairs " + " ".join(IMPLS) + "\n")
    for pairs, label in [(100, "W1 dispatch, 100 pairs"), (1000, "W1 dispatch, 1,000 pairs"),
                         (9900, "W1 dispatch, 9,900 pairs")]:
        f.write(f"{pairs} " + " ".join(str(chart[label][i] or 0) for i in IMPLS) + "\n")
with open(f"{out}/chart_timers.dat", "w") as f:
    f.write("case " + " ".join(IMPLS) + "\n")
    for idx, label in [(0, "W2 (a) 1M timers already due"), (1, "W2 (b) 1M timers over 50 ms")]:
        f.write(f"{idx} " + " ".join(str(chart[label][i] or 0) for i in IMPLS) + "\n")
