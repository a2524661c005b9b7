"""One Stable-Baselines3 run with our scripts' default hyperparameters, logged as our scripts log.

A `benchmarks/grid.py` arm like our scripts (same --env-id, --seed, --total-timesteps,
--learning-starts, --eval-episodes flags), so that a grid can run ours and SB3 side by side:
it writes `charts/episodic_return` and `eval/episodic_return` to runs/{run_name}/ for TensorBoard and
prints `training-phase SPS: ...`. The evaluation plays the same episodes (reset seeds) as our
scripts' evaluation with the same --seed. The hyperparameters are those of our scripts' defaults for
the environment's action space: SAC/TD3/DDPG and DQN as in benchmarks/speed.py, SB3's DQN with
dqn.py's loss, the MSE, and no gradient clipping (SB3's own Huber loss and clipping at norm 10, at these
hyperparameters, end on CartPole-v1 at a return of 10 on every seed: see docs/results.md); PPO, CleanRL's
Discrete or Box defaults; A2C, SB3's with 8 (Discrete) or 4 (Box) environments. Where our loss has a
½ that SB3's has not (PPO's and A2C's value loss), SB3's coefficient is halved to match.

Run:  python benchmarks/sb3_run.py --algo SAC --env-id Pendulum-v1 --total-timesteps 20000 --learning-starts 1000
      python benchmarks/grid.py --arm "sb3-ppo=benchmarks/sb3_run.py --algo PPO" --env-ids CartPole-v1 ...
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algo", choices=["SAC", "TD3", "DDPG", "DQN", "PPO", "A2C"], required=True)
    p.add_argument("--env-id", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--total-timesteps", type=int, required=True)
    p.add_argument("--learning-starts", type=int, help="off-policy: random steps first (default: our script's)")
    p.add_argument("--eval-episodes", type=int, default=10)
    return p.parse_args(argv)


def build(args: argparse.Namespace):
    """The SB3 model with our scripts' hyperparameters, and the vectorised environment it trains on."""
    import gymnasium as gym
    import torch.nn as nn
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    import speed

    discrete = isinstance(gym.make(args.env_id).action_space, gym.spaces.Discrete)
    if args.algo in ("SAC", "TD3", "DDPG", "DQN"):  # speed.py's configurations: our scripts' defaults
        default_starts = {"SAC": 5000, "TD3": 25000, "DDPG": 25000, "DQN": 10000}[args.algo]
        model = speed.build_sb3(args.algo, args.env_id, args.learning_starts or default_starts, args.seed)
        if args.algo == "DQN":  # dqn.py's loss: SB3's DQN calls F.smooth_l1_loss (Huber), fixed in its train()
            import types

            import stable_baselines3.dqn.dqn as sb3_dqn
            import torch.nn.functional as F
            sb3_dqn.F = types.SimpleNamespace(smooth_l1_loss=F.mse_loss)
            model.max_grad_norm = float("inf")  # dqn.py does not clip
        return model
    nets = dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=nn.Tanh)
    anneal = lambda lr: (lambda remaining: remaining * lr)  # noqa: E731  linear to 0, as our --anneal-lr
    if args.algo == "PPO":
        n_envs, n_steps, minibatches, epochs, lr, ent = (4, 128, 4, 4, 2.5e-4, 0.01) if discrete else (1, 2048, 32, 10, 3e-4, 0.0)
        envs = make_vec_env(args.env_id, n_envs=n_envs, seed=args.seed)
        if not discrete:
            envs = VecNormalize(envs, gamma=0.99, clip_obs=10.0, clip_reward=10.0)
        return PPO("MlpPolicy", envs, learning_rate=anneal(lr), n_steps=n_steps, batch_size=n_envs * n_steps // minibatches,
                   n_epochs=epochs, gamma=0.99, gae_lambda=0.95, clip_range=0.2, clip_range_vf=0.2, ent_coef=ent,
                   vf_coef=0.25, max_grad_norm=0.5, policy_kwargs=nets, device="cpu", seed=args.seed, verbose=0)
    envs = make_vec_env(args.env_id, n_envs=8 if discrete else 4, seed=args.seed)
    if not discrete:
        envs = VecNormalize(envs, gamma=0.99, clip_obs=10.0, clip_reward=10.0)
    return A2C("MlpPolicy", envs, learning_rate=anneal(7e-4), n_steps=5, gamma=0.99, gae_lambda=1.0, ent_coef=0.0,
               vf_coef=0.25, max_grad_norm=0.5, use_rms_prop=True, rms_prop_eps=1e-5, normalize_advantage=False,
               policy_kwargs=nets, device="cpu", seed=args.seed, verbose=0)


def main(argv=None) -> None:
    args = parse_args(argv)
    import numpy as np
    from stable_baselines3.common.callbacks import BaseCallback
    from torch.utils.tensorboard import SummaryWriter

    import plumbing

    model = build(args)
    on_policy = args.algo in ("PPO", "A2C")
    learning_starts = 0 if on_policy else model.learning_starts
    run_name = f"{args.env_id}__sb3_{args.algo.lower()}__{args.seed}__{int(time.time())}"
    writer = SummaryWriter(f"runs/{run_name}")

    class Log(BaseCallback):
        """Each finished episode's return and length, as our scripts log them; the training phase's start."""
        start = None

        def _on_step(self) -> bool:
            if self.start is None and self.num_timesteps > learning_starts:
                self.start = (time.time(), self.num_timesteps)
            for info in self.locals["infos"]:
                if "episode" in info:
                    writer.add_scalar("charts/episodic_return", info["episode"]["r"], self.num_timesteps)
                    writer.add_scalar("charts/episodic_length", info["episode"]["l"], self.num_timesteps)
            return True

    log = Log()
    model.learn(total_timesteps=args.total_timesteps, callback=log)
    if log.start is not None and model.num_timesteps > log.start[1]:
        print(f"training-phase SPS: {(model.num_timesteps - log.start[1]) / (time.time() - log.start[0]):.1f}")
    vec = model.get_env()

    def policy(obs):  # the deterministic policy, on observations normalised with the training statistics, frozen
        if hasattr(vec, "normalize_obs"):
            obs = vec.normalize_obs(obs)
        return model.predict(obs, deterministic=True)[0]

    returns = plumbing.evaluate(args.env_id, policy, args.eval_episodes, args.seed)
    for episode, episodic_return in enumerate(returns):
        writer.add_scalar("eval/episodic_return", episodic_return, episode)
    writer.close()
    print(f"eval/episodic_return: {np.mean(returns):.1f} ± {np.std(returns):.1f} over {len(returns)} episodes")


if __name__ == "__main__":
    main()
