#!/usr/bin/env python3
"""Runs brainlift and plain JAX side by side and prints one comparison table per thread count.

Called by `bench/compare.sh` (which creates the venv and builds brainlift); standard library
only, so it runs under any python3. Every measurement is its own process; the wall time and the
peak RSS of each process come from `os.wait4`. For each thread count N of BENCH_THREADS both
sides get the same N: every process is pinned to cores BENCH_CORE..BENCH_CORE+N-1
(`taskset -c`, when available) and told to use N threads (XLA's flags and `PJRT_NPROC` for
JAX/BrainPy, `BRAINLIFT_THREADS` and `RAYON_NUM_THREADS` for brainlift, `OMP_NUM_THREADS` for
both).

Environment: BRAINLIFT_BIN (the brainlift binary), JAX_PYTHON (the venv's python),
BENCH_THREADS (space-separated thread counts, default "1 2"), BENCH_SECONDS (timing budget per
step workload, default 1.0), BENCH_PARTS=0 to skip the whole-part runs of the RNN and SNN (they
take a few minutes), BENCH_BRAINPY=1 to also run the tutorial's BrainPy code, BENCH_CORE (the
first core of the pinned range, default 0).
"""

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CORE = int(os.environ.get("BENCH_CORE", "0"))
TASKSET = shutil.which("taskset")

# The targets, as (key, what, limit): brainlift / JAX at most `limit`.
TARGETS = (("bptt_epoch", "BPTT epoch", 0.65), ("snn_step", "SNN step", 0.33))
PART_TARGET = 0.1
PART_ROWS = ("ngrc_part", "rnn_part", "snn_part")


def xla_flags(n):
    """XLA_FLAGS for `n` threads. `--xla_cpu_multi_thread_eigen` is a real XLA flag (Eigen's
    intra-op parallelism); `intra_op_parallelism_threads=N` is the customary spelling but
    XLA_FLAGS skips words without a leading `--`, so it has no effect. What sets jaxlib 0.10.2's
    CPU parallelism is the size of its thread pools: the CPU affinity (taskset) or `PJRT_NPROC`,
    which `thread_env` sets too (see bench/README.md, Threads)."""
    if n == 1:
        return "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={n}"


def cores(n):
    """The cores a run with `n` threads is pinned to, as a taskset list: "0" or "0-1"."""
    return str(CORE) if n == 1 else f"{CORE}-{CORE + n - 1}"


def pin(n):
    """Both sides run on the same cores (BENCH_CORE.. BENCH_CORE+n-1) when taskset exists."""
    return [TASKSET, "-c", cores(n)] if TASKSET else []


def thread_env(n):
    """The environment variables that give every process of a run `n` threads."""
    return {
        "XLA_FLAGS": xla_flags(n),
        "PJRT_NPROC": str(n),
        "OMP_NUM_THREADS": str(n),
        "BRAINLIFT_THREADS": str(n),
        "RAYON_NUM_THREADS": str(n),
    }


def run_measured(cmd, label, n):
    """Runs `cmd` pinned with `n` threads, reaping it with wait4: (JSON of its last stdout line,
    wall s, peak RSS KiB)."""
    env = dict(os.environ)
    user_xla = os.environ.get("XLA_FLAGS", "")
    env.update(thread_env(n))
    # A caller's own XLA_FLAGS are kept; the thread flags come last, so they win.
    env["XLA_FLAGS"] = (user_xla + " " + env["XLA_FLAGS"]).strip()
    full = pin(n) + cmd
    print(f"[bench] threads {n}: {label}: {' '.join(full)}", file=sys.stderr, flush=True)
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t = time.perf_counter()
        p = subprocess.Popen(full, stdout=fo, stderr=fe, env=env, cwd=ROOT)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read().decode(), fe.read().decode(errors="replace")
    if p.returncode != 0:
        sys.stderr.write(err[-4000:])
        raise SystemExit(f"[bench] threads {n}: {label} failed with exit code {p.returncode}")
    lines = [ln for ln in out.splitlines() if ln.strip().startswith("{")]
    if not lines:
        sys.stderr.write(err[-4000:])
        raise SystemExit(f"[bench] threads {n}: {label}: no JSON on stdout")
    return json.loads(lines[-1]), wall, ru.ru_maxrss


def fmt_s(v):
    if v is None:
        return "-"
    return f"{v * 1e3:.1f} ms" if v < 1.0 else f"{v:.2f} s"


def fmt_mib(kib):
    return "-" if kib is None else f"{kib / 1024:.0f} MiB"


def render(head, table):
    """Markdown table lines of `head` and the rows of strings `table`."""
    widths = [max(len(r[i]) for r in [head] + table) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(head, widths)), "-|-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in table]
    return ["| " + ln + " |" for ln in lines]


def thread_counts():
    """BENCH_THREADS as a list of thread counts; counts the allowed cores cannot hold are
    skipped with a warning (taskset could not pin them)."""
    spec = os.environ.get("BENCH_THREADS", "1 2")
    counts = []
    for tok in spec.split():
        try:
            n = int(tok)
        except ValueError:
            n = 0
        if n < 1:
            raise SystemExit(f"[bench] BENCH_THREADS={spec!r}: {tok!r} is not a positive thread count")
        if n not in counts:
            counts.append(n)
    if not counts:
        raise SystemExit(f"[bench] BENCH_THREADS={spec!r} names no thread count")
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    usable = []
    for n in counts:
        need = set(range(CORE, CORE + n))
        if TASKSET and not need <= allowed:
            print(f"[bench] WARNING: skipping {n} threads: cores {cores(n)} are not all available "
                  f"(this process may use {sorted(allowed)})", file=sys.stderr)
            continue
        if not TASKSET and n > len(allowed):
            print(f"[bench] WARNING: {n} threads on {len(allowed)} available cores (no taskset)", file=sys.stderr)
        usable.append(n)
    if not usable:
        raise SystemExit("[bench] no thread count of BENCH_THREADS fits the available cores")
    return usable


def targets(rows, parts, est_epoch):
    """The issue's targets against one run's rows: a list of dicts and one summary line."""
    by_key = {r["key"]: r for r in rows}
    out = []

    def ratio(key):
        r = by_key.get(key)
        if r is None or r["bl_steady"] is None or not r["jax_steady"]:
            return None
        return r["bl_steady"] / r["jax_steady"]

    words = []
    for key, what, limit in TARGETS:
        v = ratio(key)
        met = None if v is None else v <= limit
        note = "bl = 100 x step estimate" if key == "bptt_epoch" and est_epoch else None
        out.append({"target": f"{what} <= {limit} x JAX", "key": key, "ratio": v, "limit": limit,
                    "met": met, "note": note})
        shown = "not run" if v is None else f"{v:.3f} {'met' if met else 'MISSED'}"
        words.append(f"{what} <= {limit} x JAX: {shown}{' (' + note + ')' if note else ''}")
    part_words = []
    for key in PART_ROWS:
        v = ratio(key)
        met = None if v is None else v <= PART_TARGET
        name = key.split("_")[0]
        out.append({"target": f"{name} part (whole process) <= {PART_TARGET} x JAX", "key": key, "ratio": v,
                    "limit": PART_TARGET, "met": met, "note": None if v is not None or parts else "BENCH_PARTS=0"})
        part_words.append(f"{name} " + ("not run" if v is None else f"{v:.3f} {'met' if met else 'MISSED'}"))
    words.append(f"whole parts <= {PART_TARGET} x JAX: " + ", ".join(part_words))
    pairs = [(r["name"], r["jax_rss"], r["bl_rss"]) for r in rows if r["jax_rss"] is not None and r["bl_rss"] is not None]
    over = [name for name, j, b in pairs if b > j]
    rss_met = not over if pairs else None
    out.append({"target": "peak RSS <= JAX's", "key": "rss", "ratio": None, "limit": None, "met": rss_met,
                "note": ("over in: " + ", ".join(over)) if over else None})
    if rss_met is None:
        words.append("peak RSS <= JAX: not run")
    else:
        words.append(f"peak RSS <= JAX: {'met' if rss_met else 'MISSED'} "
                     f"({len(pairs) - len(over)}/{len(pairs)} rows{'; over in ' + ', '.join(over) if over else ''})")
    return out, "targets: " + "; ".join(words)


def run_threads(n, bl, py, seconds, parts, brainpy, outdir):
    """Every measurement with `n` threads: the printed lines and the results.json entry."""
    jw = os.path.join(HERE, "jax_workloads.py")

    def jax_run(w):
        return run_measured([py, jw, w], f"jax {w}", n)

    def bl_bench(w):
        return run_measured([bl, "bench", "--json", "--only", w, "--seconds", seconds], f"brainlift bench {w}", n)

    def bl_part(part):
        return run_measured(
            [bl, "tutorial", "--part", part, "--json", "--out", os.path.join(outdir, f"t{n}", part)],
            f"brainlift tutorial {part}",
            n,
        )

    rows, raw = [], {}

    def row(key, name, jc, js, bc, bs, jr, br):
        rows.append({"key": key, "name": name, "jax_compile": jc, "jax_steady": js, "bl_compile": bc,
                     "bl_steady": bs, "jax_rss": jr, "bl_rss": br})

    check, _, _ = jax_run("check")
    raw["jax_check"] = check

    # BPTT train step (and its epoch).
    j, _, jrss = jax_run("bptt_step")
    b, _, brss = bl_bench("bptt_step")
    bw = b["workloads"][0]
    raw["bptt_step"] = {"jax": j, "brainlift": b, "jax_rss_kib": jrss, "brainlift_rss_kib": brss}
    row("bptt_step", "bptt_step (1 train step)", j["compile_s"], j["steady_s"], bw["compile_s"], bw["jit_s"], jrss, brss)

    # SNN train step.
    j, _, jrss = jax_run("snn_step")
    b, _, brss = bl_bench("snn_step")
    bw = b["workloads"][0]
    raw["snn_step"] = {"jax": j, "brainlift": b, "jax_rss_kib": jrss, "brainlift_rss_kib": brss}
    row("snn_step", "snn_step (1 train step)", j["compile_s"], j["steady_s"], bw["compile_s"], bw["jit_s"], jrss, brss)

    # NG-RC part, whole process.
    j, jwall, jrss = jax_run("ngrc_part")
    b, bwall, brss = bl_part("ngrc")
    raw["ngrc_part"] = {"jax": j, "jax_wall_s": jwall, "brainlift": b, "brainlift_wall_s": bwall,
                        "jax_rss_kib": jrss, "brainlift_rss_kib": brss}
    row("ngrc_part", "ngrc part, whole process", None, jwall, None, bwall, jrss, brss)

    bptt = raw["bptt_step"]["jax"]
    # JAX's epoch: the faster of one compiled scan over the 100 batches and a Python loop of 100
    # jitted steps (both include the data generation); XLA's CPU while loop is not always faster.
    jax_epoch = min(bptt["epoch_steady_s"], bptt["epoch_python_loop_s"])
    jax_epoch_compile = max(bptt["epoch_first_s"] - bptt["epoch_steady_s"], 0.0)
    if parts:
        j, jwall, jrss = jax_run("rnn_part")
        b, bwall, brss = bl_part("rnn")
        raw["rnn_part"] = {"jax": j, "jax_wall_s": jwall, "brainlift": b, "brainlift_wall_s": bwall,
                           "jax_rss_kib": jrss, "brainlift_rss_kib": brss}
        r = b["rnn"]
        first = r["epoch_s"][0] if r.get("epoch_s") else None
        # First epoch minus the median; clamped at 0 (on a busy machine noise can exceed it).
        bl_epoch_compile = max(first - r["epoch_s_median"], 0.0) if first is not None else None
        row("bptt_epoch", "bptt epoch (100 steps + data)", jax_epoch_compile, jax_epoch, bl_epoch_compile,
            r["epoch_s_median"], raw["bptt_step"]["jax_rss_kib"], brss)
        row("rnn_part", "rnn part, whole process", None, jwall, None, bwall, jrss, brss)

        j, jwall, jrss = jax_run("snn_part")
        b, bwall, brss = bl_part("snn")
        raw["snn_part"] = {"jax": j, "jax_wall_s": jwall, "brainlift": b, "brainlift_wall_s": bwall,
                           "jax_rss_kib": jrss, "brainlift_rss_kib": brss}
        row("snn_part", "snn part, whole process", None, jwall, None, bwall, jrss, brss)
    else:
        # Without the part run: `brainlift bench --only bptt_epoch` trains whole epochs the way
        # the tutorial does (data generation included); compile = first epoch - median.
        b, _, brss = bl_bench("bptt_epoch")
        bw = b["workloads"][0]
        raw["bptt_epoch"] = {"brainlift": b, "brainlift_rss_kib": brss}
        row("bptt_epoch", "bptt epoch (100 steps + data)", jax_epoch_compile, jax_epoch,
            max(bw["first_s"] - bw["jit_s"], 0.0), bw["jit_s"], raw["bptt_step"]["jax_rss_kib"], brss)

    bp_rows = []
    if brainpy:
        bpw = os.path.join(HERE, "brainpy_workloads.py")
        for w, ours in (("snn_step", "snn_step"), ("bptt_epoch", "bptt_epoch"), ("ngrc_part", "ngrc_part")):
            res, wall, rss = run_measured([py, bpw, w], f"brainpy {w}", n)
            raw[f"brainpy_{w}"] = {"brainpy": res, "wall_s": wall, "rss_kib": rss}
            mine = next((r for r in rows if r["key"] == ours), None)
            name = mine["name"] if mine else ours
            bl_s = mine["bl_steady"] if mine else None
            if w == "snn_step":
                bp_rows.append((name, res["compile_s"], res["steady_s"], rss, bl_s))
            elif w == "bptt_epoch":
                bp_rows.append((name, max(res["epoch_first_s"] - res["epoch_steady_s"], 0.0), res["epoch_steady_s"],
                                rss, bl_s))
            else:
                bp_rows.append((name, None, wall, rss, bl_s))

    head = ("workload", "JAX compile", "JAX steady", "bl compile", "bl steady", "bl/JAX", "JAX RSS", "bl RSS")
    table = []
    for r in rows:
        bs, js = r["bl_steady"], r["jax_steady"]
        ratio = f"{bs / js:.2f}" if (bs is not None and js) else "-"
        table.append((r["name"], fmt_s(r["jax_compile"]), fmt_s(js), fmt_s(r["bl_compile"]), fmt_s(bs), ratio,
                      fmt_mib(r["jax_rss"]), fmt_mib(r["bl_rss"])))
    lines = render(head, table)
    tgt, tgt_line = targets(rows, parts, False)
    bp_lines = []
    if bp_rows:
        bh = ("workload", "BrainPy compile", "BrainPy steady", "BrainPy RSS", "bl steady", "bl/BrainPy")
        bt = [(nm, fmt_s(c), fmt_s(st), fmt_mib(rs), fmt_s(b), f"{b / st:.2f}" if (b is not None and st) else "-")
              for nm, c, st, rs, b in bp_rows]
        bp_lines = render(bh, bt)
    chk = raw["jax_check"]
    check_line = (
        f"JAX {chk.get('jax_version')} gradient check: BPTT finite-difference error "
        f"{chk['bptt_fd_max_rel_err']:.1e}, SNN readout {chk['snn_readout_fd_max_rel_err']:.1e} "
        f"(relative to the largest gradient entry); loss over 100 steps BPTT "
        f"{chk['bptt_loss_first_last'][0]:.3f} -> {chk['bptt_loss_first_last'][1]:.3f}, SNN "
        f"{chk['snn_loss_first_last'][0]:.3f} -> {chk['snn_loss_first_last'][1]:.3f}: "
        f"{'ok' if chk['ok'] else 'FAILED'}"
    )
    env = thread_env(n)
    pin_word = f"taskset -c {cores(n)}: {'yes' if TASKSET else 'not available, not pinned'}"
    threads_line = (
        f"threads: {n} ({pin_word}); JAX/BrainPy XLA_FLAGS=\"{env['XLA_FLAGS']}\" PJRT_NPROC={n} "
        f"OMP_NUM_THREADS={n}; brainlift BRAINLIFT_THREADS={n} RAYON_NUM_THREADS={n}"
    )
    printed = [f"## {n} thread{'s' if n > 1 else ''}", ""] + lines + ["", tgt_line]
    if bp_lines:
        printed += ["", "BrainPy (the tutorial's own code, same process rules):", ""] + bp_lines
    printed += ["", check_line, threads_line]
    entry = {
        "threads": n,
        "pinned_cores": cores(n) if TASKSET else None,
        "env": env,
        "xla_flags": env["XLA_FLAGS"],
        "rows": [[r["name"], r["jax_compile"], r["jax_steady"], r["bl_compile"], r["bl_steady"], r["jax_rss"],
                  r["bl_rss"]] for r in rows],
        "row_keys": [r["key"] for r in rows],
        "table": lines,
        "targets": tgt,
        "targets_line": tgt_line,
        "brainpy_rows": [list(r) for r in bp_rows],
        "brainpy_table": bp_lines,
        "check_ok": bool(chk["ok"]),
        "raw": raw,
    }
    return printed, entry


def main():
    bl = os.environ.get("BRAINLIFT_BIN", os.path.join(ROOT, "target", "release", "brainlift"))
    py = os.environ.get("JAX_PYTHON", os.path.join(HERE, ".venv", "bin", "python"))
    seconds = os.environ.get("BENCH_SECONDS", "1.0")
    parts = os.environ.get("BENCH_PARTS", "1") != "0"
    brainpy = os.environ.get("BENCH_BRAINPY", "0") == "1"
    counts = thread_counts()
    outdir = tempfile.mkdtemp(prefix="brainlift-bench-")
    by_threads, printed = {}, []
    try:
        for n in counts:
            lines, entry = run_threads(n, bl, py, seconds, parts, brainpy, outdir)
            by_threads[str(n)] = entry
            printed.append(lines)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    print("\n\n".join("\n".join(p) for p in printed))

    result = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "taskset": bool(TASKSET), "first_core": CORE,
                    "loadavg_at_end": open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None},
        "threads": counts,
        "settings": {"bench_seconds": float(seconds), "parts": parts, "brainpy": brainpy},
        "columns": ["workload", "jax_compile_s", "jax_steady_s", "brainlift_compile_s",
                    "brainlift_steady_s", "jax_peak_rss_kib", "brainlift_peak_rss_kib"],
        "by_threads": by_threads,
    }
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {os.path.join(HERE, 'results.json')}")
    if not all(e["check_ok"] for e in by_threads.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
