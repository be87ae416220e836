"""PPO with CleanRL's semantics and defaults (ppo_collapse.md §7), plus PFO and representation diagnostics.

Read top to bottom: `PPOConfig` (CleanRL's argument names), `compute_gae`, the two losses,
`PPO` (one learner: collect a rollout, update for `update_epochs` epochs, diagnose), and
`run_ppo`, the training loop wired to the lab bench (logging, checkpoints, resume).

Semantics kept from CleanRL's `ppo.py`: Adam with eps 1e-5; LR annealed linearly to 0 per
iteration (or constant); GAE with truncation treated as termination; minibatch advantage
normalisation; clipped surrogate; clipped value loss; entropy bonus; global grad-norm clipping;
optional early stop on `target_kl` after an epoch.

Diagnostics (probes.md §4-6), after every update, on the whole rollout with the updated
networks: the trust-region statistics of the ratios (fraction outside [1 - eps, 1 + eps],
mean/max beyond each side), approx KL, the penultimate pre-activation norm, dead units and weight
norms of actor and critic, and how far the policy's pre-activations moved (PFO's distance).
Feature ranks (an SVD each) run every `diagnostics.rank_every` updates and the capacity probe
every `diagnostics.capacity_every` updates (and both at the first and last update).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from repdyn.bench.config import param
from repdyn.bench.context import RunContext
from repdyn.bench.errors import ConfigError
from repdyn.methods.pfo import (
    PFOConfig,
    block_out_of_trust,
    feature_distance,
    out_of_trust,
    policy_preactivations,
)
from repdyn.models.actor_critic import ActorCritic
from repdyn.probes import (
    capacity_loss,
    dead_fraction,
    prenorm,
    rank_metrics,
    trust_region_stats,
    weight_norm,
)
from repdyn.probes.trust_region import approx_kl
from repdyn.tasks.rl_envs import env_family, finished_episodes, make_vector_env, reset_seed

EPISODE_WINDOW = 20  # ppo_collapse.md §9: mean return over the last 20 episodes
RANKS = ("feature_rank_lyle", "srank_kumar")


@dataclass(frozen=True)
class DiagnosticsConfig:
    """Cadence and budget of the representation probes."""

    rank_every: int = param(10, min=0, help="feature ranks (one SVD per network) every N updates; 0 = never")
    capacity_every: int = param(50, min=0, help="capacity-loss probe every N updates; 0 = never")
    capacity_steps: int = param(200, min=1, help="Adam steps the probe fits for (its fixed budget)")
    capacity_batch: int = param(128, min=1, help="minibatch size of the probe's fit")
    capacity_lr: float = param(1e-3, min=0.0, help="learning rate of the probe's fit")


@dataclass(frozen=True)
class PPOConfig:
    """CleanRL's `ppo.py` arguments (same names and defaults), then the network, PFO and diagnostics."""

    env_id: str = param("CartPole-v1", help="gymnasium id: classic control, MinAtar/..., ALE/..., MuJoCo")
    total_timesteps: int = param(500_000, min=1, help="environment steps in total")
    learning_rate: float = param(2.5e-4, min=0.0)
    num_envs: int = param(4, min=1, help="parallel environments")
    num_steps: int = param(128, min=1, help="steps per environment per rollout")
    anneal_lr: bool = param(True, help="anneal the learning rate linearly to 0")
    gamma: float = param(0.99, min=0.0, max=1.0)
    gae_lambda: float = param(0.95, min=0.0, max=1.0)
    num_minibatches: int = param(4, min=1)
    update_epochs: int = param(4, min=1, help="epochs over each rollout (more = more non-stationarity)")
    norm_adv: bool = param(True, help="normalise advantages per minibatch")
    clip_coef: float = param(0.2, min=0.0, help="surrogate (and value) clipping epsilon")
    clip_vloss: bool = param(True, help="clipped value loss")
    ent_coef: float = param(0.01, min=0.0)
    vf_coef: float = param(0.5, min=0.0)
    max_grad_norm: float = param(0.5, min=0.0)
    target_kl: float | None = param(None, min=0.0, help="stop the epochs when approx KL exceeds it; none = off")
    adam_eps: float = param(1e-5, min=0.0)
    vectorization: Literal["sync", "async"] = param("sync", help="gymnasium SyncVectorEnv or AsyncVectorEnv")
    network: Literal["auto", "mlp", "minatar_cnn", "nature_cnn"] = param(
        "auto", help="trunk; auto = mlp, minatar_cnn for MinAtar, nature_cnn for Atari")
    hidden_sizes: tuple[int, ...] = param((64, 64), min=1, help="mlp hidden widths")
    activation: Literal["tanh", "relu"] = param("tanh")
    shared_trunk: bool = param(False, help="one trunk for actor and critic (CleanRL: separate)")
    pfo: PFOConfig = field(default_factory=PFOConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)

    @property
    def batch_size(self) -> int:
        """Samples per rollout."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        """Samples per gradient step."""
        return self.batch_size // self.num_minibatches

    @property
    def num_iterations(self) -> int:
        """Rollout-and-update iterations (CleanRL: total_timesteps // batch_size)."""
        return self.total_timesteps // self.batch_size

    @property
    def trunk(self) -> str:
        """The trunk `network=auto` resolves to for this environment."""
        if self.network != "auto":
            return self.network
        return {"minatar": "minatar_cnn", "atari": "nature_cnn"}.get(env_family(self.env_id), "mlp")

    def validate(self) -> None:
        if self.num_minibatches > self.batch_size:
            raise ConfigError("num_minibatches", f"{self.num_minibatches} exceeds the batch of {self.batch_size}")
        if self.total_timesteps < self.batch_size:
            raise ConfigError("total_timesteps", f"must cover one rollout of num_envs*num_steps = {self.batch_size}")


# ---- advantages and losses -------------------------------------------------------------------

def compute_gae(
    rewards: Tensor, values: Tensor, dones: Tensor, next_value: Tensor, next_done: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """GAE(gamma, lambda) over a `[T, N]` rollout; returns (advantages, returns = advantages + values).

    `dones[t]` is 1 when obs[t] starts a new episode (the step before it ended one); the rollout is
    bootstrapped with `next_value` unless `next_done`. This is CleanRL's recursion.
    """
    next_values = torch.cat([values[1:], next_value.unsqueeze(0)])
    next_nonterminal = 1.0 - torch.cat([dones[1:], next_done.unsqueeze(0)])
    deltas = rewards + gamma * next_values * next_nonterminal - values
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        last = deltas[t] + gamma * lam * next_nonterminal[t] * last
        advantages[t] = last
    return advantages, advantages + values


def clipped_surrogate(logp_new: Tensor, logp_old: Tensor, advantages: Tensor, clip_coef: float) -> Tensor:
    """Per-sample PPO policy loss max(-A r, -A clip(r, 1 - eps, 1 + eps)), r = exp(logp_new - logp_old)."""
    ratio = (logp_new - logp_old).exp()
    return torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip_coef, 1 + clip_coef))


def value_loss(new: Tensor, old: Tensor, returns: Tensor, clip_coef: float, clipped: bool) -> Tensor:
    """0.5 * mean squared error to the returns; with `clipped`, the max of it and that of old + clip(new - old)."""
    unclipped = (new - returns).square()
    if not clipped:
        return 0.5 * unclipped.mean()
    moved = old + (new - old).clamp(-clip_coef, clip_coef)
    return 0.5 * torch.max(unclipped, (moved - returns).square()).mean()


# ---- the learner -----------------------------------------------------------------------------

@dataclass
class Batch:
    """A rollout flattened to samples, with what the update needs."""

    obs: Tensor
    actions: Tensor
    logprobs: Tensor
    values: Tensor
    advantages: Tensor
    returns: Tensor
    old_features: Tensor


class PPO:
    """One PPO learner: agent, optimiser, vector environment, rollout storage and counters."""

    def __init__(self, config: PPOConfig, seed: int, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.seed = seed
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self.envs = make_vector_env(config.env_id, config.num_envs, vectorization=config.vectorization,
                                    gamma=config.gamma)
        self.obs_shape = self.envs.single_observation_space.shape
        space = self.envs.single_action_space
        self.continuous = isinstance(space, gym.spaces.Box)
        self.action_shape = space.shape if self.continuous else ()
        self.agent = self._build_agent(space).to(self.device)
        # Adam's fused kernel: the same update as CleanRL's Adam, 4x cheaper per step on small networks.
        self.optimizer = torch.optim.Adam(self.agent.parameters(), lr=config.learning_rate, eps=config.adam_eps,
                                          fused=True)
        self.action_rng = torch.Generator().manual_seed(seed)
        self.shuffle_rng = np.random.default_rng(seed)
        self.counters: dict[str, Any] = {"global_step": 0, "episode_returns": [], "episode_lengths": []}
        self.probe_data: dict[str, Tensor] = {}
        self._fresh: ActorCritic | None = None
        t, n = config.num_steps, config.num_envs
        self.obs = torch.zeros((t, n, *self.obs_shape))
        self.actions = torch.zeros((t, n, *self.action_shape), dtype=torch.float32 if self.continuous else torch.long)
        self.logprobs, self.rewards, self.dones, self.values = (torch.zeros((t, n)) for _ in range(4))
        self.next_obs = torch.zeros((n, *self.obs_shape))
        self.next_done = torch.zeros(n)

    def _build_agent(self, space: gym.Space) -> ActorCritic:
        cfg = self.config
        action_dim = int(np.prod(space.shape)) if self.continuous else int(space.n)
        return ActorCritic(self.obs_shape, action_dim, continuous=self.continuous, trunk=cfg.trunk,
                           hidden_sizes=cfg.hidden_sizes, activation=cfg.activation, shared=cfg.shared_trunk)

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (everything but the environments' internal state)."""
        return {"agent": self.agent, "optimizer": self.optimizer, "action_rng": self.action_rng,
                "shuffle_rng": self.shuffle_rng, "counters": self.counters, "probe_data": self.probe_data}

    def close(self) -> None:
        """Close the environments."""
        self.envs.close()

    def reset_envs(self, update: int) -> None:
        """Reset every environment with the seed of this update (see `run_ppo` for when)."""
        obs, _ = self.envs.reset(seed=reset_seed(self.seed, update))
        self.next_obs = torch.tensor(obs, dtype=torch.float32)  # a copy: the vector env reuses its buffer
        self.next_done = torch.zeros(self.config.num_envs)

    # ---- one iteration ------------------------------------------------------------------------

    def collect(self) -> None:
        """Run the policy for `num_steps` steps in every environment, filling the rollout storage."""
        agent, counters = self.agent, self.counters
        for step in range(self.config.num_steps):
            counters["global_step"] += self.config.num_envs
            self.obs[step] = self.next_obs
            self.dones[step] = self.next_done
            with torch.no_grad():
                out = agent(self.next_obs.to(self.device))
                action = agent.sample(out.policy.cpu(), self.action_rng)
                self.logprobs[step] = agent.log_prob(out.policy.cpu(), action)
            self.values[step] = out.value.cpu()
            self.actions[step] = action
            obs, reward, terminated, truncated, infos = self.envs.step(action.numpy())
            self.rewards[step] = torch.as_tensor(reward, dtype=torch.float32)
            self.next_obs = torch.tensor(obs, dtype=torch.float32)
            self.next_done = torch.as_tensor(np.logical_or(terminated, truncated), dtype=torch.float32)
            for episode_return, episode_length in finished_episodes(infos):
                counters["episode_returns"] = [*counters["episode_returns"][-(EPISODE_WINDOW - 1):], episode_return]
                counters["episode_lengths"] = [*counters["episode_lengths"][-(EPISODE_WINDOW - 1):], episode_length]

    def batch(self) -> Batch:
        """GAE on the rollout, flattened, with the policy's pre-activations before the update (for PFO)."""
        cfg, dev = self.config, self.device
        with torch.no_grad():
            next_value = self.agent(self.next_obs.to(dev)).value.cpu()
        advantages, returns = compute_gae(self.rewards, self.values, self.dones, next_value, self.next_done,
                                          cfg.gamma, cfg.gae_lambda)
        obs = self.obs.reshape(-1, *self.obs_shape).to(dev)
        with torch.no_grad():
            old_features = policy_preactivations(self.agent(obs).actor_pre, cfg.pfo.layers)
        return Batch(obs, self.actions.reshape(-1, *self.action_shape).to(dev), self.logprobs.reshape(-1).to(dev),
                     self.values.reshape(-1).to(dev), advantages.reshape(-1).to(dev), returns.reshape(-1).to(dev),
                     old_features)

    def update(self, b: Batch) -> dict[str, float]:
        """`update_epochs` epochs of minibatch steps on the clipped PPO loss (+ PFO); CleanRL's loss statistics."""
        cfg, agent, pfo = self.config, self.agent, self.config.pfo
        indices = np.arange(cfg.batch_size)
        clipfracs = []
        for _ in range(cfg.update_epochs):
            self.shuffle_rng.shuffle(indices)
            for start in range(0, cfg.batch_size, cfg.minibatch_size):
                mb = torch.from_numpy(indices[start:start + cfg.minibatch_size]).to(self.device, non_blocking=True)
                out = agent(b.obs[mb])
                newlogprob = agent.log_prob(out.policy, b.actions[mb])
                logratio = newlogprob - b.logprobs[mb]
                with torch.no_grad():
                    ratio = logratio.exp()
                    old_approx_kl = (-logratio).mean()
                    approx_kl_mb = ((ratio - 1) - logratio).mean()
                    clipfracs.append(((ratio - 1).abs() > cfg.clip_coef).float().mean())
                advantages = b.advantages[mb]
                if cfg.norm_adv:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                pg_per_sample = clipped_surrogate(newlogprob, b.logprobs[mb], advantages, cfg.clip_coef)
                pfo_distance = torch.zeros(())
                if pfo.active:
                    features = policy_preactivations(out.actor_pre, pfo.layers)
                    distances = feature_distance(features, b.old_features[mb], pfo.distance)
                    pfo_distance = distances.mean()
                    if pfo.mode == "clip":
                        pg_per_sample = block_out_of_trust(pg_per_sample, out_of_trust(distances, pfo.limit))
                pg_loss = pg_per_sample.mean()
                v_loss = value_loss(out.value, b.values[mb], b.returns[mb], cfg.clip_coef, cfg.clip_vloss)
                entropy = agent.entropy(out.policy).mean()
                loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
                if pfo.mode == "regularize" and pfo.coef > 0:
                    loss = loss + pfo.coef * pfo_distance
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
            if cfg.target_kl is not None and approx_kl_mb.item() > cfg.target_kl:
                break
        values, returns = b.values.cpu().numpy(), b.returns.cpu().numpy()
        var_y = np.var(returns)
        return {
            "losses/value_loss": v_loss.item(), "losses/policy_loss": pg_loss.item(),
            "losses/entropy": entropy.item(), "losses/old_approx_kl": old_approx_kl.item(),
            "losses/approx_kl": approx_kl_mb.item(), "losses/clipfrac": torch.stack(clipfracs).mean().item(),
            "losses/explained_variance": float("nan") if var_y == 0 else float(1 - np.var(returns - values) / var_y),
            "losses/pfo_distance": pfo_distance.item(),
        }

    def diagnose(self, b: Batch, *, ranks: bool) -> dict[str, float]:
        """Trust region, norms, dead units (and ranks when asked) of the updated networks on the whole rollout."""
        cfg, agent = self.config, self.agent
        with torch.no_grad():
            out = agent(b.obs)
            logp = agent.log_prob(out.policy, b.actions)
            moved = feature_distance(policy_preactivations(out.actor_pre, cfg.pfo.layers), b.old_features, "l2")
        trust = trust_region_stats(logp, b.logprobs, cfg.clip_coef).as_dict("trust/")
        metrics = {k: v for k, v in trust.items() if not math.isnan(v)}  # NaN: a side without samples
        metrics["trust/approx_kl"] = approx_kl(logp, b.logprobs)
        metrics["actor/feature_change"] = moved.mean().item()
        for name, features, pre, params in (
            ("actor", out.actor_features, out.actor_pre, agent.actor_parameters()),
            ("critic", out.critic_features, out.critic_pre, agent.critic_parameters()),
        ):
            metrics[f"{name}/prenorm"] = prenorm(pre[-1])
            metrics[f"{name}/dead_fraction"] = dead_fraction(features, cfg.activation)
            metrics[f"{name}/weight_norm"] = weight_norm(params)
            if ranks:
                for metric, value in rank_metrics(features.flatten(1), RANKS).items():
                    metrics[f"{name}/{metric}"] = float(value)
        return metrics

    def capacity(self) -> dict[str, float]:
        """Capacity-loss probe (probes.md §6): fit copies of both networks to a fresh network's outputs.

        Data: the observations of the first rollout (collected by the initial policy). Targets: a
        network of the same architecture with PyTorch's default initialisation (the reference's
        `reset_parameters`), fixed per seed. Loss after the budget: KL(target || fit) for a
        categorical policy (MSE on action means for a Gaussian one), MSE for the value.
        """
        diag = self.config.diagnostics
        if self._fresh is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + 1)
                fresh = self._build_agent(self.envs.single_action_space)
                for module in fresh.modules():
                    if isinstance(module, (nn.Linear, nn.Conv2d)):
                        module.reset_parameters()
            self._fresh = fresh.to(self.device)
        data = self.probe_data["obs"].to(self.device).float()
        kwargs = {"steps": diag.capacity_steps, "lr": diag.capacity_lr, "batch_size": diag.capacity_batch,
                  "seed": self.seed}
        policy = capacity_loss(self.agent.policy_network(), self._fresh.policy_network(), data,
                               loss="mse" if self.continuous else "kl", **kwargs)
        value = capacity_loss(self.agent.value_network(), self._fresh.value_network(), data, loss="mse", **kwargs)
        return {"capacity/policy": policy.final_loss, "capacity/value": value.final_loss}

    def iterate(self, update: int) -> dict[str, float]:
        """Iteration `update` (0-based): set the LR, collect, update, diagnose; returns what to log."""
        cfg, diag = self.config, self.config.diagnostics
        lr = cfg.learning_rate * (1.0 - update / cfg.num_iterations if cfg.anneal_lr else 1.0)
        self.optimizer.param_groups[0]["lr"] = lr
        self.collect()
        b = self.batch()
        if "obs" not in self.probe_data:  # the capacity probe's data: the initial policy's first rollout
            pixels = self.envs.single_observation_space.dtype == np.uint8  # Atari frames: 4x smaller checkpoints
            self.probe_data["obs"] = b.obs.cpu().to(torch.uint8 if pixels else torch.float32).clone()
        metrics = {"learning_rate": lr, **self.update(b)}
        done = update + 1

        def due(every: int) -> bool:
            return every > 0 and (done == 1 or done % every == 0 or done == cfg.num_iterations)

        metrics.update(self.diagnose(b, ranks=due(diag.rank_every)))
        if due(diag.capacity_every):
            metrics.update(self.capacity())
        returns = self.counters["episode_returns"]
        if returns:
            metrics["episodic_return_mean"] = float(np.mean(returns))
            metrics["episodic_length_mean"] = float(np.mean(self.counters["episode_lengths"]))
        metrics["global_step"] = float(self.counters["global_step"])
        return metrics


# ---- the training loop, wired to the lab bench -----------------------------------------------

def run_ppo(ctx: RunContext, config: PPOConfig) -> None:
    """Train one PPO arm: log every update at step = updates done, checkpoint as the context asks.

    Resume is exact at scheduled checkpoints: the environments' internal state cannot be saved,
    so they are reset (with a seed derived from the run's seed and the update index) at the start
    of the run and at every checkpoint boundary (every `checkpoint_every` updates), in the
    uninterrupted run as in a resumed one. A rollout never spans a boundary: the last rollout
    before it is bootstrapped from the true next state, so the only effect on the algorithm is
    that episodes in progress restart there (and are not counted). A run stopped by a signal at
    another update resumes from a fresh reset at that update: statistically, but not bit for bit,
    the same as an uninterrupted run. MuJoCo's observation and reward normalisers live inside
    the environments and restart on resume. `sps` is wall-clock and differs between runs.
    Agents other than the Atari CNN train on one thread whatever the runner assigned (restored afterwards).
    """
    threads = torch.get_num_threads()
    if config.trunk != "nature_cnn":  # small nets: extra intra-op threads only synchronise (20x slower on a busy box)
        torch.set_num_threads(1)
    ppo = PPO(config, ctx.seed, ctx.device)
    try:
        start = ctx.restore(ppo.state())
        ctx.begin(total=config.num_iterations, done=start)
        first_step, started = ppo.counters["global_step"], time.perf_counter()
        for update in range(start, config.num_iterations):
            if update == start or (ctx.checkpoint_every and update % ctx.checkpoint_every == 0):
                ppo.reset_envs(update)
            metrics = ppo.iterate(update)
            metrics["sps"] = (ppo.counters["global_step"] - first_step) / (time.perf_counter() - started)
            ctx.log(update + 1, **metrics)
            ctx.tick(update + 1, ppo.state())
    finally:
        ppo.close()
        torch.set_num_threads(threads)
