"""GRU4Rec hyper-parameters under the reference implementation's names, and their string form.

``parse_params("loss=cross-entropy,layers=200/200,batch_size=32")`` -> :class:`GRU4RecParams`,
so published settings carry over verbatim.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

LOSSES = ("cross-entropy", "bpr-max")
GRU_VARIANTS = ("classic", "reference")
GRU_VARIANT = "classic"
ITEM_LR_SCALE = 0.25


@dataclass
class GRU4RecParams:
    loss: str = "cross-entropy"
    layers: list[int] = field(default_factory=lambda: [100])
    batch_size: int = 64
    dropout_p_embed: float = 0.0
    dropout_p_hidden: float = 0.0
    learning_rate: float = 0.05
    momentum: float = 0.0
    n_sample: int = 2048
    sample_alpha: float = 0.5
    embedding: int = 0  # size of a separate item embedding; 0 = none (one-hot unless constrained)
    constrained_embedding: bool = True  # reuse the output matrix Wy as the input embedding
    n_epochs: int = 10
    bpreg: float = 1.0
    elu_param: float = 0.5
    logq: float = 0.0
    # Not a reference name (our extension): the row-sparse item matrices (output [Wy | By] and a
    # separate embedding) learn at learning_rate * item_lr_scale; the dense GRU weights at
    # learning_rate. With the spec's update taken literally (1.0) the published settings train
    # the item rows far too aggressively here; the default was chosen on validation days carved
    # from the *training* data of both benchmark splits (docs/gru4rec-engine.md, "Item learning rate").
    item_lr_scale: float = ITEM_LR_SCALE
    # Not a reference name (our extension): the GRU cell. "classic": n = tanh(W_n x + U_n (r * h) + b_n)
    # (reset gate before U, one bias per gate); "reference": n = tanh(W_n x + b_in + r * (U_n h + b_hn))
    # with the hidden bias b_hn trained, the cell the spec names for the reference implementation.
    # The default was chosen on validation days (docs/gru4rec-engine.md, "GRU cell": no consistent gain).
    gru_variant: str = GRU_VARIANT

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if isinstance(self.layers, int):
            self.layers = [self.layers]
        self.layers = [int(x) for x in self.layers]
        if not self.layers or min(self.layers) < 1:
            raise ValueError(f"layers must be positive sizes, got {self.layers!r}")
        for name in ("dropout_p_embed", "dropout_p_hidden"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.batch_size < 1 or self.n_sample < 0 or self.n_epochs < 0 or self.embedding < 0:
            raise ValueError("batch_size must be >= 1; n_sample, n_epochs, embedding >= 0")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.gru_variant not in GRU_VARIANTS:
            raise ValueError(f"gru_variant must be one of {GRU_VARIANTS}, got {self.gru_variant!r}")
        if not self.item_lr_scale > 0:
            raise ValueError(f"item_lr_scale must be > 0, got {self.item_lr_scale!r}")

    @property
    def input_mode(self) -> str:
        """'shared' (constrained embedding), 'embedding' (separate) or 'onehot'."""
        if self.constrained_embedding:
            return "shared"
        return "embedding" if self.embedding > 0 else "onehot"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GRU4RecParams":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown GRU4Rec parameter(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_string(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                v = "/".join(str(x) for x in v)
            parts.append(f"{f.name}={v}")
        return ",".join(parts)


def _to_bool(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "y", "t"):
        return True
    if low in ("0", "false", "no", "n", "f"):
        return False
    raise ValueError(f"parameter {name}: expected a boolean, got {raw!r}")


def parse_params(text: str | None, base: GRU4RecParams | None = None) -> GRU4RecParams:
    """Parse ``name=value,name=value`` (lists with ``/``). Unknown names raise ValueError."""
    values = dataclasses.asdict(base) if base is not None else {}
    types = {f.name: f.type for f in dataclasses.fields(GRU4RecParams)}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ValueError(f"parameter {part!r}: expected name=value")
        name, raw = (s.strip() for s in part.split("=", 1))
        if name not in types:
            raise ValueError(f"unknown GRU4Rec parameter: {name!r}")
        kind = types[name]
        try:
            if name == "layers":
                values[name] = [int(x) for x in raw.split("/") if x.strip()]
            elif kind == "bool":
                values[name] = _to_bool(name, raw)
            elif kind == "int":
                values[name] = int(raw)
            elif kind == "float":
                values[name] = float(raw)
            else:
                values[name] = raw
        except ValueError as exc:
            if str(exc).startswith("parameter"):
                raise
            raise ValueError(f"parameter {name}: cannot parse {raw!r} ({exc})") from None
    return GRU4RecParams(**values)
