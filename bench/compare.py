#!/usr/bin/env python3
"""Runs brainlift and plain JAX side by side and prints one comparison table.

Called by `bench/compare.sh` (which creates the venv and builds brainlift); standard library
only, so it runs under any python3. Every measurement is its own process, pinned to one core
(`taskset -c 0` when available) with XLA's thread pools at one thread; the wall time and the
peak RSS of each process come from `os.wait4`.

Environment: BRAINLIFT_BIN (the brainlift binary), JAX_PYTHON (the venv's python),
BENCH_SECONDS (timing budget per step workload, default 1.0), BENCH_PARTS=0 to skip the
whole-part runs of the RNN and SNN (they take a few minutes), BENCH_CORE (the core both sides
are pinned to, default 0).
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
XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


CORE = os.environ.get("BENCH_CORE", "0")


def pin():
    """Both sides run on the same single core (BENCH_CORE, default 0) when taskset exists."""
    return ["taskset", "-c", CORE] if shutil.which("taskset") else []


def run_measured(cmd, label):
    """Runs `cmd` pinned, reaping it with wait4: (JSON of its last stdout line, wall s, peak RSS KiB)."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + XLA_FLAGS).strip()
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("RAYON_NUM_THREADS", "1")
    full = pin() + cmd
    print(f"[bench] {label}: {' '.join(full)}", file=sys.stderr, flush=True)
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
        raise SystemExit(f"[bench] {label} failed with exit code {p.returncode}")
    lines = [ln for ln in out.splitlines() if ln.strip().startswith("{")]
    if not lines:
        sys.stderr.write(err[-4000:])
        raise SystemExit(f"[bench] {label}: no JSON on stdout")
    return json.loads(lines[-1]), wall, ru.ru_maxrss


def fmt_s(v):
    if v is None:
        return "-"
    return f"{v * 1e3:.1f} ms" if v < 1.0 else f"{v:.2f} s"


def fmt_mib(kib):
    return "-" if kib is None else f"{kib / 1024:.0f} MiB"


def main():
    bl = os.environ.get("BRAINLIFT_BIN", os.path.join(ROOT, "target", "release", "brainlift"))
    py = os.environ.get("JAX_PYTHON", os.path.join(HERE, ".venv", "bin", "python"))
    seconds = os.environ.get("BENCH_SECONDS", "1.0")
    parts = os.environ.get("BENCH_PARTS", "1") != "0"
    jw = os.path.join(HERE, "jax_workloads.py")
    outdir = tempfile.mkdtemp(prefix="brainlift-bench-")

    def jax_run(w):
        return run_measured([py, jw, w], f"jax {w}")

    def bl_bench(w):
        return run_measured([bl, "bench", "--json", "--only", w, "--seconds", seconds], f"brainlift bench {w}")

    def bl_part(part):
        return run_measured(
            [bl, "tutorial", "--part", part, "--json", "--out", os.path.join(outdir, part)],
            f"brainlift tutorial {part}",
        )

    rows, raw = [], {}

    check, _, _ = jax_run("check")
    raw["jax_check"] = check

    # BPTT train step (and its epoch).
    j, jwall, jrss = jax_run("bptt_step")
    b, bwall, brss = bl_bench("bptt_step")
    bw = b["workloads"][0]
    raw["bptt_step"] = {"jax": j, "brainlift": b, "jax_rss_kib": jrss, "brainlift_rss_kib": brss}
    rows.append(("bptt_step (1 train step)", j["compile_s"], j["steady_s"], bw["compile_s"], bw["jit_s"], jrss, brss))

    # SNN train step.
    j, _, jrss = jax_run("snn_step")
    b, _, brss = bl_bench("snn_step")
    bw = b["workloads"][0]
    raw["snn_step"] = {"jax": j, "brainlift": b, "jax_rss_kib": jrss, "brainlift_rss_kib": brss}
    rows.append(("snn_step (1 train step)", j["compile_s"], j["steady_s"], bw["compile_s"], bw["jit_s"], jrss, brss))

    # NG-RC part, whole process.
    j, jwall, jrss = jax_run("ngrc_part")
    b, bwall, brss = bl_part("ngrc")
    raw["ngrc_part"] = {"jax": j, "jax_wall_s": jwall, "brainlift": b, "brainlift_wall_s": bwall,
                        "jax_rss_kib": jrss, "brainlift_rss_kib": brss}
    rows.append(("ngrc part, whole process", None, jwall, None, bwall, jrss, brss))

    bptt = raw["bptt_step"]["jax"]
    # JAX's epoch: the faster of one compiled scan over the 100 batches and a Python loop of 100
    # jitted steps (both include the data generation); XLA's CPU while loop is not always faster.
    jax_epoch = min(bptt["epoch_steady_s"], bptt["epoch_python_loop_s"])
    epoch_row = ["bptt epoch (100 steps + data)", max(bptt["epoch_first_s"] - bptt["epoch_steady_s"], 0.0),
                 jax_epoch, None, None, None, None]
    if parts:
        j, jwall, jrss = jax_run("rnn_part")
        b, bwall, brss = bl_part("rnn")
        raw["rnn_part"] = {"jax": j, "jax_wall_s": jwall, "brainlift": b, "brainlift_wall_s": bwall,
                           "jax_rss_kib": jrss, "brainlift_rss_kib": brss}
        r = b["rnn"]
        first = r["epoch_s"][0] if r.get("epoch_s") else None
        # First epoch minus the median; clamped at 0 (on a busy machine noise can exceed it).
        epoch_row[3] = max(first - r["epoch_s_median"], 0.0) if first is not None else None
        epoch_row[4] = r["epoch_s_median"]
        epoch_row[5] = raw["bptt_step"]["jax_rss_kib"]
        epoch_row[6] = brss
        rows.append(tuple(epoch_row))
        rows.append(("rnn part, whole process", None, jwall, None, bwall, jrss, brss))

        j, jwall, jrss = jax_run("snn_part")
        b, bwall, brss = bl_part("snn")
        raw["snn_part"] = {"jax": j, "jax_wall_s": jwall, "brainlift": b, "brainlift_wall_s": bwall,
                           "jax_rss_kib": jrss, "brainlift_rss_kib": brss}
        rows.append(("snn part, whole process", None, jwall, None, bwall, jrss, brss))
    else:
        # Without the part run, brainlift's epoch is estimated as 100 steps (no data generation).
        epoch_row[4] = 100 * raw["bptt_step"]["brainlift"]["workloads"][0]["jit_s"]
        epoch_row[0] = "bptt epoch (bl: 100 x step est.)"
        rows.append(tuple(epoch_row))

    bp_rows = []
    if os.environ.get("BENCH_BRAINPY", "0") == "1":
        bpw = os.path.join(HERE, "brainpy_workloads.py")
        for w, ours in (("snn_step", "snn_step (1 train step)"), ("bptt_epoch", "bptt epoch (100 steps + data)"),
                        ("ngrc_part", "ngrc part, whole process")):
            res, wall, rss = run_measured([py, bpw, w], f"brainpy {w}")
            raw[f"brainpy_{w}"] = {"brainpy": res, "wall_s": wall, "rss_kib": rss}
            mine = next((r for r in rows if r[0] == ours), None)
            if w == "snn_step":
                bp_rows.append((ours, res["compile_s"], res["steady_s"], rss, mine[4] if mine else None))
            elif w == "bptt_epoch":
                bp_rows.append((ours, max(res["epoch_first_s"] - res["epoch_steady_s"], 0.0), res["epoch_steady_s"], rss,
                                mine[4] if mine else None))
            else:
                bp_rows.append((ours, None, wall, rss, mine[4] if mine else None))

    head = ("workload", "JAX compile", "JAX steady", "bl compile", "bl steady", "bl/JAX", "JAX RSS", "bl RSS")
    table = []
    for name, jc, js, bc, bs, jr, br in rows:
        ratio = f"{bs / js:.2f}" if (bs is not None and js) else "-"
        table.append((name, fmt_s(jc), fmt_s(js), fmt_s(bc), fmt_s(bs), ratio, fmt_mib(jr), fmt_mib(br)))
    widths = [max(len(r[i]) for r in [head] + table) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(head, widths)),
             "-|-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in table]
    print("\n".join("| " + ln + " |" for ln in lines))
    bp_lines = []
    if bp_rows:
        bh = ("workload", "BrainPy compile", "BrainPy steady", "BrainPy RSS", "bl steady", "bl/BrainPy")
        bt = [(n, fmt_s(c), fmt_s(st), fmt_mib(r), fmt_s(b), f"{b / st:.2f}" if b is not None else "-")
              for n, c, st, r, b in bp_rows]
        bw = [max(len(r[i]) for r in [bh] + bt) for i in range(len(bh))]
        bp_lines = [" | ".join(c.ljust(w) for c, w in zip(bh, bw)), "-|-".join("-" * w for w in bw)]
        bp_lines += [" | ".join(c.ljust(w) for c, w in zip(r, bw)) for r in bt]
        print("\nBrainPy (the tutorial's own code, same process rules):")
        print("\n".join("| " + ln + " |" for ln in bp_lines))
    chk = raw["jax_check"]
    print(
        f"\nJAX {check.get('jax_version')} gradient check: BPTT finite-difference error "
        f"{chk['bptt_fd_max_rel_err']:.1e}, SNN readout {chk['snn_readout_fd_max_rel_err']:.1e} "
        f"(relative to the largest gradient entry); loss over 100 steps BPTT "
        f"{chk['bptt_loss_first_last'][0]:.3f} -> {chk['bptt_loss_first_last'][1]:.3f}, SNN "
        f"{chk['snn_loss_first_last'][0]:.3f} -> {chk['snn_loss_first_last'][1]:.3f}: "
        f"{'ok' if chk['ok'] else 'FAILED'}"
    )
    print(f"threads: one core (taskset -c {CORE}: {'yes' if pin() else 'not available'}), XLA_FLAGS={XLA_FLAGS}")

    result = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "pinned_core": CORE if pin() else None,
                    "loadavg_at_end": open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None},
        "xla_flags": XLA_FLAGS,
        "columns": ["workload", "jax_compile_s", "jax_steady_s", "brainlift_compile_s",
                    "brainlift_steady_s", "jax_peak_rss_kib", "brainlift_peak_rss_kib"],
        "rows": [list(r) for r in rows],
        "table": lines,
        "brainpy_rows": [list(r) for r in bp_rows],
        "brainpy_table": bp_lines,
        "raw": raw,
    }
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {os.path.join(HERE, 'results.json')}")
    shutil.rmtree(outdir, ignore_errors=True)
    if not chk["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
