"""Gymnasium vector environments for PPO, wrapped as CleanRL wraps them (ppo_collapse.md §7).

Four families, chosen by the environment id:

| family          | ids                                    | needs      | wrappers (CleanRL's file)                      |
|-----------------|----------------------------------------|------------|------------------------------------------------|
| classic control | `CartPole-v1`, `Acrobot-v1`, ...       | gymnasium  | episode statistics (`ppo.py`)                  |
| MinAtar         | `MinAtar/Breakout-v1`, ...             | `minatar`  | episode statistics; `[C, 10, 10]` float maps   |
| MuJoCo          | `HalfCheetah-v5`, `Hopper-v4`, ...     | `mujoco`   | `ppo_continuous_action.py`: clip actions, normalise and clip observations and rewards |
| Atari           | `ALE/Breakout-v5`, `BreakoutNoFrameskip-v4` | `ale-py`, `opencv-python` | `ppo_atari.py`: no-op starts, frame skip 4 with max-pooling, life loss ends an episode, FIRE on reset, reward sign, 84x84 grayscale, 4 stacked frames |

A missing optional package is a `UserError` naming the package to install. Sub-environments
auto-reset in the same step (gymnasium's `SAME_STEP` mode): the observation returned with
`done` is already the first one of the next episode, as in CleanRL's gymnasium-0.29 loop.
Each sub-environment records its own episode statistics (return and length of the whole game,
before reward clipping or normalisation), read back with `finished_episodes`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from repdyn.bench.errors import ConfigError

Vectorization = Literal["sync", "async"]

MUJOCO_TASKS = (
    "Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "InvertedDoublePendulum",
    "InvertedPendulum", "Pusher", "Reacher", "Swimmer", "Walker2d",
)

# Optional families: (module to import, package to install) for each thing they need.
_OPTIONAL = {
    "minatar": (("minatar.gym", "minatar"),),
    "atari": (("ale_py", "ale-py"), ("cv2", "opencv-python")),  # cv2: gymnasium's AtariPreprocessing resizes with it
    "mujoco": (("mujoco", "mujoco"),),
}


def env_family(env_id: str) -> str:
    """`classic`, `minatar`, `atari` or `mujoco`, from the shape of the id."""
    if env_id.startswith("MinAtar/"):
        return "minatar"
    if env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4"):
        return "atari"
    if env_id.split("-v")[0] in MUJOCO_TASKS:
        return "mujoco"
    return "classic"


def require_family(env_id: str, key: str = "env_id") -> str:
    """Import (and register) what the id's family needs; a clear UserError when it is not installed."""
    family = env_family(env_id)
    modules = {}
    for module_name, package in _OPTIONAL.get(family, ()):
        try:
            modules[module_name] = importlib.import_module(module_name)
        except ImportError:
            raise ConfigError(
                key, f"{env_id} is a {family} environment and needs the `{package}` package (pip install {package})"
            ) from None
    if family == "minatar":
        modules["minatar.gym"].register_envs()
    elif family == "atari":
        gym.register_envs(modules["ale_py"])
    if env_id not in gym.registry:
        classic = sorted(k for k in gym.registry if "classic_control" in str(gym.registry[k].entry_point))
        raise ConfigError(key, f"unknown environment {env_id!r}; classic control ids: {', '.join(classic)}")
    return family


class EpisodicLife(gym.Wrapper):
    """A lost life ends the episode for learning, but the game only resets when it is over (CleanRL's EpisodicLifeEnv).

    A reset with an explicit seed always resets the game.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        if self.game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info


class FireOnReset(gym.Wrapper):
    """Press FIRE (then action 2) after every reset, for games that wait for it (CleanRL's FireResetEnv)."""

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        self.env.reset(seed=seed, options=options)
        for action in (1, 2):
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        return obs, info


def _make_one(env_id: str, family: str, gamma: float) -> Callable[[], gym.Env]:
    """A thunk building one wrapped sub-environment."""

    def thunk() -> gym.Env:
        if family == "atari":
            env = gym.make(env_id, frameskip=1) if env_id.startswith("ALE/") else gym.make(env_id)
            env = gym.wrappers.RecordEpisodeStatistics(env)
            env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True)
            env = EpisodicLife(env)
            if "FIRE" in env.unwrapped.get_action_meanings():
                env = FireOnReset(env)
            env = gym.wrappers.TransformReward(env, lambda r: float(np.sign(r)))
            return gym.wrappers.FrameStackObservation(env, 4)
        env = gym.make(env_id)
        env = gym.wrappers.RecordEpisodeStatistics(env)
        if family == "minatar":
            return _channels_first_float(env)
        if family == "mujoco":
            env = gym.wrappers.FlattenObservation(env)
            env = gym.wrappers.ClipAction(env)
            env = gym.wrappers.NormalizeObservation(env)
            env = gym.wrappers.TransformObservation(env, lambda o: np.clip(o, -10, 10), env.observation_space)
            env = gym.wrappers.NormalizeReward(env, gamma=gamma)
            return gym.wrappers.TransformReward(env, lambda r: float(np.clip(r, -10, 10)))
        return env

    return thunk


def _channels_first_float(env: gym.Env) -> gym.Env:
    """MinAtar's `[10, 10, C]` boolean maps as `[C, 10, 10]` float32 maps, the layout convolutions take."""
    h, w, c = env.observation_space.shape
    space = gym.spaces.Box(0.0, 1.0, (c, h, w), np.float32)
    return gym.wrappers.TransformObservation(env, lambda o: np.moveaxis(o, -1, 0).astype(np.float32), space)


def make_vector_env(
    env_id: str, num_envs: int, *, vectorization: Vectorization = "sync", gamma: float = 0.99
) -> gym.vector.VectorEnv:
    """`num_envs` wrapped copies of `env_id` in a sync or async vector env, auto-resetting in the same step."""
    family = require_family(env_id)
    fns = [_make_one(env_id, family, gamma) for _ in range(num_envs)]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if vectorization == "async":
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode)
    if vectorization == "sync":
        return gym.vector.SyncVectorEnv(fns, copy=False, autoreset_mode=mode)
    raise ConfigError("vectorization", f"got {vectorization!r}, expected sync or async")


def finished_episodes(infos: dict) -> list[tuple[float, int]]:
    """(return, length) of every episode that ended in this vector step, in sub-environment order."""
    final = infos.get("final_info")
    if not final or "episode" not in final:
        return []
    episode, mask = final["episode"], final["_episode"]
    return [(float(episode["r"][i]), int(episode["l"][i])) for i in np.flatnonzero(mask)]


def reset_seed(seed: int, update: int) -> int:
    """Seed of the environment reset before update `update`: the run's seed at 0, a derived one later."""
    if update == 0:
        return seed
    return int(np.random.SeedSequence([seed, update]).generate_state(1)[0])
