"""Tests of engine.nn: partial convolution, generator, discriminator, losses (CPU, seeded)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.nn import (
    Discriminator,
    Generator,
    PartialConv3d,
    count_parameters,
    discriminator_loss,
    generator_loss,
    masked_mse,
    same_pad,
)
from engine.nn.generator import twin_activation

SMALL_G = {"relu_channels": 4, "tanh_channels": 2, "n_stages": 3}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def reference_partial_conv(x, mask, weight, bias, circular_lon=True):
    """Direct float64 partial convolution by explicit loops over every window."""
    n, _, depth, height, width = x.shape
    c_out, _, kd, kh, kw = weight.shape
    before = [(k - 1) // 2 for k in (kd, kh, kw)]  # even kernels: extra cell after
    volume = kd * kh * kw
    out = torch.zeros(n, c_out, depth, height, width, dtype=torch.float64)
    new_mask = torch.zeros(n, 1, depth, height, width, dtype=torch.float64)
    for b in range(n):
        for d in range(depth):
            for h in range(height):
                for w in range(width):
                    acc = torch.zeros(c_out, dtype=torch.float64)
                    count = 0
                    for i in range(kd):
                        for j in range(kh):
                            for k in range(kw):
                                dd, hh, ww = d + i - before[0], h + j - before[1], w + k - before[2]
                                if not (0 <= dd < depth and 0 <= hh < height):
                                    continue
                                if circular_lon:
                                    ww %= width
                                elif not 0 <= ww < width:
                                    continue
                                if mask[b, 0, dd, hh, ww] == 0:
                                    continue
                                count += 1
                                acc += weight[:, :, i, j, k] @ x[b, :, dd, hh, ww]
                    if count:
                        out[b, :, d, h, w] = acc * volume / count + bias
                        new_mask[b, 0, d, h, w] = 1.0
    return out, new_mask


def sparse_mask(shape, p=0.25):
    """Random 0/1 mask with a large empty block, so some windows see nothing at all."""
    mask = (torch.rand(shape) < p).double()
    mask[0, :, :, :3, :] = 0.0
    return mask


@pytest.mark.parametrize(
    ("kernel", "circular"),
    [((2, 3, 4), True), ((3, 3, 3), True), ((1, 2, 7), True), ((2, 3, 4), False)],
)
def test_partial_conv_matches_reference(kernel, circular):
    x = torch.randn(2, 2, 3, 6, 5, dtype=torch.float64)
    mask = sparse_mask((2, 1, 3, 6, 5))
    layer = PartialConv3d(2, 3, kernel, circular_lon=circular)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))  # nonzero bias: must vanish on holes
    out, new_mask = layer(x.float(), mask.float())
    weight, bias = layer.weight.detach().double(), layer.bias.detach().double()
    ref, ref_mask = reference_partial_conv(x, mask, weight, bias, circular)
    assert (ref_mask == 0).any() and (ref_mask == 1).any()  # both cases are exercised
    assert out.dtype == torch.float32 and out.shape == ref.shape
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(new_mask.double(), ref_mask)
    assert torch.all(out[(new_mask == 0).expand_as(out)] == 0)  # exactly zero, bias too


def test_partial_conv_ignores_unobserved_values_and_is_periodic():
    layer = PartialConv3d(1, 2, (3, 3, 4))
    x = torch.randn(1, 1, 4, 5, 8)
    mask = (torch.rand(1, 1, 4, 5, 8) < 0.4).float()
    out, new_mask = layer(x, mask)
    garbage = x + 100.0 * (1 - mask) * torch.randn_like(x)
    assert torch.equal(layer(garbage, mask)[0], out)
    # Periodic in longitude: rolling the input rolls the output.
    rolled, rolled_mask = layer(x.roll(3, -1), mask.roll(3, -1))
    torch.testing.assert_close(rolled, out.roll(3, -1))
    assert torch.equal(rolled_mask, new_mask.roll(3, -1))
    # A full mask is an ordinary convolution away from the zero-padded depth/lat edges.
    full, _ = layer(x, torch.ones_like(mask))
    plain = F.conv3d(same_pad(x, (3, 3, 4)), layer.weight, layer.bias)
    torch.testing.assert_close(full[:, :, 1:-1, 1:-1], plain[:, :, 1:-1, 1:-1])


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("kernel", [(4, 6, 8), (3, 3, 3), (1, 2, 5)])
def test_same_pad_matches_torch_same_when_not_periodic(kernel):
    x = torch.randn(1, 2, 5, 7, 9)
    w = torch.randn(3, 2, *kernel)
    padded = same_pad(x, kernel, circular_lon=False)
    torch.testing.assert_close(F.conv3d(padded, w), F.conv3d(x, w, padding="same"))
    # Periodic padding: the cells added in longitude are copies from the other side.
    circ = same_pad(x, kernel)
    (d0, _), (h0, _), (w0, w1) = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel]
    inner = circ[:, :, d0 : d0 + 5, h0 : h0 + 7]
    assert inner.shape[-1] == 9 + w0 + w1
    torch.testing.assert_close(inner[..., w0 : w0 + 9], x)
    torch.testing.assert_close(inner[..., :w0], x[..., 9 - w0 :])
    torch.testing.assert_close(inner[..., w0 + 9 :], x[..., :w1])
    assert torch.all(circ[:, :, :d0] == 0) and torch.all(circ[:, :, :, :h0] == 0)


def make_inputs(n=2, depth=5, height=9, width=19, p_obs=0.1, shared_ocean=True):
    background = torch.randn(n, 1, depth, height, width)
    obs = torch.randn(n, 1, depth, height, width)
    obs_mask = (torch.rand(n, 1, depth, height, width) < p_obs).float()
    ocean = (torch.rand(1 if shared_ocean else n, 1, depth, height, width) < 0.7).float()
    return background, obs, obs_mask, ocean


def test_generator_architecture_follows_the_paper():
    gen = Generator()  # kernels given as (lon, lat, depth): 8x6x4 is 8 wide in longitude
    kernels = [stage.conv.kernel_size for stage in gen.bg_stages]
    assert kernels == [(4, 6, 8), (3, 5, 5), (3, 3, 3)]
    assert [stage.conv.kernel_size for stage in gen.obs_stages] == kernels
    assert [stage.conv.out_channels for stage in gen.obs_stages] == [24, 48, 96]
    assert [stage.conv.out_channels for stage in gen.bg_stages] == [24, 48, 96]
    # Fewer kernels than stages: the last one is repeated.
    gen = Generator(n_stages=3, kernels=((5, 3, 1),))
    assert [stage.conv.kernel_size for stage in gen.bg_stages] == [(1, 3, 5)] * 3
    # Twin paths: ReLU on the first channels, tanh on the rest.
    y = torch.linspace(-3, 3, 12).view(1, 2, 1, 1, 6)
    torch.testing.assert_close(twin_activation(y, 1), torch.cat([y[:, :1].clamp(min=0), y[:, 1:].tanh()], 1))


def test_generator_shape_and_land_for_odd_sizes():
    gen = Generator(**SMALL_G)
    bg, obs, obs_mask, ocean = make_inputs()
    out = gen(bg, obs, obs_mask, ocean)
    assert out.shape == bg.shape and torch.isfinite(out).all()
    land = (ocean == 0).expand_as(out)
    assert torch.all(out[land] == 0)
    assert (out[~land] != 0).all()
    # Full-size default architecture on a non-shared (per-sample) ocean mask.
    bg, obs, obs_mask, ocean = make_inputs(n=1, depth=3, height=7, width=10, shared_ocean=False)
    out = Generator()(bg, obs, obs_mask, ocean)
    assert out.shape == bg.shape and torch.all(out[(ocean == 0)] == 0)


def test_generator_ignores_unobserved_obs_values():
    gen = Generator(**SMALL_G).eval()
    bg, obs, obs_mask, ocean = make_inputs()
    with torch.no_grad():
        none = torch.zeros_like(obs_mask)
        ref = gen(bg, obs, none, ocean)
        assert torch.equal(gen(bg, 50 * torch.randn_like(obs), none, ocean), ref)
        # Partial mask: values at unobserved cells don't matter, observed ones do.
        ref = gen(bg, obs, obs_mask, ocean)
        changed = obs + 50 * (1 - obs_mask) * torch.randn_like(obs)
        assert torch.equal(gen(bg, changed, obs_mask, ocean), ref)
        moved = gen(bg, obs + obs_mask, obs_mask, ocean)
        assert (moved - ref).abs().max() > 1e-6


FULL_INPUTS = ("obs", "innovation", "error")


def test_generator_with_innovation_and_error_inputs_uses_them_only_where_observed():
    gen = Generator(**SMALL_G, obs_inputs=FULL_INPUTS).eval()
    assert gen.obs_stages[0].conv.in_channels == 3
    bg, obs, obs_mask, ocean = make_inputs(p_obs=0.2)
    error = torch.rand_like(obs) + 0.1
    with torch.no_grad():
        ref = gen(bg, obs, obs_mask, ocean, error)
        unseen = 1 - obs_mask
        # values and errors at unobserved cells are not data
        noisy = gen(bg, obs + 50 * unseen * torch.randn_like(obs), obs_mask, ocean, error + 9 * unseen)
        assert torch.equal(noisy, ref)
        # a larger stated error at observed cells changes the analysis
        doubted = gen(bg, obs, obs_mask, ocean, error + obs_mask)
        assert (doubted - ref).abs().max() > 1e-6
        # with no observation at all the innovation channel is empty too: the analysis
        # depends on the background only (the background branch still sees it)
        none = torch.zeros_like(obs_mask)
        assert torch.equal(gen(bg, obs, none, ocean, error), gen(bg, -obs, none, ocean, 2 * error))


def test_generator_obs_inputs_are_checked():
    with pytest.raises(ValueError, match="subset"):
        Generator(**SMALL_G, obs_inputs=("innovation", "obs"))
    with pytest.raises(ValueError, match="subset"):
        Generator(**SMALL_G, obs_inputs=())
    gen = Generator(**SMALL_G, obs_inputs=FULL_INPUTS)
    bg, obs, obs_mask, ocean = make_inputs()
    with pytest.raises(ValueError, match="obs_error"):
        gen(bg, obs, obs_mask, ocean)


def test_innovation_input_makes_the_observation_increment_learnable_linearly():
    """With the innovation channel, an increment proportional to (obs - background) at the
    observed cells is representable by the observation branch alone: a generator trained a
    few hundred steps on that target fits it far better than one that sees the obs only."""
    losses = {}
    for inputs in (("obs",), ("obs", "innovation")):
        torch.manual_seed(1)
        gen = Generator(relu_channels=4, tanh_channels=2, n_stages=1, kernels=((1, 1, 1),), obs_inputs=inputs)
        opt = torch.optim.Adam(gen.parameters(), lr=3e-3)
        for _ in range(150):
            bg, obs, obs_mask, ocean = make_inputs(n=4, depth=2, height=8, width=8, p_obs=0.3)
            ocean = torch.ones_like(ocean)
            target = bg + 0.7 * (obs - bg) * obs_mask
            loss = F.mse_loss(gen(bg, obs, obs_mask, ocean), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses[inputs] = loss.item()
    assert losses[("obs", "innovation")] < 0.5 * losses[("obs",)]


def test_generator_is_periodic_in_longitude():
    gen = Generator(**SMALL_G).eval()
    bg, obs, obs_mask, ocean = make_inputs(n=1, depth=3, height=8, width=16, p_obs=0.3)
    with torch.no_grad():
        out = gen(bg, obs, obs_mask, ocean)
        shift = 8  # a multiple of 2**n_stages commutes with the pooling
        rolled = gen(*(t.roll(shift, -1) for t in (bg, obs, obs_mask, ocean)))
    torch.testing.assert_close(rolled, out.roll(shift, -1), rtol=1e-4, atol=1e-5)


def assert_all_grads(model):
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, name


def test_gradients_reach_every_parameter():
    gen, disc = Generator(**SMALL_G), Discriminator(channels=4)
    bg, obs, obs_mask, ocean = make_inputs(p_obs=0.3)
    truth = torch.randn_like(bg)
    analysis = gen(bg, obs, obs_mask, ocean)
    total, _, _ = generator_loss(analysis, truth, disc(analysis - bg, ocean), ocean)
    total.backward()
    assert_all_grads(gen)
    disc.zero_grad()
    loss = discriminator_loss(disc(truth - bg, ocean), disc((analysis - bg).detach(), ocean))
    loss.backward()
    assert_all_grads(disc)


def test_discriminator_shape_and_ignores_land():
    disc = Discriminator(channels=4)
    _, _, _, ocean = make_inputs(n=3)
    tendency = torch.randn(3, 1, 5, 9, 19)
    logits = disc(tendency, ocean)
    assert logits.shape == (3,)
    noisy = tendency + 10 * (1 - ocean) * torch.randn_like(tendency)
    assert torch.equal(disc(noisy, ocean), logits)
    assert not torch.equal(disc(tendency + ocean, ocean), logits)


def test_count_parameters_defaults():
    conv = torch.nn.Conv3d(2, 3, 1)
    assert count_parameters(conv) == 2 * 3 + 3
    assert count_parameters(Generator()) > count_parameters(Generator(**SMALL_G)) > 0


def test_losses_match_hand_computation():
    pred = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 1, 1, 4)
    target = torch.tensor([0.0, 0.0, 1.0, 10.0]).view(1, 1, 1, 1, 4)
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0]).view(1, 1, 1, 1, 4)
    assert masked_mse(pred, target, mask).item() == pytest.approx((1 + 4 + 4) / 3)
    # Broadcast mask over a batch of 2: second sample errors are 2 everywhere.
    pred2 = torch.cat([pred, target + 2])
    assert masked_mse(pred2, torch.cat([target, target]), mask).item() == pytest.approx((9 + 12) / 6)
    assert masked_mse(pred, target, torch.zeros_like(mask)).item() == 0.0

    fake = torch.tensor([0.0, 2.0])
    real = torch.tensor([1.0, -1.0])
    total, mse, adv = generator_loss(pred, target, fake, mask)
    adv_hand = (math.log(2) + math.log(1 + math.exp(-2))) / 2  # -log(sigmoid(z)), mean
    assert mse.item() == pytest.approx(3.0)
    assert adv.item() == pytest.approx(adv_hand)
    assert total.item() == pytest.approx(3.0 + 0.1 * adv_hand)
    total, _, _ = generator_loss(pred, target, fake, mask, mse_weight=2.0, adversarial_weight=0.0)
    assert total.item() == pytest.approx(6.0)
    total, mse, adv = generator_loss(pred, target, None, mask)  # no critic: the MSE alone
    assert total.item() == pytest.approx(3.0) and adv.item() == 0.0

    bce_real = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1))) / 2
    bce_fake = (math.log(2) + math.log(1 + math.exp(2))) / 2  # -log(1 - sigmoid(z)), mean
    assert discriminator_loss(real, fake).item() == pytest.approx(0.5 * (bce_real + bce_fake))
    assert discriminator_loss(real, fake, weight=1.0).item() == pytest.approx(bce_real + bce_fake)


def test_wrap_lon_pads_periodically_within_and_beyond_the_axis():
    from engine.nn.pconv import wrap_lon

    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 1, 3, 5)
    for before, after in [(1, 2), (2, 0), (0, 3), (5, 5), (7, 9)]:  # the last two reach past the axis
        expected = x[..., [(k % 5) for k in range(-before, 5 + after)]]
        assert torch.equal(wrap_lon(x, before, after), expected), (before, after)
    assert wrap_lon(x, 0, 0) is x
