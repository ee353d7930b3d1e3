#!/usr/bin/env python3
"""The BrainPy tutorial's code itself ("Training a Brain Dynamics Model"), for the optional
BrainPy column of `bench/compare.sh` (BENCH_BRAINPY=1).

Usage: `python brainpy_workloads.py WORKLOAD`, WORKLOAD one of
  snn_step    the tutorial's SNN Trainer: first call and median steady train step
  bptt_epoch  the tutorial's RNN with bp.BPTT: first epoch and median of the next epochs
  ngrc_part   part 1 whole (Lorenz data from the same RK4 as jax_workloads.py, since
              brainpy_datasets is not installed): NVAR + RidgeTrainer, three horizons
Prints one JSON object (seconds, peak RSS KiB of this process).
"""

import json
import os
import resource
import sys
import time

T0 = time.perf_counter()
import brainpy as bp  # noqa: E402
import brainpy.math as bm  # noqa: E402
import numpy as np  # noqa: E402

bm.set_environment(x64=True)
T_IMPORTED = time.perf_counter()


def block(x):
    try:
        return x.block_until_ready()
    except AttributeError:
        return bm.as_jax(x).block_until_ready()


def snn_step():
    num_in, num_rec, num_step, num_sample, freq = 100, 10, 100, 256, 10

    class SNN(bp.DynamicalSystem):
        def __init__(self):
            super().__init__()
            self.r = bp.dyn.Lif(num_rec, tau=10.0, V_reset=0.0, V_rest=0.0, V_th=1.0)
            self.o = bp.dyn.Integrator(2, tau=5.0)
            self.i2r = bp.Sequential(
                comm=bp.dnn.Linear(num_in, num_rec, W_initializer=bp.init.KaimingNormal(scale=20.0)),
                syn=bp.dyn.Expon(num_rec, tau=10.0),
            )
            self.r2o = bp.Sequential(
                comm=bp.dnn.Linear(num_rec, 2, W_initializer=bp.init.KaimingNormal(scale=20.0)),
                syn=bp.dyn.Expon(2, tau=10.0),
            )

        def update(self, spike):
            return spike >> self.i2r >> self.r >> self.r2o >> self.o

    with bm.training_environment():
        net = SNN()
    mask = bm.random.rand(num_step, num_sample, num_in)
    x_data = bm.zeros((num_step, num_sample, num_in))
    x_data[mask < freq * bm.get_dt() / 1000.0] = 1.0
    y_data = bm.asarray(bm.random.rand(num_sample) < 0.5, dtype=bm.float_)
    indices = bm.arange(num_step)

    class Trainer:
        def __init__(self, net, opt):
            self.net = net
            self.opt = opt
            opt.register_train_vars(net.train_vars().unique())
            self.f_grad = bm.grad(self.f_loss, grad_vars=self.opt.vars_to_train, return_value=True)

        def f_loss(self):
            self.net.reset(num_sample)
            outs = bm.for_loop(self.net.step_run, (indices, x_data))
            return bp.losses.cross_entropy_loss(bm.max(outs, axis=0), y_data)

        @bm.cls_jit
        def f_train(self):
            grads, loss = self.f_grad()
            self.opt.update(grads)
            return loss

    trainer = Trainer(net, bp.optim.Adam(lr=4e-3))
    t = time.perf_counter()
    l0 = float(block(trainer.f_train()))
    first = time.perf_counter() - t
    for _ in range(3):
        block(trainer.f_train())
    samples, budget = [], float(os.environ.get("BENCH_SECONDS", "1.0"))
    while len(samples) < 10 or sum(samples) < budget:
        t = time.perf_counter()
        loss = block(trainer.f_train())
        samples.append(time.perf_counter() - t)
    steady = float(np.median(samples))
    return {"workload": "snn_step", "first_s": first, "steady_s": steady,
            "compile_s": max(first - steady, 0.0), "loss_first_last": [l0, float(loss)]}


def bptt_epoch():
    dt, num_batch = 0.04, 128
    num_step = int(1.0 / dt)

    def build_inputs_and_targets(mean=0.025, scale=0.01):
        sample = bm.random.normal(size=(num_batch, 1, 1))
        bias = mean * 2.0 * (sample - 0.5)
        samples = bm.random.normal(size=(num_batch, num_step, 1))
        inputs = bias + scale / dt**0.5 * samples
        return inputs, bm.cumsum(inputs, axis=1)

    def train_data():
        for _ in range(100):
            yield build_inputs_and_targets()

    class RNN(bp.DynamicalSystem):
        def __init__(self, num_in, num_hidden):
            super().__init__()
            self.rnn = bp.dyn.RNNCell(num_in, num_hidden, train_state=True)
            self.out = bp.dnn.Dense(num_hidden, 1)

        def update(self, x):
            return self.out(self.rnn(x))

    with bm.training_environment():
        model = RNN(1, 100)

    def loss(predictions, targets, l2_reg=2e-4):
        mse = bp.losses.mean_squared_error(predictions, targets)
        l2 = l2_reg * bp.losses.l2_norm(model.train_vars().unique().dict()) ** 2
        return mse + l2

    lr = bp.optim.ExponentialDecay(lr=0.025, decay_steps=1, decay_rate=0.99975)
    opt = bp.optim.Adam(lr=lr, eps=1e-1)
    trainer = bp.BPTT(model, loss_fun=loss, optimizer=opt)
    epochs = []
    for _ in range(4):
        t = time.perf_counter()
        trainer.fit(train_data, num_epoch=1)
        epochs.append(time.perf_counter() - t)
    return {"workload": "bptt_epoch", "epoch_first_s": epochs[0],
            "epoch_steady_s": float(np.median(epochs[1:]))}


def lorenz(n=10000, h=0.01):
    def f(u):
        x, y, z = u
        return np.array([10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z])

    u = np.array([8.0, 1.0, 1.0])
    out = np.empty((n, 3))
    for i in range(n):
        k1 = f(u)
        k2 = f(u + 0.5 * h * k1)
        k3 = f(u + 0.5 * h * k2)
        k4 = f(u + h * k3)
        u = u + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        out[i] = u
    return out


def ngrc_part():
    t0 = time.perf_counter()
    data = lorenz()
    x_all = bm.asarray(data[None])  # (1, T, 3)
    warm, train_end = 2000, 8000

    class NGRC(bp.DynamicalSystem):
        def __init__(self, num_in, num_out):
            super().__init__()
            self.r = bp.dyn.NVAR(num_in, delay=4, order=2, stride=5)
            self.o = bp.dnn.Dense(self.r.num_out, num_out, mode=bm.training_mode)

        def update(self, x):
            return x >> self.r >> self.o

    with bm.environment(bm.batching_mode):
        model = NGRC(3, 3)
    trainer = bp.RidgeTrainer(model, alpha=1e-6)
    mse = {}
    for h in (1, 10, 100):
        trainer.predict(x_all[:, :warm])
        trainer.fit([x_all[:, warm:train_end], x_all[:, warm + h:train_end + h]])
        pred = trainer.predict(x_all[:, train_end:-h])
        mse[str(h)] = float(bm.mean((pred - x_all[:, train_end + h:]) ** 2))
    return {"workload": "ngrc_part", "mse": mse, "compute_s": time.perf_counter() - t0}


def main():
    runners = {"snn_step": snn_step, "bptt_epoch": bptt_epoch, "ngrc_part": ngrc_part}
    if len(sys.argv) < 2 or sys.argv[1] not in runners:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    res = runners[sys.argv[1]]()
    res["import_s"] = T_IMPORTED - T0
    res["in_process_total_s"] = time.perf_counter() - T0
    res["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res["brainpy_version"] = bp.__version__
    print(json.dumps(res))


if __name__ == "__main__":
    main()
