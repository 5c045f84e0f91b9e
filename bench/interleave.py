"""Time commands side by side, interleaved: each round runs every command once (in turn, the
order reversed every other round), so a machine whose load changes during the run (other builds
on a shared VM) weighs on all of them alike. Prints one JSON object: each command's median and
mean wall time in microseconds, less the median of spawning `true` the same way (what starting
a process costs this script, not the command).

    python3 bench/interleave.py RUNS WARMUP NAME=COMMAND...

Each COMMAND is split on spaces (no quoting: give paths without spaces); an argument `@SQL@`
stands for the environment variable INTERLEAVE_SQL, for a peer's SQL text. Exit statuses are
not checked: `orch tick` with nothing to do exits 3.
"""
import json
import os
import statistics
import subprocess
import sys
import time


def argv(command):
    return [os.environ["INTERLEAVE_SQL"] if a == "@SQL@" else a for a in command.split(" ")]


def once(args):
    started = time.perf_counter()
    subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1e6


def main():
    runs, warmup = int(sys.argv[1]), int(sys.argv[2])
    named = [spec.split("=", 1) for spec in sys.argv[3:]]
    commands = [("spawn", ["true"])] + [(name, argv(command)) for name, command in named]
    times = {name: [] for name, _ in commands}
    for round_ in range(warmup + runs):
        order = commands if round_ % 2 == 0 else list(reversed(commands))
        for name, args in order:
            took = once(args)
            if round_ >= warmup:
                times[name].append(took)
    spawn = statistics.median(times.pop("spawn"))
    out = {
        name: {
            "median_us": round(statistics.median(t) - spawn),
            "mean_us": round(statistics.fmean(t) - spawn),
        }
        for name, t in times.items()
    }
    out["spawn_us"] = round(spawn)
    print(json.dumps(out))


main()
