"""Sequence feature extractors for SB3 / sb3-contrib policies (``extractor=lstm|lstm_gru|tcn``).

Each is a :class:`~stable_baselines3.common.torch_layers.BaseFeaturesExtractor`: SB3 builds it as
``features_extractor_class(observation_space, **features_extractor_kwargs)`` (both come from
``conf/extractor/<name>.yaml`` through
:meth:`~cryptotrade.agents.policy.PolicySpec.policy_kwargs`). The
observation layout is read from the env's :class:`~cryptotrade.env.spaces.WindowedBox`, never
from the config, because the feature count depends on the data:

| observation part | shape | goes through |
|---|---|---|
| feature rows ``t - window + 1 .. t`` | ``(window, num_features)`` | ``self.encoder`` -> ``(D,)`` |
| account features | ``(account_size,)`` | passed through unchanged |

The output is ``[encoder(rows), account]`` (``features_dim = D + account_size``, ``D`` found by a
dry forward pass), which the policy/value heads (``net_arch``) take. The encoder is the part that
``task=pretrain`` trains and ``extractor.pretrained`` loads (:mod:`cryptotrade.agents.pretrain`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from cryptotrade.env.spaces import WindowedBox
from cryptotrade.errors import ConfigError, ModelError

TCN_NORMS = ("weight", "layer", "none")


def observation_layout(space: gym.Space, extractor: str) -> tuple[int, int, int]:
    """``(window, num_features, account_size)`` of a :class:`WindowedBox`, or a clear error."""
    if not isinstance(space, WindowedBox):
        raise ModelError(
            f"{extractor} needs the env's WindowedBox observation space (window x features, then "
            f"account features) but got {space!r}; build the env with cryptotrade.env.EnvFactory "
            "or choose extractor=mlp"
        )
    return space.layout


class SequenceExtractor(BaseFeaturesExtractor):
    """Encode the feature window with ``encoder``; append the account features.

    Args:
        observation_space: The env's :class:`WindowedBox`.
        encoder: Maps ``(batch, window, num_features)`` to ``(batch, D)``.
        hyperparameters: The subclass's constructor arguments (stored with pretrained weights).
    """

    def __init__(
        self, observation_space: gym.Space, encoder: nn.Module, hyperparameters: dict[str, Any]
    ) -> None:
        window, num_features, account_size = observation_layout(
            observation_space, type(self).__name__
        )
        encoder.eval()  # dry pass without dropout (and without drawing from torch's RNG)
        with th.no_grad():
            size = int(encoder(th.zeros(1, window, num_features)).shape[-1])
        encoder.train()
        super().__init__(observation_space, size + account_size)
        self.encoder = encoder
        self.window, self.num_features, self.account_size = window, num_features, account_size
        self.encoding_size = size
        self.hyperparameters = hyperparameters

    @classmethod
    def check_window(cls, window: int, **hyperparameters: Any) -> None:
        """Raise :class:`ConfigError` if these settings cannot cover ``window`` bars.

        Called before any data is loaded (``window`` is ``env.window``); the default accepts any.
        """

    def sequence(self, observations: th.Tensor) -> th.Tensor:
        """The feature rows of flat observations as ``(batch, window, num_features)``."""
        return observations[:, : self.window * self.num_features].reshape(
            -1, self.window, self.num_features
        )

    def forward(self, observations: th.Tensor) -> th.Tensor:
        account = observations[:, self.window * self.num_features :]
        return th.cat([self.encoder(self.sequence(observations)), account], dim=1)


# ------------------------------------------------------------------------------------ recurrent
class _LastStep(nn.Module):
    """Run stacked recurrent layers over the window and return the last step's output."""

    def __init__(self, *layers: nn.RNNBase, dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: th.Tensor) -> th.Tensor:
        for i, layer in enumerate(self.layers):
            if i:
                x = self.dropout(x)
            x, _ = layer(x)
        return x[:, -1]


class LSTMExtractor(SequenceExtractor):
    """A stacked LSTM over the window; its last step's output encodes it.

    Args:
        observation_space: The env's :class:`WindowedBox`.
        hidden_size: LSTM units (the encoding size).
        num_layers: Stacked LSTM layers.
        dropout: Dropout between stacked layers (``num_layers > 1``).
    """

    def __init__(
        self,
        observation_space: gym.Space,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        _, num_features, _ = observation_layout(observation_space, type(self).__name__)
        _check_positive(hidden_size=hidden_size, num_layers=num_layers)
        _check_dropout(dropout)
        lstm = nn.LSTM(
            num_features,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        hyper = {"hidden_size": hidden_size, "num_layers": num_layers, "dropout": dropout}
        super().__init__(observation_space, _LastStep(lstm), hyper)


class LSTMGRUExtractor(SequenceExtractor):
    """Stacked LSTM layers feeding stacked GRU layers (the GA+RL system's network).

    Args:
        observation_space: The env's :class:`WindowedBox`.
        lstm_hidden_size: LSTM units.
        lstm_layers: Stacked LSTM layers.
        gru_hidden_size: GRU units (the encoding size).
        gru_layers: Stacked GRU layers.
        dropout: Dropout between stacked layers and between the LSTM and the GRU.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        lstm_hidden_size: int = 64,
        lstm_layers: int = 1,
        gru_hidden_size: int = 64,
        gru_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        _, num_features, _ = observation_layout(observation_space, type(self).__name__)
        _check_positive(
            lstm_hidden_size=lstm_hidden_size,
            lstm_layers=lstm_layers,
            gru_hidden_size=gru_hidden_size,
            gru_layers=gru_layers,
        )
        _check_dropout(dropout)
        lstm = nn.LSTM(
            num_features,
            lstm_hidden_size,
            lstm_layers,
            batch_first=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        gru = nn.GRU(
            lstm_hidden_size,
            gru_hidden_size,
            gru_layers,
            batch_first=True,
            dropout=dropout if gru_layers > 1 else 0.0,
        )
        hyper = {
            "lstm_hidden_size": lstm_hidden_size,
            "lstm_layers": lstm_layers,
            "gru_hidden_size": gru_hidden_size,
            "gru_layers": gru_layers,
            "dropout": dropout,
        }
        super().__init__(observation_space, _LastStep(lstm, gru, dropout=dropout), hyper)


# ------------------------------------------------------------------------------------ TCN
class _ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of each time step of a ``(batch, channels, time)`` tensor."""

    def forward(self, x: th.Tensor) -> th.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class _CausalConv(nn.Module):
    """A dilated 1-D convolution padded on the left only: output ``t`` sees inputs ``<= t``."""

    def __init__(self, cin: int, cout: int, kernel_size: int, dilation: int, norm: str) -> None:
        super().__init__()
        conv = nn.Conv1d(cin, cout, kernel_size, dilation=dilation)
        self.conv = weight_norm(conv) if norm == "weight" else conv
        self.norm = _ChannelLayerNorm(cout) if norm == "layer" else nn.Identity()
        self.pad = (kernel_size - 1) * dilation

    def forward(self, x: th.Tensor) -> th.Tensor:
        return self.norm(self.conv(F.pad(x, (self.pad, 0))))


class _TemporalBlock(nn.Module):
    """Two causal convolutions with ReLU and dropout plus a residual connection (Bai et al.)."""

    def __init__(
        self, cin: int, cout: int, kernel_size: int, dilation: int, dropout: float, norm: str
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _CausalConv(cin, cout, kernel_size, dilation, norm),
            nn.ReLU(),
            nn.Dropout(dropout),
            _CausalConv(cout, cout, kernel_size, dilation, norm),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.residual = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: th.Tensor) -> th.Tensor:
        return F.relu(self.net(x) + self.residual(x))


class _TCN(nn.Module):
    """Temporal blocks with dilations 1, 2, 4, ...; the last step's channels encode the window."""

    def __init__(
        self,
        num_features: int,
        channels: int,
        kernel_size: int,
        num_blocks: int,
        dropout: float,
        norm: str,
    ) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                _TemporalBlock(
                    num_features if i == 0 else channels, channels, kernel_size, 2**i, dropout, norm
                )
                for i in range(num_blocks)
            )
        )

    def forward(self, x: th.Tensor) -> th.Tensor:
        return self.blocks(x.transpose(1, 2))[:, :, -1]


class TCNExtractor(SequenceExtractor):
    """A temporal convolutional network (Bai, Kolter & Koltun 2018, arXiv:1803.01271).

    Residual blocks of two causal dilated convolutions (block ``i`` has dilation ``2**i``); the
    receptive field is ``1 + 2 (kernel_size - 1) (2**num_blocks - 1)`` bars and must cover the
    window, else the older rows would be ignored.

    Args:
        observation_space: The env's :class:`WindowedBox`.
        channels: Channels of every block (the encoding size).
        kernel_size: Convolution width (>= 2).
        num_blocks: Residual blocks; ``None``: the fewest whose receptive field covers the window.
        dropout: Dropout after each convolution.
        norm: ``weight`` (weight normalisation, as in the paper), ``layer`` (LayerNorm over the
            channels of each step) or ``none``.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        channels: int = 32,
        kernel_size: int = 3,
        num_blocks: int | None = None,
        dropout: float = 0.1,
        norm: str = "weight",
    ) -> None:
        window, num_features, _ = observation_layout(observation_space, type(self).__name__)
        self.check_window(window, kernel_size=kernel_size, num_blocks=num_blocks)
        _check_positive(channels=channels)
        _check_dropout(dropout)
        if norm not in TCN_NORMS:
            raise ConfigError(
                f"extractor.features_extractor_kwargs.norm={norm!r} is unknown; "
                f"choose one of {', '.join(TCN_NORMS)}"
            )
        blocks = num_blocks if num_blocks is not None else self.blocks_for(window, kernel_size)
        hyper = {
            "channels": channels,
            "kernel_size": kernel_size,
            "num_blocks": blocks,
            "dropout": dropout,
            "norm": norm,
        }
        encoder = _TCN(num_features, channels, kernel_size, blocks, dropout, norm)
        super().__init__(observation_space, encoder, hyper)

    @staticmethod
    def receptive_field(kernel_size: int, num_blocks: int) -> int:
        """Bars that the last step's output depends on (two convolutions per block)."""
        return 1 + 2 * (kernel_size - 1) * (2**num_blocks - 1)

    @classmethod
    def blocks_for(cls, window: int, kernel_size: int) -> int:
        """The fewest blocks whose receptive field covers ``window`` bars."""
        blocks = 1
        while cls.receptive_field(kernel_size, blocks) < window:
            blocks += 1
        return blocks

    @classmethod
    def check_window(cls, window: int, **hyperparameters: Any) -> None:
        kernel_size = int(hyperparameters.get("kernel_size", 3))
        num_blocks = hyperparameters.get("num_blocks")
        if kernel_size < 2:
            raise ConfigError(
                f"extractor.features_extractor_kwargs.kernel_size={kernel_size} must be >= 2 "
                "for the receptive field to grow with depth"
            )
        if num_blocks is None:
            return
        _check_positive(num_blocks=num_blocks)
        field = cls.receptive_field(kernel_size, num_blocks)
        if field < window:
            need = cls.blocks_for(window, kernel_size)
            raise ConfigError(
                f"extractor=tcn sees {field} bars (kernel_size={kernel_size}, "
                f"num_blocks={num_blocks}) but env.window={window}; set "
                f"extractor.features_extractor_kwargs.num_blocks={need} (or null to size it to "
                "the window), raise extractor.features_extractor_kwargs.kernel_size, or lower "
                "env.window"
            )


# ------------------------------------------------------------------------------------ checks
def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) < 1:
            raise ConfigError(f"extractor.features_extractor_kwargs.{name}={value} must be >= 1")


def _check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(
            f"extractor.features_extractor_kwargs.dropout={dropout} must be in [0, 1)"
        )


__all__ = [
    "LSTMExtractor",
    "LSTMGRUExtractor",
    "SequenceExtractor",
    "TCNExtractor",
    "observation_layout",
]
