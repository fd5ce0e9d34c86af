"""A network's config: the class path and arguments that build it again from a checkpoint.

:class:`~lit_models.ImageClassifier` takes its network ready-made, so a checkpoint
holds the network's weights but not how to construct it. A network class decorated
with :func:`records_config` (every builder of :mod:`lit_models.models`) remembers the
arguments it was built with; the classifier saves them in its hyperparameters, and
:meth:`~lit_models.ImageClassifier.load_from_checkpoint` rebuilds the network from
them. The config has the ``class_path`` / ``init_args`` form of a ``LightningCLI``
config, holds only plain data (it loads with ``torch.load(weights_only=True)``), and
is only recorded when every argument is plain data (a backend *object*, say, is not).
"""

import functools
import inspect
import sys
from collections.abc import Mapping
from typing import Any, TypeVar

from torch import nn

NetworkClass = TypeVar("NetworkClass", bound=type[nn.Module])

_CONFIG_ATTRIBUTE = "_network_config"


def _plain(value: Any) -> Any:
    """``value`` as YAML-safe plain data (tuples as lists), or raise ``TypeError``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        return {key: _plain(item) for key, item in value.items()}
    raise TypeError(f"{type(value).__name__} is not plain data")


def records_config(
    cls: NetworkClass | None = None, *, rebuild_with: Mapping[str, Any] | None = None
) -> Any:
    """Class decorator: instances remember the arguments they were built with.

    Only instances of exactly ``cls`` record (a subclass with its own ``__init__``
    is not described by ``cls``'s arguments), and only when every argument is plain
    data (numbers, strings, ``None``, lists, tuples, str-keyed dicts).

    Used bare (``@records_config``) or with options
    (``@records_config(rebuild_with={"pretrained": False})``).

    Args:
        cls (type[nn.Module], optional): the network class; ``None`` when called with
            options only. Default: ``None``.
        rebuild_with (Mapping, optional): arguments recorded with these values whatever
            the network was built with: those whose effect the checkpoint's weights
            replace anyway, such as ``pretrained=False``, so that rebuilding a
            fine-tuned network to load its checkpoint downloads nothing.
            Default: ``None``.

    Returns:
        type[nn.Module]: ``cls``, its ``__init__`` wrapped (or, without ``cls``, the
        decorator that wraps it).

    Example:
        >>> @records_config
        ... class Tiny(nn.Module):
        ...     def __init__(self, num_classes: int, width: int = 8) -> None:
        ...         super().__init__()
        ...         self.fc = nn.Linear(width, num_classes)
        >>> network_config(Tiny(3))["init_args"]
        {'num_classes': 3, 'width': 8}
        >>> @records_config(rebuild_with={"pretrained": False})
        ... class Warm(nn.Module):
        ...     def __init__(self, num_classes: int, pretrained: bool = False) -> None:
        ...         super().__init__()
        ...         self.fc = nn.Linear(4, num_classes)
        >>> network_config(Warm(3, pretrained=True))["init_args"]
        {'num_classes': 3, 'pretrained': False}
    """
    if cls is None:
        return functools.partial(records_config, rebuild_with=rebuild_with)
    init = cls.__init__
    signature = inspect.signature(init)
    overrides = dict(rebuild_with or {})
    unknown = sorted(set(overrides) - set(list(signature.parameters)[1:]))
    if unknown:
        raise TypeError(f"rebuild_with names arguments {cls.__qualname__} does not take: {unknown}")

    @functools.wraps(init)
    def __init__(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if type(self) is not cls:
            return
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop(next(iter(signature.parameters)))
        arguments.update(overrides)
        try:
            init_args = _plain(arguments)
        except TypeError:
            return
        config = {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}
        setattr(self, _CONFIG_ATTRIBUTE, config)

    cls.__init__ = __init__
    return cls


def network_config(network: nn.Module) -> dict[str, Any] | None:
    """The config that rebuilds ``network``, or ``None`` when it recorded none.

    Args:
        network (nn.Module): a network, built by a class under :func:`records_config`
            or otherwise.

    Returns:
        dict or None: ``{"class_path": ..., "init_args": {...}}``.

    Example:
        >>> from lit_models.models import SmallResNet
        >>> config = network_config(SmallResNet(10, in_channels=1))
        >>> config["class_path"], config["init_args"]["in_channels"]
        ('lit_models.models.small_resnet.SmallResNet', 1)
        >>> network_config(nn.Linear(2, 2)) is None
        True
    """
    config = getattr(network, _CONFIG_ATTRIBUTE, None)
    return None if config is None else {**config, "init_args": dict(config["init_args"])}


def build_network(config: Mapping[str, Any]) -> nn.Module:
    """Build a network from a config of :func:`network_config`.

    As a checkpoint says which class to build, only classes whose module is already
    imported are built (as Lightning does for its own checkpoints): a checkpoint
    cannot make Python import new code.

    Args:
        config (Mapping): ``{"class_path": "module.Class", "init_args": {...}}``.

    Returns:
        nn.Module: a freshly initialised network.

    Example:
        >>> from lit_models.models import SmallResNet
        >>> network = build_network(network_config(SmallResNet(10, in_channels=1)))
        >>> type(network).__name__, network.stem[0].in_channels
        ('SmallResNet', 1)
    """
    class_path = config["class_path"]
    module_name, _, qualname = class_path.rpartition(".")
    module = sys.modules.get(module_name)
    if module is None:
        raise ValueError(
            f"network class {class_path!r} is not imported: import {module_name} before "
            f"loading (a checkpoint does not import code by itself)"
        )
    network_class = getattr(module, qualname, None)
    if not (isinstance(network_class, type) and issubclass(network_class, nn.Module)):
        raise ValueError(f"{class_path!r} is not an nn.Module class")
    return network_class(**config["init_args"])
