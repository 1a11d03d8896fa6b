"""Learning from observations without a truth: profile roles, the fine-tune CLI, its resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from engine import cli
from engine.config import LearnSpec
from engine.train.checkpoint import load_checkpoint
from engine.train.from_observations import INPUT, TARGET, VALIDATION, profile_roles


def _table(n_profiles: int, levels: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = n_profiles * levels
    return pd.DataFrame(
        {
            "time": np.repeat(np.datetime64("2010-01-01") + np.arange(n_profiles).astype("timedelta64[h]"), levels),
            "lat": np.repeat(rng.uniform(-60, 60, n_profiles), levels),
            "lon": np.repeat(rng.uniform(0, 360, n_profiles), levels),
            "platform": pd.Categorical(["argo"] * rows),
        }
    )


def test_profile_roles_keep_profiles_whole_validation_fixed_and_targets_redrawn():
    table, spec = _table(4000), LearnSpec(target_share=0.2, validation_share=0.15)
    first, second = profile_roles(table, spec, 1), profile_roles(table, spec, 2)
    per_profile = first.reshape(-1, 3)
    assert (per_profile == per_profile[:, :1]).all()  # every level of a profile shares its role
    assert (first == VALIDATION).mean() == pytest.approx(0.15, abs=0.02)
    assert (first == TARGET).mean() == pytest.approx(0.2, abs=0.02)
    assert ((first == VALIDATION) == (second == VALIDATION)).all()  # the same validation profiles every pass
    changed = ((first == TARGET) != (second == TARGET)).mean()
    assert changed > 0.2  # fresh targets each pass
    assert set(np.unique(first)) == {INPUT, TARGET, VALIDATION}


@pytest.fixture(scope="module")
def tiny_model_and_obs(tmp_path_factory, tiny_config_file):
    folder = tmp_path_factory.mktemp("learn")
    model, obs = folder / "model.pt", folder / "obs.nc"
    assert cli.main(["train", "--config", str(tiny_config_file), "--out", str(model), "--steps", "2"]) == 0
    assert cli.main(["observe", "--config", str(tiny_config_file), "--period", "2010-2010", "--out", str(obs)]) == 0
    return model, obs


def test_learning_from_observations_keeps_the_best_weights_and_says_where_they_came_from(
    tmp_path, tiny_model_and_obs, capsys
):
    model, obs = tiny_model_and_obs
    settings = tmp_path / "learn.toml"
    settings.write_text("[learn]\npasses = 2\nlearning_rate = 1e-3\npatience = 5\n")
    out = tmp_path / "tuned.pt"
    argv = ["train", "--init", str(model), "--obs", str(obs), "--config", str(settings), "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 passes" in printed and "RMSE at the validation profiles" in printed
    tuned, start = load_checkpoint(out), load_checkpoint(model)
    payload = torch.load(out, map_location="cpu", weights_only=True)  # loads with weights_only
    assert payload["training"] == {}  # a finished fine-tune keeps no optimiser state
    learned = tuned.provenance["learned_from_observations"]
    assert learned["file"] == str(obs) and learned["period"] == "2010-2010"
    log_rmse = tuned.provenance["validation_rmse_obs_degC"]
    assert np.isfinite(log_rmse) and tuned.provenance["passes"] == 2
    changed = any(
        not torch.equal(a, b)
        for a, b in zip(tuned.generator.state_dict().values(), start.generator.state_dict().values(), strict=True)
    )
    first_rmse = float(printed.split("profiles ")[1].split(" ->")[0])
    assert log_rmse <= first_rmse  # the starting weights are kept unless beaten
    assert changed == (log_rmse < first_rmse)


def test_an_interrupted_fine_tune_resumes_and_obs_needs_a_model(tmp_path, tiny_model_and_obs, capsys, monkeypatch):
    from engine.train import from_observations

    model, obs = tiny_model_and_obs
    settings = tmp_path / "two.toml"
    settings.write_text("[learn]\npasses = 2\npatience = 5\n")
    out = tmp_path / "tuned.pt"
    argv = ["train", "--obs", str(obs), "--config", str(settings), "--out", str(out)]
    original = from_observations.ObservationLearner.train_pass

    def interrupted_on_the_second(self, index):
        if index == 2:
            raise KeyboardInterrupt
        return original(self, index)

    monkeypatch.setattr(from_observations.ObservationLearner, "train_pass", interrupted_on_the_second)
    with pytest.raises(SystemExit) as stopped:
        cli.main([*argv[:1], "--init", str(model), *argv[1:]])
    assert stopped.value.code == 130
    assert "--resume" in capsys.readouterr().err
    saved = load_checkpoint(out)
    assert saved.training["learn_passes"] == 1 and "latest_generator" in saved.training
    monkeypatch.setattr(from_observations.ObservationLearner, "train_pass", original)
    assert cli.main([*argv, "--resume"]) == 0
    done = load_checkpoint(out)
    assert done.provenance["passes"] == 2 and done.training == {}
    assert cli.main([*argv, "--resume"]) == 2
    assert "finished" in capsys.readouterr().err  # a finished fine-tune is not resumed
    assert cli.main(["train", "--obs", str(obs), "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--init" in err and not (tmp_path / "x.pt").exists()
