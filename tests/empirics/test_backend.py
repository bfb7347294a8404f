import pytest
import torch

from momentumlab.empirics.backend import generator, resolve_device, torch_ops


def test_auto_device_and_errors():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(resolve_device("auto")) == expected
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")


def test_generator_is_reproducible():
    a = torch.rand(3, generator=generator(5))
    b = torch.rand(3, generator=generator(5))
    assert torch.equal(a, b)


def test_batched_inner_reduces_parameter_axes_only():
    ops = torch_ops(batch_dims=1)
    x = torch.arange(12.0).reshape(2, 3, 2)
    assert ops.inner(x, x).shape == (2, 1, 1)
    assert torch.allclose(ops.inner(x, x).flatten(), (x * x).sum(dim=(1, 2)))


def test_where_on_python_scalars_keeps_float64():
    ops = torch_ops()
    out = ops.where(torch.tensor(True), 0.1, 1.0)
    assert out.dtype == torch.float64 and out.item() == 0.1
    w = torch.ones(3, dtype=torch.float32)
    assert (w * out).dtype == torch.float32
