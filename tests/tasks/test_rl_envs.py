"""RL environments: families, missing-package messages, same-step auto-reset, episode statistics, Atari wrappers."""

import importlib

import gymnasium as gym
import numpy as np
import pytest

from repdyn.bench.errors import ConfigError
from repdyn.tasks import rl_envs
from repdyn.tasks.rl_envs import (
    EpisodicLife,
    FireOnReset,
    env_family,
    finished_episodes,
    make_vector_env,
    require_family,
    reset_seed,
)


def test_families_from_ids():
    assert env_family("CartPole-v1") == "classic"
    assert env_family("Acrobot-v1") == "classic"
    assert env_family("MinAtar/Breakout-v1") == "minatar"
    assert env_family("ALE/Phoenix-v5") == "atari"
    assert env_family("BreakoutNoFrameskip-v4") == "atari"
    assert env_family("HalfCheetah-v5") == "mujoco"


@pytest.mark.parametrize(("env_id", "package"), [("MinAtar/Breakout-v1", "minatar"), ("ALE/Pong-v5", "ale-py"),
                                                  ("Hopper-v4", "mujoco")])
def test_missing_optional_package_names_it(monkeypatch, env_id, package):
    real = importlib.import_module

    def no_optional(name, *args):
        if name.split(".")[0] in ("minatar", "ale_py", "mujoco", "cv2"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(rl_envs.importlib, "import_module", no_optional)
    with pytest.raises(ConfigError, match=f"env_id: .*needs the `{package}` package \\(pip install {package}\\)"):
        require_family(env_id)


def test_atari_also_needs_opencv(monkeypatch):
    real = importlib.import_module

    def no_cv2(name, *args):
        if name == "cv2":
            raise ImportError(name)
        if name == "ale_py":
            return gym  # stands in for an installed ale-py: only cv2 is missing
        return real(name, *args)

    monkeypatch.setattr(rl_envs.importlib, "import_module", no_cv2)
    with pytest.raises(ConfigError, match=r"needs the `opencv-python` package"):
        require_family("ALE/Pong-v5")


def test_unknown_id_lists_classic_control():
    with pytest.raises(ConfigError, match="unknown environment 'CartPol-v1'; classic control ids: .*CartPole-v1"):
        require_family("CartPol-v1")


def test_same_step_autoreset_and_episode_statistics():
    envs = make_vector_env("CartPole-v1", 2)
    try:
        obs, _ = envs.reset(seed=3)
        rewards, episodes = np.zeros(2), []
        for _ in range(200):  # always pushing left ends every episode within a few dozen steps
            obs, reward, terminated, truncated, infos = envs.step(np.zeros(2, dtype=np.int64))
            rewards += reward
            done = terminated | truncated
            for i, (ret, length) in zip(np.flatnonzero(done), finished_episodes(infos), strict=True):
                episodes.append((ret, length, rewards[i]))
                # The returned observation is already the next episode's first: CartPole starts within +-0.05.
                assert np.all(np.abs(obs[i]) <= 0.05)
                rewards[i] = 0
    finally:
        envs.close()
    assert len(episodes) >= 4
    for ret, length, summed in episodes:
        assert ret == length == summed  # CartPole pays 1 per step


def test_sync_and_async_give_the_same_trajectories():
    def rollout(vectorization):
        envs = make_vector_env("Acrobot-v1", 2, vectorization=vectorization)
        try:
            first, _ = envs.reset(seed=7)
            rng = np.random.default_rng(0)
            out = [np.copy(first)]
            for _ in range(5):
                out.append(np.copy(envs.step(rng.integers(0, 3, 2))[0]))
            return np.stack(out)
        finally:
            envs.close()

    assert np.array_equal(rollout("sync"), rollout("async"))


def test_reset_seeds():
    assert reset_seed(5, 0) == 5
    assert reset_seed(5, 100) == reset_seed(5, 100) != reset_seed(5, 200)
    assert reset_seed(5, 100) != reset_seed(6, 100)


class FakeAtari(gym.Env):
    """Two lives, FIRE-to-start; a step with action 3 loses a life; no life left ends the game."""

    observation_space = gym.spaces.Discrete(100)
    action_space = gym.spaces.Discrete(4)

    def __init__(self):
        self.ale = self
        self.resets, self.actions = 0, []

    def lives(self):
        return self._lives

    def get_action_meanings(self):
        return ["NOOP", "FIRE", "RIGHT", "LEFT"]

    def reset(self, *, seed=None, options=None):
        self.resets += 1
        self._lives = 2
        return 0, {}

    def step(self, action):
        self.actions.append(action)
        if action == 3:
            self._lives -= 1
        return len(self.actions), 1.0, self._lives == 0, False, {}


def test_episodic_life_ends_on_life_loss_but_resets_only_at_game_over():
    base = FakeAtari()
    env = EpisodicLife(base)
    env.reset(seed=0)
    assert env.step(2)[2] is False
    assert env.step(3)[2] is True  # life lost: terminated for learning
    env.reset()
    assert base.resets == 1 and base.actions[-1] == 0  # no real reset: a no-op step continues the game
    assert env.step(3)[2] is True  # last life: the game is over
    env.reset()
    assert base.resets == 2
    env.step(3)
    env.reset(seed=1)  # an explicit seed always resets the game
    assert base.resets == 3


def test_fire_on_reset_presses_fire_then_two():
    base = FakeAtari()
    FireOnReset(base).reset(seed=0)
    assert base.actions == [1, 2]
