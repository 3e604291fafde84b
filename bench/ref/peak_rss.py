"""Run a command and report the peak resident memory of its whole process tree (datatrove
runs its tasks in worker processes that `/usr/bin/time` does not see), sampled every
0.1 s from /proc, and the CPU seconds (user + system) its processes used, as last seen.
Prints `peak_rss_mb TREE_SUM LARGEST_PROCESS` and `cpu_seconds N` to stderr at the end.

Usage: peak_rss.py COMMAND [ARG]...
"""
import os
import subprocess
import sys
import time


def tree(root):
    children = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(p))
        except (OSError, IndexError, ValueError):
            pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


proc = subprocess.Popen(sys.argv[1:])
peak_sum = peak_one = 0
ticks = {}
while proc.poll() is None:
    pids = tree(proc.pid)
    for p in pids:
        t = cpu_ticks(p)
        if t is not None:
            ticks[p] = t
    sizes = [rss_kb(p) for p in pids]
    peak_sum = max(peak_sum, sum(sizes))
    peak_one = max(peak_one, max(sizes, default=0))
    time.sleep(0.1)
print(f"peak_rss_mb {peak_sum / 1024:.0f} {peak_one / 1024:.0f}", file=sys.stderr)
print(f"cpu_seconds {sum(ticks.values()) / os.sysconf('SC_CLK_TCK'):.1f}", file=sys.stderr)
sys.exit(proc.returncode)
