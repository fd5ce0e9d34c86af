"""Network configs: recorded by the builders, plain data only, built only from imported classes."""

import io

import pytest
import torch
from torch import nn

import sqrtlayers as sl
from lit_models.models import ISqrtCovResNet, SmallResNet, SoViT, ZCAResNet
from lit_models.network_config import build_network, network_config, records_config

from .conftest import timm_isqrt_cov, timm_so_vit

BUILDERS = {
    "small_resnet": lambda: SmallResNet(5, 1, widths=(8,), blocks=(1,), reduced_dim=4),
    "zca_resnet": lambda: ZCAResNet(5, 2, group_size=16, backend="ns"),
    "isqrt_cov_resnet": lambda: ISqrtCovResNet(5, arch="resnet18", small_input=True, reduced_dim=8),
    "so_vit": lambda: SoViT(5, 16, 1, patch_size=4, num_layers=1, num_heads=2, hidden_dim=8,
                            mlp_dim=16, reduced_dim=4),
    # Skipped without timm.
    "timm_so_vit": lambda: timm_so_vit(5, 1, 16),
    "timm_isqrt_cov": lambda: timm_isqrt_cov(5, 2, 16),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_builder_is_rebuilt_from_its_config(name):
    network = BUILDERS[name]()
    config = network_config(network)
    assert config["class_path"].endswith(type(network).__name__)
    rebuilt = build_network(config)
    assert type(rebuilt) is type(network)
    assert network_config(rebuilt) == config
    shapes = {k: v.shape for k, v in network.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes
    # Plain data only: it survives torch.load(weights_only=True).
    buffer = io.BytesIO()
    torch.save(config, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True) == config


def test_arguments_that_are_not_plain_data_record_nothing():
    network = SmallResNet(5, widths=(8,), blocks=(1,), reduced_dim=4, backend=sl.get_backend("ns"))
    assert network_config(network) is None


def test_a_subclass_with_its_own_arguments_records_nothing():
    class Wider(SmallResNet):
        def __init__(self, num_classes: int) -> None:
            super().__init__(num_classes, widths=(8,), blocks=(1,), reduced_dim=4)

    assert network_config(Wider(3)) is None
    assert network_config(nn.Linear(2, 2)) is None


def test_config_is_a_copy():
    network = BUILDERS["small_resnet"]()
    network_config(network)["init_args"]["num_classes"] = 99
    assert network_config(network)["init_args"]["num_classes"] == 5


@pytest.mark.parametrize(
    ("class_path", "message"),
    [
        ("not_imported_anywhere.Net", "network class 'not_imported_anywhere.Net' is not imported"),
        ("torch.nn.functional.relu", "'torch.nn.functional.relu' is not an nn.Module class"),
    ],
)
def test_build_network_refuses_what_it_must_not_build(class_path, message):
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        build_network({"class_path": class_path, "init_args": {}})


def test_decorated_class_records_defaults():
    @records_config
    class Tiny(nn.Module):
        def __init__(self, num_classes: int, widths: tuple[int, ...] = (4, 8)) -> None:
            super().__init__()
            self.fc = nn.Linear(widths[-1], num_classes)

    assert network_config(Tiny(num_classes=3))["init_args"] == {"num_classes": 3, "widths": [4, 8]}


def test_rebuild_with_overrides_the_recorded_arguments():
    @records_config(rebuild_with={"pretrained": False})
    class Warm(nn.Module):
        def __init__(self, num_classes: int, pretrained: bool = False) -> None:
            super().__init__()
            self.fc = nn.Linear(2, num_classes)

    assert network_config(Warm(3, pretrained=True))["init_args"] == {
        "num_classes": 3, "pretrained": False
    }

    expected = r"rebuild_with names arguments .*Cold does not take: \['pretrained'\]"
    with pytest.raises(TypeError, match=expected):
        @records_config(rebuild_with={"pretrained": False})
        class Cold(nn.Module):
            def __init__(self, num_classes: int) -> None:
                super().__init__()
