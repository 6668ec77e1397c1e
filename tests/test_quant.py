"""Quantization: error bounds per element, exact byte counts, packing, model conversion.

Bounds are derived from the formats, not measured: rounding to a grid of step s errs by at
most s/2; fp8 e4m3 has 3 mantissa bits, so a normal number errs by at most 2^-4 of itself
and a subnormal by half the subnormal step 2^-9.
"""

import pytest
import torch

from course_lib.kernels.quant import (
    FP8_MAX,
    LLAMA3_FP8_SCALE_UB,
    QuantLinear,
    linear_weight_bytes,
    pack_int4,
    quantize,
    quantize_fp8_rowwise,
    quantize_int4_groupwise,
    quantize_int8_rowwise,
    quantize_model,
    quantized_matmul,
    unpack_int4,
)

EPS = 1e-6  # float32 slack on the bounds


def weight(out=24, n_in=256, seed=0):
    w = torch.randn(out, n_in, generator=torch.Generator().manual_seed(seed))
    w[3] *= 40.0  # one channel with a much larger range: row-wise scales must isolate it
    w[5] = 0.0  # an all-zero row must not divide by zero
    return w


def test_int8_rowwise_error_at_most_half_a_step():
    w = weight()
    qt = quantize_int8_rowwise(w)
    expected_scale = w.abs().amax(dim=1, keepdim=True) / 127  # absmax / 127, per output channel
    torch.testing.assert_close(qt.scale[[0, 1, 2, 3, 4]], expected_scale[[0, 1, 2, 3, 4]])
    assert qt.data.dtype == torch.int8 and int(qt.data.abs().max()) <= 127
    err = (qt.dequantize() - w).abs()
    assert (err <= qt.scale / 2 + EPS).all()
    assert (qt.dequantize()[5] == 0).all()
    assert (err[0] < err[3].max()).all()  # the outlier row does not coarsen the others


def test_fp8_rowwise_error_within_format_bound():
    w = weight()
    qt = quantize_fp8_rowwise(w)
    assert qt.data.dtype == torch.float8_e4m3fn
    scaled = w / qt.scale  # what was cast: rows span [-448, 448]
    assert float(scaled.abs().amax()) == pytest.approx(FP8_MAX, rel=1e-6)
    err_in_codes = (qt.data.float() - scaled).abs()
    bound = torch.maximum(scaled.abs() * 2.0**-4, torch.full_like(scaled, 2.0**-10))
    assert (err_in_codes <= bound + EPS).all()


def test_fp8_scale_upper_bound_clamps_outliers():
    x = torch.tensor([[1.0, -2.0, 5000.0], [0.5, 0.25, -0.125]])
    qt = quantize_fp8_rowwise(x, scale_ub=LLAMA3_FP8_SCALE_UB)
    torch.testing.assert_close(qt.scale[:, 0], torch.tensor([1200.0, 0.5]) / FP8_MAX)
    assert float(qt.dequantize()[0, 2]) == pytest.approx(1200.0)  # saturated at the bound
    torch.testing.assert_close(qt.dequantize()[1], x[1])  # powers of two are exact


def test_int4_pack_roundtrip_and_layout():
    q = torch.arange(-8, 8, dtype=torch.int8).repeat(3, 2)  # (3, 32), every code
    packed = pack_int4(q)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 16)
    assert int(packed[0, 0]) == (-8 + 8) | ((-7 + 8) << 4)  # even column in the low nibble
    assert torch.equal(unpack_int4(packed), q)


@pytest.mark.parametrize("group_size", [32, 64, 128])
def test_int4_groupwise_error_and_bytes(group_size):
    w = weight()
    qt = quantize_int4_groupwise(w, group_size)
    out, n_in = w.shape
    groups = w.view(out, n_in // group_size, group_size)
    torch.testing.assert_close(
        qt.scale, groups.abs().amax(-1).clamp(min=torch.finfo(torch.float32).tiny) / 7
    )
    err = (qt.dequantize() - w).abs().view_as(groups)
    assert (err <= qt.scale[..., None] / 2 + EPS).all()
    assert qt.nbytes == out * n_in // 2 + out * (n_in // group_size) * 4  # nibbles + fp32 scales


def test_bytes_and_memory_saved_exactly():
    w = weight(out=64, n_in=512)
    fp32_bytes = 64 * 512 * 4
    assert quantize(w, "int8").nbytes == 64 * 512 + 64 * 4
    assert quantize(w, "fp8").nbytes == 64 * 512 + 64 * 4
    assert quantize(w, "int4", group_size=128).nbytes == 64 * 256 + 64 * 4 * 4
    assert fp32_bytes / quantize(w, "int8").nbytes == pytest.approx(4 * 512 / (512 + 4))


@pytest.mark.parametrize("scheme", ["int8", "fp8", "int4"])
def test_quantized_matmul_equals_matmul_with_dequantized_weight(scheme):
    w, x = weight(), torch.randn(5, 256, generator=torch.Generator().manual_seed(1))
    bias = torch.randn(24)
    qt = quantize(w, scheme, group_size=64)
    expected = x.double() @ qt.dequantize(torch.float64).T + bias.double()
    torch.testing.assert_close(
        quantized_matmul(x, qt, bias).double(), expected, atol=1e-4, rtol=1e-5
    )
    rel = (quantized_matmul(x, qt).double() - x.double() @ w.double().T).norm() / (
        x.double() @ w.double().T
    ).norm()
    assert rel < {"int8": 0.02, "fp8": 0.06, "int4": 0.2}[scheme]  # and close to the fp32 product


class Block(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.attn = torch.nn.ModuleDict(
            {"q_proj": torch.nn.Linear(d, d), "o_proj": torch.nn.Linear(d, d)}
        )
        self.mlp = torch.nn.ModuleDict(
            {"up": torch.nn.Linear(d, 2 * d), "down": torch.nn.Linear(2 * d, d)}
        )

    def forward(self, x):
        x = x + self.attn["o_proj"](torch.tanh(self.attn["q_proj"](x)))
        return x + self.mlp["down"](torch.relu(self.mlp["up"](x)))


class TinyDecoder(torch.nn.Module):
    def __init__(self, d=64, n_layers=4):
        super().__init__()
        self.layers = torch.nn.ModuleList(Block(d) for _ in range(n_layers))
        self.lm_head = torch.nn.Linear(d, 10, bias=False)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(x)


def test_quantize_model_llama3_recipe():
    torch.manual_seed(0)
    model, x = TinyDecoder(), torch.randn(3, 64)
    expected = model(x)
    before = linear_weight_bytes(model)
    report = quantize_model(
        model,
        "fp8",
        skip=("lm_head",),
        keep_first_last=True,
        keep_attention=True,
        act_scale_ub=LLAMA3_FP8_SCALE_UB,
    )
    quantized = {name for name, how in report.items() if how == "fp8"}
    assert quantized == {f"layers.{i}.mlp.{p}" for i in (1, 2) for p in ("up", "down")}
    assert isinstance(model.layers[1].mlp["up"], QuantLinear)
    assert (
        type(model.layers[0].mlp["up"]) is torch.nn.Linear
        and type(model.lm_head) is torch.nn.Linear
    )
    mlps = [model.layers[i].mlp[p] for i in (1, 2) for p in ("up", "down")]
    saved = sum(3 * m.in_features * m.out_features - 4 * m.out_features for m in mlps)
    assert (
        before - linear_weight_bytes(model) == saved
    )  # 4 -> 1 byte per weight, + fp32 scale per row
    torch.testing.assert_close(model(x), expected, atol=0.1, rtol=0.05)


@pytest.mark.parametrize("scheme", ["int8", "int4"])
def test_quantize_model_all_layers(scheme):
    torch.manual_seed(1)
    model, x = TinyDecoder(), torch.randn(3, 64)
    expected = model(x)
    report = quantize_model(model, scheme, group_size=32)
    assert set(report.values()) == {scheme} and len(report) == 4 * 4 + 1
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
    rel = (model(x) - expected).norm() / expected.norm()
    assert rel < {"int8": 0.02, "int4": 0.2}[scheme]


def test_errors():
    with pytest.raises(ValueError, match="group_size"):
        quantize_int4_groupwise(torch.zeros(4, 100), 64)
    with pytest.raises(ValueError, match="scheme"):
        quantize(torch.zeros(4, 64), "int3")
    with pytest.raises(ValueError, match="fp8"):
        quantized_matmul(
            torch.zeros(2, 64), quantize(torch.ones(4, 64), "int8"), act_scale_ub=1200.0
        )
