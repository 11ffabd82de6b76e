"""Time to solve CartPole-v1: scalerl PPO vs Stable-Baselines3 PPO (rl-baselines3-zoo tuned).

What it measures
    For each contender and seed, the wall time from *process start* until the training
    return -- the mean over the last 100 finished episodes, like SB3's ``ep_info_buffer`` and
    RLlib's ``episode_return_mean`` -- first reaches 475. Every run happens in a fresh
    subprocess (``--worker`` mode of this script), so imports, env and model construction
    are all included. Three figures are reported per run:

    * ``wall``  -- measured by the parent, from just before the subprocess is launched until
      the child prints its result line (includes interpreter start-up);
    * ``child`` -- measured by the child, from the first line of this script (before any
      heavy import) until the iteration that crossed the threshold returned;
    * ``cpu``   -- the child's CPU time (``time.process_time()``, all its threads), which
      other load on a shared machine disturbs less than wall time.

    The threshold is checked once per training iteration in both: after ``algo.train()``
    for scalerl, and in an SB3 callback at the end of every rollout (training then stops
    after that rollout's update, as scalerl's iteration also includes its update).

Contenders
    scalerl  -- PPO with the settings in ``SCALERL_CARTPOLE`` below (tuned for wall time
                on a 2-core machine; see ``VARIANTS`` for others that were tried).
    sb3      -- ``stable_baselines3.PPO`` with the rl-baselines3-zoo ``hyperparams/ppo.yml``
                CartPole-v1 entry (n_envs=8, n_steps=32, batch_size=256, gae_lambda=0.8,
                gamma=0.98, n_epochs=20, ent_coef=0.0, lin_0.001 lr, lin_0.2 clip range,
                n_timesteps=1e5), DummyVecEnv + Monitor as ``make_vec_env`` builds them.
                The zoo's ``lin_X`` schedules decay to 0 over its n_timesteps (1e5), so SB3
                is run with ``learn(total_timesteps=1e5)`` exactly as the zoo does; past that
                its learning rate is 0 and more steps could not help. Skipped (with a
                message) when stable-baselines3 is not installed. scalerl is capped at
                ``--max-steps`` (default 300k); a run that does not get there within its
                budget is reported as "not reached".

Fairness: both children call ``torch.set_num_threads(1)`` right after importing torch
(scalerl's Learner would pick 1 thread anyway; ``--torch-threads 0`` leaves torch's default
in both, which lets SB3 use every core). Both use a [64, 64] tanh actor and critic on CPU.

Run
    .venv/bin/python benchmarks/cartpole_vs_sb3.py                  # 3 seeds each
    .venv/bin/python benchmarks/cartpole_vs_sb3.py --repeats 5
    .venv/bin/python benchmarks/cartpole_vs_sb3.py --only scalerl --variants all
    .venv/bin/python benchmarks/cartpole_vs_sb3.py --variants default,zoo_like_n8_b256_e20
    .venv/bin/python benchmarks/cartpole_vs_sb3.py --only sb3 --torch-threads 0

No timing assertions: the script only prints a table.
"""

import time

_T_START = time.perf_counter()  # the child's clock starts before any heavy import

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

THRESHOLD = 475.0
MAX_STEPS = 300_000  # scalerl step budget; SB3 gets the zoo's 1e5 (its schedules end there)

# The scalerl settings compared against SB3 (flat PPOConfig keys, set with update_from_dict).
# The fastest robust choice found on a 2-core machine (see VARIANTS and benchmarks/README.md):
# few, large minibatches (the learner's per-minibatch cost dominates), a higher lr to match,
# and the zoo's short-horizon gamma/lambda.
SCALERL_CARTPOLE = {
    "num_env_runners": 0,
    "num_envs_per_env_runner": 16,
    "train_batch_size": 2048,
    "minibatch_size": 512,
    "num_epochs": 10,
    "lr": 0.002,
    "gamma": 0.98,
    "lambda_": 0.8,
}


def _variant(n: int, batch: int, minibatch: int, epochs: int = 10, lr=0.001, **kw) -> dict:
    return {
        "num_envs_per_env_runner": n,
        "train_batch_size": batch,
        "minibatch_size": minibatch,
        "num_epochs": epochs,
        "lr": lr,
        **kw,
    }


# Settings tried while tuning (`--variants NAME,...` or `--variants all`); each replaces
# the keys it names in SCALERL_CARTPOLE. Names: n=envs, b=train batch, mb=minibatch,
# e=epochs (10 unless named), lr (1e-3 unless named).
VARIANTS: dict[str, dict] = {
    "default": {},  # = SCALERL_CARTPOLE (n16_b2048_mb512_lr2e-3)
    # the SB3 zoo's hyperparameters, transcribed (lr decays linearly to 0 at 100k steps)
    "zoo_like_n8_b256_e20": _variant(8, 256, 256, 20, [[0, 0.001], [100_000, 0.0]]),
    "ppo_defaults_n16": _variant(16, 4000, 128, 10, 3e-4, gamma=0.99, lambda_=0.95),
    "n8_b256": _variant(8, 256, 256),
    "n8_b512": _variant(8, 512, 256),
    "n16_b512": _variant(16, 512, 256),
    "n16_b512_e20": _variant(16, 512, 256, 20),
    "n16_b1024_mb256": _variant(16, 1024, 256),  # the first guess
    "n16_b1024_mb256_e20": _variant(16, 1024, 256, 20),
    "n16_b1024_mb256_e5": _variant(16, 1024, 256, 5),
    "n16_b1024_mb128": _variant(16, 1024, 128),
    "n16_b1024_mb512": _variant(16, 1024, 512),
    "n16_b1024_mb256_lr2e-3": _variant(16, 1024, 256, lr=0.002),
    "n16_b1024_mb256_g99": _variant(16, 1024, 256, gamma=0.99, lambda_=0.95),
    "n16_b1024_mb512_lr2e-3": _variant(16, 1024, 512, lr=0.002),
    "n16_b2048_mb512": _variant(16, 2048, 512),
    "n16_b2048_mb512_lr3e-3": _variant(16, 2048, 512, lr=0.003),
    "n16_b2048_mb512_lr2e-3_e6": _variant(16, 2048, 512, 6, lr=0.002),
    "n16_b2048_mb1024": _variant(16, 2048, 1024),
    "n16_b2048_mb1024_lr2e-3": _variant(16, 2048, 1024, lr=0.002),
    "n32_b1024_mb256": _variant(32, 1024, 256),
    "n32_b2048_mb512": _variant(32, 2048, 512),
    "n32_b2048_mb512_lr2e-3": _variant(32, 2048, 512, lr=0.002),
    "n32_b2048_mb1024": _variant(32, 2048, 1024),
    "n32_b2048_mb1024_lr2e-3": _variant(32, 2048, 1024, lr=0.002),
    "n32_b2048_mb1024_e20": _variant(32, 2048, 1024, 20),
    "n32_b2048_mb1024_g99": _variant(32, 2048, 1024, gamma=0.99, lambda_=0.95),
    "n32_b2048_mb2048_lr2e-3": _variant(32, 2048, 2048, lr=0.002),
    "n32_b4096_mb512": _variant(32, 4096, 512),
    "n32_b4096_mb1024": _variant(32, 4096, 1024),
    "n32_b4096_mb1024_lr2e-3": _variant(32, 4096, 1024, lr=0.002),
    "n32_b4096_mb2048_lr2e-3": _variant(32, 4096, 2048, lr=0.002),
    "n64_b2048_mb1024": _variant(64, 2048, 1024),
}

ZOO_CARTPOLE = {  # rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1 ("# Tuned")
    "n_envs": 8,
    "n_timesteps": 100_000,
    "policy": "MlpPolicy",
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": "lin_0.001",
    "clip_range": "lin_0.2",
}


# -- child processes ----------------------------------------------------------------------
def _report(**fields) -> None:
    launch = float(os.environ.get("BENCH_LAUNCH_TIME", "nan"))
    fields["child_s"] = time.perf_counter() - _T_START
    fields["cpu_s"] = time.process_time()  # this process's CPU time, all threads
    fields["since_launch_s"] = time.time() - launch
    print("RESULT " + json.dumps(fields), flush=True)


def worker_scalerl(seed: int, threads: int, settings: dict, max_steps: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    from scalerl.algorithms.ppo import PPOConfig

    t_import = time.perf_counter() - _T_START
    config = PPOConfig().environment("CartPole-v1").debugging(seed=seed)
    config.update_from_dict(settings)
    algo = config.build_algo()
    t_build = time.perf_counter() - _T_START
    ret, steps, iters = float("nan"), 0, 0
    while steps < max_steps:
        result = algo.train()
        iters += 1
        ret = result["env_runners"]["episode_return_mean"]
        steps = result["num_env_steps_sampled_lifetime"]
        if ret >= THRESHOLD:
            _report(
                reached=True,
                steps=steps,
                iterations=iters,
                ret=ret,
                import_s=t_import,
                build_s=t_build,
            )
            break
    else:
        _report(
            reached=False,
            steps=steps,
            iterations=iters,
            ret=ret,
            import_s=t_import,
            build_s=t_build,
        )
    algo.stop()


def worker_sb3(seed: int, threads: int) -> None:
    import numpy as np
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    t_import = time.perf_counter() - _T_START
    zoo = ZOO_CARTPOLE

    def lin(initial: float):
        # rl-baselines3-zoo's `linear_schedule`: progress_remaining (1 -> 0) * initial.
        return lambda progress_remaining: progress_remaining * initial

    class StopAtThreshold(BaseCallback):
        def __init__(self):
            super().__init__()
            self.reached = False
            self.ret = float("nan")
            self.updates = 0

        def _on_step(self) -> bool:
            return not self.reached

        def _on_rollout_end(self) -> None:
            self.updates += 1
            buf = self.model.ep_info_buffer
            if buf:
                self.ret = float(np.mean([ep["r"] for ep in buf]))
                self.reached = self.ret >= THRESHOLD

    env = make_vec_env("CartPole-v1", n_envs=zoo["n_envs"], seed=seed)
    model = PPO(
        zoo["policy"],
        env,
        n_steps=zoo["n_steps"],
        batch_size=zoo["batch_size"],
        gae_lambda=zoo["gae_lambda"],
        gamma=zoo["gamma"],
        n_epochs=zoo["n_epochs"],
        ent_coef=zoo["ent_coef"],
        learning_rate=lin(float(zoo["learning_rate"][4:])),
        clip_range=lin(float(zoo["clip_range"][4:])),
        seed=seed,
        device="cpu",
        verbose=0,
    )
    t_build = time.perf_counter() - _T_START
    cb = StopAtThreshold()
    model.learn(total_timesteps=zoo["n_timesteps"], callback=cb)
    _report(
        reached=cb.reached,
        steps=int(model.num_timesteps),
        iterations=cb.updates,
        ret=cb.ret,
        import_s=t_import,
        build_s=t_build,
    )
    env.close()


# -- parent --------------------------------------------------------------------------------
def sb3_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("stable_baselines3") is not None


def run_child(args: list[str], timeout: float) -> dict:
    """Launch this script in `--worker` mode; return its RESULT with the parent's wall time."""
    env = dict(os.environ)
    t0 = time.perf_counter()
    env["BENCH_LAUNCH_TIME"] = repr(time.time())
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--worker", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    result = None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            wall = time.perf_counter() - t0
            result = json.loads(line[len("RESULT ") :])
            result["wall_s"] = wall
            break
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    if result is None:
        raise RuntimeError(f"worker {args} failed (rc={proc.returncode}):\n{err[-3000:]}")
    return result


def fmt_run(r: dict) -> str:
    if not r["reached"]:
        return f"not reached ({r['steps']} steps, return {r['ret']:.1f})"
    return (
        f"{r['wall_s']:6.2f}s wall, {r['child_s']:6.2f}s child, {r['cpu_s']:6.2f}s cpu, "
        f"{r['steps']:6d} steps"
    )


def median_of(runs: list[dict], key: str) -> float:
    """Median over seeds; a run that did not reach the threshold counts as infinite."""
    return statistics.median([r[key] if r["reached"] else float("inf") for r in runs])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="seeds 0..N-1 per contender")
    p.add_argument("--only", choices=["scalerl", "sb3"], help="run one contender")
    p.add_argument(
        "--variants",
        default="default",
        help="comma-separated scalerl VARIANTS to run, or 'all' (default: SCALERL_CARTPOLE)",
    )
    p.add_argument("--torch-threads", type=int, default=1, help="0 = torch's default")
    p.add_argument("--max-steps", type=int, default=MAX_STEPS)
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        kind, seed, threads = args.worker[0], int(args.worker[1]), int(args.worker[2])
        if kind == "scalerl":
            worker_scalerl(seed, threads, json.loads(args.worker[3]), int(args.worker[4]))
        else:
            worker_sb3(seed, threads)
        return

    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    seeds = list(range(args.repeats))
    print(f"CartPole-v1, threshold {THRESHOLD} (mean of the last 100 training episodes)")
    print(f"seeds {seeds}, torch threads per process: {args.torch_threads or 'torch default'}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")

    contenders: list[tuple[str, list[str]]] = []
    if args.only != "sb3":
        for name in names:
            settings = {**SCALERL_CARTPOLE, **VARIANTS[name]}
            label = "scalerl" if name == "default" else f"scalerl[{name}]"
            print(f"{label}: {json.dumps(settings)}")
            contenders.append((label, ["scalerl", json.dumps(settings), str(args.max_steps)]))
    if args.only != "scalerl":
        if sb3_installed():
            import stable_baselines3

            print(
                f"sb3 {stable_baselines3.__version__}: zoo CartPole-v1 {json.dumps(ZOO_CARTPOLE)}"
            )
            contenders.append(("sb3", ["sb3"]))
        else:
            print(
                "sb3: stable-baselines3 is not installed; skipped (pip install stable-baselines3)"
            )
    print()
    if not contenders:
        return

    # Interleave contenders seed by seed, so machine-load drift hits all of them alike.
    runs: dict[str, list[dict]] = {label: [] for label, _ in contenders}
    for seed in seeds:
        for label, spec in contenders:
            worker_args = [spec[0], str(seed), str(args.torch_threads), *spec[1:]]
            r = run_child(worker_args, timeout=1800)
            runs[label].append(r)
            print(f"  {label:28s} seed {seed}: {fmt_run(r)}", flush=True)

    print()
    print("Medians over seeds. wall: parent-measured, launch to result incl. interpreter start;")
    print("child: since the child script's first line, incl. imports; cpu: child CPU time;")
    print("import/build: when (since script start) the imports / the model build were done.")
    header = (
        f"{'contender':28s} {'reached':>7s} {'wall s':>7s} {'child s':>7s} {'cpu s':>7s} "
        f"{'import':>6s} {'build':>6s} {'env steps':>9s} {'iters':>5s}"
    )
    print(header)
    print("-" * len(header))
    med: dict[str, tuple[float, float]] = {}
    for label, rs in runs.items():
        reached = sum(r["reached"] for r in rs)
        med[label] = (median_of(rs, "wall_s"), median_of(rs, "cpu_s"))
        print(
            f"{label:28s} {reached:>3d}/{len(rs):<3d} {med[label][0]:7.2f} "
            f"{median_of(rs, 'child_s'):7.2f} {med[label][1]:7.2f} "
            f"{statistics.median(r['import_s'] for r in rs):6.2f} "
            f"{statistics.median(r['build_s'] for r in rs):6.2f} "
            f"{median_of(rs, 'steps'):9.0f} {statistics.median(r['iterations'] for r in rs):5.0f}"
        )
    if "sb3" in med and len(med) > 1:
        print("\nRatio SB3 / scalerl of the medians (> 1 means scalerl is faster):")
        for label, (wall, cpu) in med.items():
            if label != "sb3":
                print(
                    f"  sb3 / {label:28s} wall {med['sb3'][0] / wall:5.2f}x   "
                    f"cpu {med['sb3'][1] / cpu:5.2f}x"
                )


if __name__ == "__main__":
    main()
