#!/usr/bin/env python3
"""The BrainPy tutorial's three workloads in plain JAX, for the side-by-side comparison with brainlift.

Written the way a careful JAX user would: float64 (`jax_enable_x64`), every hot function under
`jax.jit` with donated parameter/optimiser buffers, time loops as `lax.scan`, gradients by
`jax.value_and_grad`, Adam written by hand, the spike non-linearity as a `jax.custom_vjp` with
BrainPy's InvSquare surrogate (alpha 100). Sizes match `src/cmd_bench.rs` and the tutorial parts
in `frontend/src/tutorial/` of brainlift.

Usage: `python jax_workloads.py WORKLOAD` with WORKLOAD one of
  bptt_step   one BPTT train step of the tutorial RNN (batch 128, T 25, hidden 100) and the epoch
              (100 steps with on-device data generation)
  snn_step    one train step of the tutorial spiking net (256 x 100 steps, 100 -> 10 -> 2)
  ngrc_part   part 1 whole: Lorenz RK4 data, NVAR features, three ridge fits (1, 10, 100 ahead)
  rnn_part    part 2 whole: 30 epochs x 100 batches of BPTT training, then a prediction
  snn_part    part 3 whole: 1000 train steps on one Poisson data set
  check       gradient checks (finite differences) and loss decrease, for fairness
Each prints one JSON object on stdout (timings in seconds, peak RSS in KiB of this process).
Run one workload per process so that compile caches and peak RSS do not leak between them.
"""

import json
import os
import resource
import sys
import time

T_PROCESS_START = time.perf_counter()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402
import numpy as np  # noqa: E402

T_IMPORTED = time.perf_counter()
F64 = jnp.float64


def peak_rss_kib():
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def block(tree):
    """Waits for every array of a pytree (JAX dispatch is asynchronous)."""
    return jax.tree_util.tree_map(lambda a: a.block_until_ready(), tree)


def timed(f, *args):
    t = time.perf_counter()
    out = block(f(*args))
    return out, time.perf_counter() - t


# ---------------------------------------------------------------- shared: initialisers, Adam


def truncated_normal(key, shape, var):
    """BrainPy's VarianceScaling truncated normal: std exactly sqrt(var), cut at +-2 sigma."""
    z = jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype=F64)
    return z * jnp.sqrt(var) / 0.87962566103423978


def xavier_normal(key, fan_in, fan_out):
    return truncated_normal(key, (fan_in, fan_out), 2.0 / (fan_in + fan_out))


def kaiming_normal(key, fan_in, fan_out, scale):
    return truncated_normal(key, (fan_in, fan_out), scale / fan_in)


def orthogonal(key, n):
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, n), dtype=F64))
    return q * jnp.sign(jnp.diag(r))


def adam_init(params):
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return {"m": zeros, "v": jax.tree_util.tree_map(jnp.zeros_like, params), "t": jnp.zeros((), F64)}


def adam_update(params, grads, state, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Textbook Adam (bias correction per update), written by hand."""
    t = state["t"] + 1.0
    m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state["v"], grads)
    c1, c2 = 1.0 - b1**t, 1.0 - b2**t
    new = jax.tree_util.tree_map(
        lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, m, v
    )
    return new, {"m": m, "v": v, "t": t}


# ---------------------------------------------------------------- part 2: BPTT RNN

RNN_B, RNN_T, RNN_H, RNN_DT = 128, 25, 100, 0.04
RNN_L2 = 2e-4


def rnn_init(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "wi": xavier_normal(k1, 1, RNN_H),
        "wh": orthogonal(k2, RNN_H),
        "b": jnp.zeros((RNN_H,), F64),
        "h0": jnp.zeros((RNN_H,), F64),  # trainable initial state (state2train)
        "wo": xavier_normal(k3, RNN_H, 1),
        "bo": jnp.zeros((1,), F64),
    }


def rnn_forward(p, xs):
    """xs: (B, T, 1) -> predictions (B, T, 1). ReLU cell, Dense(100, 1) readout."""
    xs_t = jnp.swapaxes(xs, 0, 1)  # (T, B, 1)
    h0 = jnp.broadcast_to(p["h0"], (xs.shape[0], RNN_H))

    def cell(h, x):
        h = jax.nn.relu(x @ p["wi"] + h @ p["wh"] + p["b"])
        return h, h

    _, hs = lax.scan(cell, h0, xs_t)  # (T, B, H)
    ys = hs @ p["wo"] + p["bo"]  # one (T*B, H) x (H, 1) matmul for the readout
    return jnp.swapaxes(ys, 0, 1)


def rnn_loss(p, xs, ys):
    mse = jnp.mean((rnn_forward(p, xs) - ys) ** 2)
    l2 = sum(jnp.sum(v * v) for v in jax.tree_util.tree_leaves(p))
    return mse + RNN_L2 * l2


def rnn_lr(t):
    return 0.025 * 0.99975**t  # ExponentialDecay(0.025, 1, 0.99975), t = updates done so far


@jax.jit
def rnn_data(key):
    """The tutorial's white-noise integration batch: inputs (B, T, 1) and their running sums."""
    k1, k2 = jax.random.split(key)
    bias = 0.025 * 2.0 * (jax.random.normal(k1, (RNN_B, 1, 1), F64) - 0.5)
    noise = 0.01 / jnp.sqrt(RNN_DT) * jax.random.normal(k2, (RNN_B, RNN_T, 1), F64)
    xs = bias + noise
    return xs, jnp.cumsum(xs, axis=1)


@jax.jit
def rnn_data_epoch(key):
    """100 batches at once (one dispatch): (100, B, T, 1) each."""
    return jax.vmap(rnn_data)(jax.random.split(key, 100))


@jax.jit
def _rnn_step(p, s, xs, ys):
    loss, g = jax.value_and_grad(rnn_loss)(p, xs, ys)
    p, s = adam_update(p, g, s, rnn_lr(s["t"]), eps=0.1)
    return p, s, loss


rnn_step = jax.jit(_rnn_step, donate_argnums=(0, 1))


@jax.jit
def _rnn_epoch(p, s, xs_all, ys_all):
    """A whole epoch as one compiled scan over the 100 batches (fewest dispatches)."""

    def body(carry, batch):
        p, s = carry
        p, s, loss = _rnn_step(p, s, *batch)
        return (p, s), loss

    (p, s), losses = lax.scan(body, (p, s), (xs_all, ys_all))
    return p, s, losses


rnn_epoch = jax.jit(_rnn_epoch, donate_argnums=(0, 1))


def run_epoch(p, s, key):
    xs_all, ys_all = rnn_data_epoch(key)
    return rnn_epoch(p, s, xs_all, ys_all)


def median(v):
    return float(np.median(np.asarray(v)))


def time_steps(step, state, args, min_runs, budget):
    """(first-call seconds, median steady seconds, final state) of `state = step(*state, *args)`."""
    state, first = timed(step, *state, *args)
    state = state[:-1]
    for _ in range(2):
        state = block(step(*state, *args))[:-1]
    samples, t0 = [], time.perf_counter()
    while len(samples) < min_runs or time.perf_counter() - t0 < budget:
        out, dt = timed(step, *state, *args)
        state = out[:-1]
        samples.append(dt)
    return first, median(samples), state


def bench_bptt_step(budget):
    key = jax.random.PRNGKey(0)
    p = rnn_init(key)
    s = adam_init(p)
    xs, ys = rnn_data(jax.random.PRNGKey(1))
    first, steady, (p, s) = time_steps(rnn_step, (p, s), (xs, ys), 10, budget)
    # Epoch = 100 train steps including the data generation, as one compiled scan.
    ekey = jax.random.PRNGKey(2)
    p2, s2 = rnn_init(key), adam_init(rnn_init(key))
    t = time.perf_counter()
    p2, s2, _ = block(run_epoch(p2, s2, ekey))
    epoch_first = time.perf_counter() - t
    epochs = []
    for i in range(3):
        t = time.perf_counter()
        p2, s2, _ = block(run_epoch(p2, s2, jax.random.fold_in(ekey, i)))
        epochs.append(time.perf_counter() - t)
    # Epoch as a Python loop of 100 jitted step calls (what the tutorial's trainer does).
    loop = []
    for i in range(3):
        t = time.perf_counter()
        xs_all, ys_all = rnn_data_epoch(jax.random.fold_in(ekey, 100 + i))
        for b in range(100):
            p, s, _ = rnn_step(p, s, xs_all[b], ys_all[b])
        block(p)
        loop.append(time.perf_counter() - t)
    return {
        "workload": "bptt_step",
        "first_s": first,
        "steady_s": steady,
        "compile_s": max(first - steady, 0.0),
        "epoch_first_s": epoch_first,
        "epoch_steady_s": median(epochs),
        "epoch_python_loop_s": median(loop[1:]),  # the first loop epoch warms up slicing
    }


def run_rnn_part():
    """Part 2 whole: 30 epochs x 100 batches, then a prediction on a fresh batch."""
    key = jax.random.PRNGKey(42)
    p = rnn_init(key)
    s = adam_init(p)
    losses, epoch_s = [], []
    for e in range(30):
        t = time.perf_counter()
        p, s, ls = run_epoch(p, s, jax.random.fold_in(key, e))
        losses.append(float(jnp.mean(ls)))
        epoch_s.append(time.perf_counter() - t)
    xs, ys = rnn_data(jax.random.fold_in(key, 1000))
    pred_mse = float(jnp.mean((jax.jit(rnn_forward)(p, xs) - ys) ** 2))
    return {
        "workload": "rnn_part",
        "losses": losses,
        "final_loss": losses[-1],
        "epoch_first_s": epoch_s[0],
        "epoch_steady_s": median(epoch_s[1:]),
        "predict_mse": pred_mse,
    }


# ---------------------------------------------------------------- part 3: spiking net

SNN_T, SNN_B, SNN_IN, SNN_REC, SNN_OUT = 100, 256, 100, 10, 2
SNN_DT, SNN_LR, SNN_ALPHA = 1.0, 4e-3, 100.0


@jax.custom_vjp
def spike(u):
    """Heaviside (H(0) = 1) with BrainPy's InvSquare surrogate gradient 1 / (alpha |u| + 1)^2."""
    return (u >= 0).astype(u.dtype)


def _spike_fwd(u):
    return spike(u), u


def _spike_bwd(u, g):
    return (g / (SNN_ALPHA * jnp.abs(u) + 1.0) ** 2,)


spike.defvjp(_spike_fwd, _spike_bwd)


def snn_init(key):
    k1, k2 = jax.random.split(key)
    return {
        "w1": kaiming_normal(k1, SNN_IN, SNN_REC, 20.0),
        "b1": jnp.zeros((SNN_REC,), F64),
        "w2": kaiming_normal(k2, SNN_REC, SNN_OUT, 20.0),
        "b2": jnp.zeros((SNN_OUT,), F64),
    }


def snn_forward(p, xs):
    """xs: (T, B, 100) spikes -> outputs (T, B, 2). Expon(10) -> LIF(10, V_th 1, soft reset)
    -> Dense -> Expon(10) -> Integrator(5), exponential Euler, dt 1."""
    d_syn = jnp.exp(-SNN_DT / 10.0)
    k_lif = 1.0 - jnp.exp(-SNN_DT / 10.0)
    k_int = 1.0 - jnp.exp(-SNN_DT / 5.0)
    # The input projection does not depend on the state: one (T*B, 100) x (100, 10) matmul.
    i1 = xs @ p["w1"] + p["b1"]
    b = xs.shape[1]
    z_rec, z_out = jnp.zeros((b, SNN_REC), F64), jnp.zeros((b, SNN_OUT), F64)

    def step(carry, i1_t):
        g1, v, g2, x = carry
        g1 = g1 * d_syn + i1_t
        v = v + k_lif * (g1 - v)
        s = spike(v - 1.0)
        v = v - s  # soft reset, not detached
        g2 = g2 * d_syn + (s @ p["w2"] + p["b2"])
        x = x + k_int * (g2 - x)
        return (g1, v, g2, x), x

    _, outs = lax.scan(step, (z_rec, z_rec, z_out, z_out), i1)
    return outs


def snn_loss(p, xs, labels):
    logits = jnp.max(snn_forward(p, xs), axis=0)  # max over time: (B, 2)
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def _snn_step(p, s, xs, labels):
    loss, g = jax.value_and_grad(snn_loss)(p, xs, labels)
    p, s = adam_update(p, g, s, SNN_LR)
    return p, s, loss


snn_step = jax.jit(_snn_step, donate_argnums=(0, 1))


def snn_data(key, freq=10.0):
    k1, k2 = jax.random.split(key)
    prob = freq * SNN_DT / 1000.0
    xs = (jax.random.uniform(k1, (SNN_T, SNN_B, SNN_IN), F64) < prob).astype(F64)
    labels = (jax.random.uniform(k2, (SNN_B,), F64) < 0.5).astype(jnp.int32)
    return xs, labels


def bench_snn_step(budget):
    key = jax.random.PRNGKey(0)
    p = snn_init(key)
    s = adam_init(p)
    xs, labels = snn_data(jax.random.PRNGKey(1))
    first, steady, _ = time_steps(snn_step, (p, s), (xs, labels), 10, budget)
    return {
        "workload": "snn_step",
        "first_s": first,
        "steady_s": steady,
        "compile_s": max(first - steady, 0.0),
    }


def run_snn_part():
    """Part 3 whole: 1000 train steps on one Poisson data set, loss every step."""
    key = jax.random.PRNGKey(0)
    p = snn_init(key)
    s = adam_init(p)
    xs, labels = snn_data(jax.random.fold_in(key, 1))
    losses, times = [], []
    for _ in range(1000):
        t = time.perf_counter()
        p, s, loss = snn_step(p, s, xs, labels)
        losses.append(float(loss))  # the tutorial reads the loss back every step
        times.append(time.perf_counter() - t)
    logits = jnp.max(jax.jit(snn_forward)(p, xs), axis=0)
    acc = float(jnp.mean(jnp.argmax(logits, axis=1) == labels))
    return {
        "workload": "snn_part",
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "accuracy": acc,
        "step_first_s": times[0],
        "step_steady_s": median(times[1:]),
    }


# ---------------------------------------------------------------- part 1: NG-RC

NG_DT, NG_N = 0.01, 10000
NG_WARM, NG_TRAIN_END = 2000, 8000
NG_DELAY, NG_STRIDE, NG_ALPHA = 4, 5, 1e-6


@jax.jit
def lorenz():
    """Lorenz-63 (sigma 10, rho 28, beta 8/3) from (8, 1, 1), classical RK4, dt 0.01, 10000 points."""

    def f(u):
        x, y, z = u[0], u[1], u[2]
        return jnp.stack([10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z])

    def step(u, _):
        k1 = f(u)
        k2 = f(u + 0.5 * NG_DT * k1)
        k3 = f(u + 0.5 * NG_DT * k2)
        k4 = f(u + NG_DT * k3)
        u = u + NG_DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return u, u

    _, us = lax.scan(step, jnp.array([8.0, 1.0, 1.0], F64), None, length=NG_N)
    return us


_IU, _JU = np.triu_indices(3 * NG_DELAY)


@jax.jit
def nvar_features(u):
    """NVAR(delay 4, order 2, stride 5): linear part u[t], u[t-5], u[t-10], u[t-15] (zeros before
    the start) and the 78 unique quadratic monomials of it: (T, 90)."""
    pad = jnp.concatenate([jnp.zeros(((NG_DELAY - 1) * NG_STRIDE, 3), F64), u])
    n = u.shape[0]
    lin = jnp.concatenate(
        [lax.dynamic_slice_in_dim(pad, (NG_DELAY - 1 - k) * NG_STRIDE, n) for k in range(NG_DELAY)],
        axis=1,
    )
    quad = lin[:, _IU] * lin[:, _JU]
    return jnp.concatenate([lin, quad], axis=1)


@jax.jit
def ridge_fit(x, y):
    """Dense(90, 3) readout with bias by ridge regression: Cholesky of X^T X + alpha I."""
    xb = jnp.concatenate([x, jnp.ones((x.shape[0], 1), F64)], axis=1)
    a = xb.T @ xb + NG_ALPHA * jnp.eye(xb.shape[1], dtype=F64)
    c = jax.scipy.linalg.cho_factor(a, lower=True)
    return jax.scipy.linalg.cho_solve(c, xb.T @ y)


@jax.jit
def ridge_predict(x, w):
    return x @ w[:-1] + w[-1]


def run_ngrc_part():
    t0 = time.perf_counter()
    u = lorenz()
    feats = nvar_features(u)
    mse = {}
    for h in (1, 10, 100):
        w = ridge_fit(feats[NG_WARM:NG_TRAIN_END], u[NG_WARM + h : NG_TRAIN_END + h])
        # Fixed-shape prediction over the whole test block (no recompile per horizon).
        pred = np.asarray(ridge_predict(feats[NG_TRAIN_END:], w))[: NG_N - h - NG_TRAIN_END]
        truth = np.asarray(u[NG_TRAIN_END + h :])
        mse[str(h)] = float(np.mean((pred - truth) ** 2))
    return {"workload": "ngrc_part", "mse": mse, "compute_s": time.perf_counter() - t0}


# ---------------------------------------------------------------- checks


def fd_check(loss, p, args, names, seed, eps=1e-7, n=4):
    """Worst error of jax.grad against central differences on `n` random entries of each named
    parameter, relative to the largest gradient entry of that parameter (entries near zero
    would otherwise turn the rounding of the difference quotient into noise). The step is small
    (1e-7) because ReLU / spike / max kinks are crossed by larger steps (1e-5 crosses some)."""
    g = jax.jit(jax.grad(loss))(p, *args)
    lf = jax.jit(loss)
    worst = 0.0
    rng = np.random.default_rng(seed)
    for name in names:
        flat = np.asarray(p[name]).ravel()
        gflat = np.asarray(g[name]).ravel()
        scale = max(float(np.max(np.abs(gflat))), 1e-12)
        for i in rng.choice(flat.size, size=min(n, flat.size), replace=False):

            def shifted(d):
                q = dict(p)
                f = flat.copy()
                f[i] += d
                q[name] = jnp.asarray(f.reshape(p[name].shape))
                return float(lf(q, *args))

            fd = (shifted(eps) - shifted(-eps)) / (2 * eps)
            worst = max(worst, abs(fd - float(gflat[i])) / scale)
    return worst


def run_check():
    out = {"workload": "check"}
    # BPTT: every parameter is smooth almost everywhere (ReLU), so central differences apply.
    p = rnn_init(jax.random.PRNGKey(0))
    xs, ys = rnn_data(jax.random.PRNGKey(1))
    out["bptt_fd_max_rel_err"] = fd_check(rnn_loss, p, (xs, ys), ["wi", "wh", "b", "h0", "wo", "bo"], 0)
    s = adam_init(p)
    l0 = None
    for i in range(100):
        xs, ys = rnn_data(jax.random.PRNGKey(10 + i))
        p, s, loss = rnn_step(p, s, xs, ys)
        l0 = float(loss) if l0 is None else l0
    out["bptt_loss_first_last"] = [l0, float(loss)]
    # SNN: the readout (w2, b2) does not feed back into the spikes, so its loss is smooth and
    # central differences check it; w1 goes through the surrogate, checked by the loss decrease.
    p = snn_init(jax.random.PRNGKey(0))
    xs, labels = snn_data(jax.random.PRNGKey(1))
    # With the initial b2 = 0, samples without recurrent spikes output exactly 0 at every step:
    # the max over time is then a tie (a kink, where JAX splits the gradient between the tied
    # steps and central differences average the one-sided slopes). Checked away from it.
    p_chk = dict(p, b2=0.1 * jax.random.normal(jax.random.PRNGKey(3), (SNN_OUT,), F64))
    out["snn_readout_fd_max_rel_err"] = fd_check(snn_loss, p_chk, (xs, labels), ["w2", "b2"], 1)
    s = adam_init(p)
    l0 = None
    for _ in range(100):
        p, s, loss = snn_step(p, s, xs, labels)
        l0 = float(loss) if l0 is None else l0
    out["snn_loss_first_last"] = [l0, float(loss)]
    out["ok"] = bool(
        out["bptt_fd_max_rel_err"] < 1e-5
        and out["snn_readout_fd_max_rel_err"] < 1e-5
        and out["bptt_loss_first_last"][1] < out["bptt_loss_first_last"][0]
        and out["snn_loss_first_last"][1] < out["snn_loss_first_last"][0]
    )
    return out


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    what = sys.argv[1]
    budget = float(os.environ.get("BENCH_SECONDS", "1.0"))
    runners = {
        "bptt_step": lambda: bench_bptt_step(budget),
        "snn_step": lambda: bench_snn_step(budget),
        "ngrc_part": run_ngrc_part,
        "rnn_part": run_rnn_part,
        "snn_part": run_snn_part,
        "check": run_check,
    }
    if what not in runners:
        print(f"unknown workload {what!r}; expected one of {sorted(runners)}", file=sys.stderr)
        sys.exit(2)
    res = runners[what]()
    res["import_s"] = T_IMPORTED - T_PROCESS_START
    res["in_process_total_s"] = time.perf_counter() - T_PROCESS_START
    res["peak_rss_kib"] = peak_rss_kib()
    res["jax_version"] = jax.__version__
    res["devices"] = [str(d) for d in jax.devices()]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
