import numpy as np
import pytest
import torch

from engine.config import Config, GridSpec, ModelSpec, preset
from engine.io import InputError
from engine.train.checkpoint import build_generator, load_checkpoint, save_checkpoint
from engine.train.normalize import Normalizer, fit_normalizer, to_absolute, to_anomaly
from tests.conftest import TINY_SPEC

SMALL_MODEL = ModelSpec(
    relu_channels=4, tanh_channels=2, n_stages=2, kernels=((3, 3, 3),), disc_channels=4, reduced_space=8,
    offset_patterns=2,
)  # fmt: skip


def _config() -> Config:
    return Config(grid=TINY_SPEC, model=SMALL_MODEL)


def test_checkpoint_round_trip_loads_with_weights_only(tmp_path, tiny_grid):
    torch.manual_seed(0)
    config = _config()
    gen = build_generator(config.model, config.grid.shape)
    n, shape = config.model.reduced_space + config.model.offset_patterns, config.grid.shape
    gen.reduced.set_basis(torch.randn(n, *shape), torch.rand(n) + 0.1, torch.rand(shape))  # saved as data
    normalizer = Normalizer(np.linspace(0.1, 1.0, tiny_grid.shape[0]).astype("f4"))
    path = tmp_path / "model.pt"
    save_checkpoint(path, gen, config, normalizer, tiny_grid, {"command": "test", "seed": 3})
    payload = torch.load(path, weights_only=True)  # must not need pickled classes
    assert payload["format"] == "deepda-checkpoint-1"
    ckpt = load_checkpoint(path)
    assert ckpt.config == config
    assert np.array_equal(ckpt.ocean, tiny_grid.ocean)
    assert np.allclose(ckpt.normalizer.scale, normalizer.scale)
    assert ckpt.provenance["command"] == "test" and "created" in ckpt.provenance
    for key, value in gen.state_dict().items():
        assert torch.equal(ckpt.generator.state_dict()[key], value)
    ckpt.check_grid(tiny_grid)


def test_checkpoint_from_before_the_innovation_inputs_loads_as_trained(tmp_path, tiny_grid):
    """Older checkpoints have no obs_inputs, reduced_space, offset or fine-tune setting: they
    load as the observation-only network without EOF layer they are, not as today's default."""
    old_model = {**SMALL_MODEL.__dict__, "obs_inputs": ("obs",), "reduced_space": 0, "offset_patterns": 0}
    legacy = Config(grid=TINY_SPEC, model=ModelSpec(**old_model))
    gen = build_generator(legacy.model, legacy.grid.shape)
    path = tmp_path / "old.pt"
    save_checkpoint(path, gen, legacy, Normalizer(np.ones(4, "f4")), tiny_grid, {})
    payload = torch.load(path, weights_only=True)
    model = payload["config"]["model"]
    del model["obs_inputs"], model["reduced_space"], model["offset_patterns"]
    del payload["config"]["train"]["offset_share"], payload["config"]["train"]["finetune_steps"]
    torch.save(payload, path)
    ckpt = load_checkpoint(path)
    assert ckpt.config.model.obs_inputs == ("obs",) and ckpt.config.train.offset_share == 0.0
    assert ckpt.generator.obs_stages[0].conv.in_channels == 1
    assert ckpt.config.model.reduced_space == 0 and ckpt.generator.reduced is None
    assert ckpt.config.model.offset_patterns == 0 and ckpt.config.train.finetune_steps == 0
    assert Config().model.obs_inputs == ("obs", "innovation", "error")


def test_checkpoint_for_another_grid_is_refused(tmp_path, tiny_grid, coarse_grid):
    path = tmp_path / "model.pt"
    save_checkpoint(
        path, build_generator(SMALL_MODEL, TINY_SPEC.shape), _config(), Normalizer(np.ones(4, "f4")), tiny_grid, {}
    )
    with pytest.raises(InputError, match="trained on the tiny grid"):
        load_checkpoint(path).check_grid(coarse_grid)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_corrupt_or_foreign_checkpoint_is_one_clear_line(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_checkpoint(path)
    assert "bad.pt" in str(err.value) and "\n" not in str(err.value)


def test_foreign_torch_file_and_missing_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(InputError, match="not a deepda-checkpoint-1 file"):
        load_checkpoint(path)
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_normalizer_scales_levels_and_anomalies_round_trip(tiny_grid):
    rng = np.random.default_rng(0)
    levels = np.array([2.0, 1.0, 0.5, 0.1])
    anomalies = rng.normal(size=(50,) + tiny_grid.shape) * levels[None, :, None, None]
    normalizer = fit_normalizer(anomalies.astype("f4"), tiny_grid.ocean)
    assert np.allclose(normalizer.scale, levels, rtol=0.1)
    encoded = normalizer.encode(anomalies[0])
    assert np.allclose(normalizer.decode(encoded), anomalies[0], atol=1e-5)
    assert Normalizer.from_dict(normalizer.to_dict()).scale.tolist() == normalizer.scale.tolist()
    doy = np.array([10.0, 200.0])
    absolute = to_absolute(anomalies[:2].astype("f4"), tiny_grid, doy)
    assert np.isnan(absolute[:, ~tiny_grid.ocean]).all()
    back = to_anomaly(absolute, tiny_grid, doy)
    ocean = np.broadcast_to(tiny_grid.ocean, back.shape)
    assert np.allclose(back[ocean], anomalies[:2][ocean], atol=1e-4)


def test_presets_build_generators():
    for name in ("coarse", "paper"):
        assert build_generator(preset(name).model, preset(name).grid.shape) is not None
    assert GridSpec().name == "coarse"
