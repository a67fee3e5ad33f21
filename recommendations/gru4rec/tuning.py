"""Per-shop hyper-parameter search (Optuna) and the choice of the model kind to serve.

Every choice is made on *validation* sessions cut from the end of the training events
(``sessions.split_by_time(train, valid_days)``): the test day of a benchmark split, or anything
after the training data, is never seen. The objective of every choice is
``metrics.objective`` (the geometric mean of Recall@20 and MRR@20 on validation).

:func:`tune` runs the trials in three phases (docs/gru4rec-engine.md, "Tuning"):

1. **V-SKNN** (cheap, a few trials): k, sample_size, similarity, weighting (TPE); the first trial
   is the defaults of :class:`SessionKNN`.
2. **GRU4Rec** (most of the trials): TPE over the search space below; the first trials are the
   published settings (RSC15 and RetailRocket rows of the spec), so tuning never ends below them
   on validation. Each epoch is scored on the validation sessions (the trainer's ``on_epoch``
   hook): the value is reported to a MedianPruner (a trial below the median of earlier trials at
   the same epoch stops there, "pruned"), and an epoch that does not improve on the trial's best
   for ``patience`` epochs ends the trial (early stopping; the trial keeps its best epoch, whose
   number becomes ``n_epochs`` of its parameters).
3. **Hybrid**: one trial, the fusion weight fitted (``hybrid.hybrid_weight_fit``) on the best
   GRU4Rec and the best V-SKNN models of the earlier phases, kept in memory (not retrained).

Optuna is imported here only; web workers never import this module.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import optuna
import pandas as pd
import torch

from .baselines import SessionKNN, evaluate_baseline
from .evaluation import evaluate
from .hybrid import Hybrid, evaluate_hybrid, hybrid_weight_fit
from .iterator import encode_sessions
from .metrics import objective
from .model import GRU4Rec
from .params import LOSSES, GRU4RecParams, parse_params
from .sessions import split_by_time
from .trainer import TrainingDiverged, fit

KINDS = ("gru4rec", "vsknn", "hybrid")
STATES = ("complete", "pruned", "failed")
CUTOFFS = (1, 5, 10, 20)

# The published tuned settings of the spec (../shared/docs/gru4rec.md), enqueued as the first
# GRU4Rec trials; the engine's defaults fill in the rest (item_lr_scale 0.25, classic cell).
PUBLISHED = {
    "rsc15": "loss=cross-entropy,layers=100,batch_size=32,dropout_p_embed=0.0,dropout_p_hidden=0.4,"
             "learning_rate=0.2,momentum=0.2,sample_alpha=0.5,elu_param=0,logq=1,n_sample=2048,n_epochs=10",
    "retailrocket": "loss=bpr-max,layers=224,batch_size=80,dropout_p_embed=0.5,dropout_p_hidden=0.05,"
                    "learning_rate=0.05,momentum=0.4,sample_alpha=0.4,bpreg=1.95,elu_param=0.5,logq=0,"
                    "n_sample=2048,n_epochs=10",
}
MAX_EPOCHS = 10  # the published settings' epochs; a trial may stop earlier, never later
PATIENCE = 2  # epochs without a better validation objective before a trial stops
KNN_SHARE = 0.2  # of the trials (at most KNN_MAX_TRIALS) and of the time budget for V-SKNN
KNN_MAX_TRIALS = 8

Float = optuna.distributions.FloatDistribution
Int = optuna.distributions.IntDistribution
Cat = optuna.distributions.CategoricalDistribution

# GRU4Rec search space (one GRU layer of size "hidden"). bpreg and elu_param apply to bpr-max
# only, logq to cross-entropy only: they are sampled only for their loss.
GRU_SPACE: dict[str, optuna.distributions.BaseDistribution] = {
    "loss": Cat(list(LOSSES)),
    "hidden": Int(48, 512, log=True),
    "batch_size": Int(16, 256, log=True),
    "dropout_p_embed": Float(0.0, 0.6),
    "dropout_p_hidden": Float(0.0, 0.7),
    "learning_rate": Float(0.01, 0.5, log=True),
    "momentum": Float(0.0, 0.9),
    "sample_alpha": Float(0.0, 1.0),
    "n_sample": Cat([512, 1024, 2048, 4096]),
    "item_lr_scale": Float(0.1, 1.0, log=True),
    "bpreg": Float(0.0, 3.0),
    "elu_param": Float(0.0, 1.0),
    "logq": Float(0.0, 1.0),
}
GRU_ONLY_FOR = {"bpreg": "bpr-max", "elu_param": "bpr-max", "logq": "cross-entropy"}
KNN_SPACE: dict[str, optuna.distributions.BaseDistribution] = {
    "k": Int(20, 500, log=True),
    "sample_size": Int(100, 2500, log=True),
    "similarity": Cat(list(SessionKNN.SIMILARITIES)),
    "weighting": Cat(list(SessionKNN.WEIGHTINGS)),
}


@dataclass
class TrialRecord:
    """One trial. ``params``: the complete settings to train with (GRU4Rec: every field of
    GRU4RecParams, ``n_epochs`` = the trial's best epoch; V-SKNN: SessionKNN's parameters; hybrid:
    weight, fusion, fusion_params and the two models' parameters). ``metrics``: recall@N, mrr@N and
    ``objective`` on the validation sessions (of the best epoch). ``epochs``: epochs trained
    (GRU4Rec). ``epoch_objectives``: the validation objective after each epoch (GRU4Rec)."""

    number: int
    kind: str
    params: dict
    metrics: dict
    state: str
    duration_s: float
    epochs: int | None = None
    error: str = ""
    epoch_objectives: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrialRecord":
        if not isinstance(d, dict):
            raise ValueError(f"a trial must be an object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {"number", "kind", "params", "metrics", "state", "duration_s"} - set(d)
        if missing:
            raise ValueError(f"trial lacks {', '.join(sorted(missing))}")
        rec = cls(**{k: v for k, v in d.items() if k in names})
        if rec.kind not in KINDS:
            raise ValueError(f"trial {rec.number}: unknown kind {rec.kind!r}; expected one of {KINDS}")
        if rec.state not in STATES:
            raise ValueError(f"trial {rec.number}: unknown state {rec.state!r}; expected one of {STATES}")
        return rec

    @property
    def objective(self) -> float | None:
        v = self.metrics.get("objective") if self.state == "complete" else None
        return float(v) if v is not None else None


@dataclass
class TuneResult:
    trials: list[TrialRecord]
    best: dict[str, TrialRecord | None]  # per kind and "overall": the complete trial of the best objective
    stopped: bool
    elapsed_s: float

    def summary(self) -> dict:
        """JSON-ready: the best trial overall and per kind, counts by state, seconds."""
        def brief(r: TrialRecord | None):
            if r is None:
                return None
            return {"trial": r.number, "kind": r.kind, "params": r.params, "epochs": r.epochs,
                    "validation": {k: v for k, v in r.metrics.items() if k != "n_events"}}

        return {
            "best": brief(self.best.get("overall")),
            "best_by_kind": {k: brief(v) for k, v in self.best.items() if k != "overall"},
            "trials": len(self.trials),
            "complete": sum(r.state == "complete" for r in self.trials),
            "pruned": sum(r.state == "pruned" for r in self.trials),
            "failed": sum(r.state == "failed" for r in self.trials),
            "stopped": self.stopped,
            "seconds": round(self.elapsed_s, 3),
        }


# ------------------------------------------------------------------------------- search spaces
def _suggest(trial: optuna.Trial, name: str, dist) -> object:
    if isinstance(dist, Cat):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, Int):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, log=dist.log)


def _gru_names(loss: str) -> list[str]:
    return [n for n in GRU_SPACE if GRU_ONLY_FOR.get(n, loss) == loss]


def gru_space_values(params: dict | GRU4RecParams) -> dict:
    """The search-space coordinates of complete GRU4Rec parameters (what Optuna records)."""
    p = params.to_dict() if isinstance(params, GRU4RecParams) else dict(params)
    out = {}
    for name in _gru_names(p["loss"]):
        out[name] = int(p["layers"][0]) if name == "hidden" else p[name]
    return out


def gru_params_from(values: dict, n_epochs: int = MAX_EPOCHS) -> GRU4RecParams:
    """Complete GRU4Rec parameters from search-space coordinates (the rest: engine defaults)."""
    d = {k: v for k, v in values.items() if k != "hidden"}
    return GRU4RecParams(layers=[int(values["hidden"])], n_epochs=n_epochs, **d)


def _suggest_gru(trial: optuna.Trial) -> dict:
    loss = _suggest(trial, "loss", GRU_SPACE["loss"])
    values = {"loss": loss}
    for name in _gru_names(loss)[1:]:
        values[name] = _suggest(trial, name, GRU_SPACE[name])
    return values


def _suggest_knn(trial: optuna.Trial) -> dict:
    return {name: _suggest(trial, name, dist) for name, dist in KNN_SPACE.items()}


def _space_of(kind: str, values: dict) -> dict:
    if kind == "gru4rec":
        return {n: GRU_SPACE[n] for n in values}
    return {n: KNN_SPACE[n] for n in values}


def _frozen(rec: TrialRecord) -> optuna.trial.FrozenTrial:
    """An earlier trial as Optuna's record (ValueError when it lies outside the search space)."""
    values = gru_space_values(rec.params) if rec.kind == "gru4rec" else {n: rec.params[n] for n in KNN_SPACE}
    state = {"complete": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED,
             "failed": optuna.trial.TrialState.FAIL}[rec.state]
    return optuna.trial.create_trial(
        params=values, distributions=_space_of(rec.kind, values), state=state,
        value=rec.objective if rec.state == "complete" else None,
        intermediate_values={i + 1: float(v) for i, v in enumerate(rec.epoch_objectives)},
    )


def _study(kind: str, seed: int, previous: list[TrialRecord], say) -> optuna.Study:
    startup = 5 if kind == "gru4rec" else 3
    # a resumed search draws new points: the sampler's seed moves on with the trials already made
    n_prev = sum(r.kind == kind for r in previous)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed + 1000 * n_prev, n_startup_trials=startup,
                                             multivariate=True, group=True)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    for rec in previous:
        if rec.kind != kind:
            continue
        try:
            study.add_trial(_frozen(rec))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            say(f"earlier trial {rec.number} lies outside the search space ({exc}); kept in the results, "
                "not shown to the sampler")
    return study


# ------------------------------------------------------------------------------------ planning
def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """The kinds in canonical order; ValueError on an unknown kind, none, or a hybrid without both parts."""
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(map(repr, unknown))}; expected some of {', '.join(KINDS)}")
    if not kinds:
        raise ValueError(f"no kind to tune; expected some of {', '.join(KINDS)}")
    if "hybrid" in kinds and not {"gru4rec", "vsknn"} <= set(kinds):
        raise ValueError("kind hybrid fuses the best gru4rec and vsknn models: tune those kinds too")
    return tuple(k for k in KINDS if k in kinds)


def plan_trials(trials: int, kinds: Sequence[str]) -> dict[str, int]:
    """How many trials each kind gets out of ``trials``: one hybrid trial, V-SKNN ``KNN_SHARE`` of
    the rest (1 to ``KNN_MAX_TRIALS``) when GRU4Rec is tuned too, GRU4Rec the remainder."""
    kinds = check_kinds(kinds)
    if trials < len(kinds):
        raise ValueError(f"trials must be at least {len(kinds)} (one per kind: {', '.join(kinds)}), got {trials}")
    plan = {k: 0 for k in KINDS}
    rest = trials
    if "hybrid" in kinds:
        plan["hybrid"] = 1
        rest -= 1
    if "vsknn" in kinds and "gru4rec" in kinds:
        plan["vsknn"] = max(1, min(KNN_MAX_TRIALS, round(KNN_SHARE * rest)))
        plan["gru4rec"] = rest - plan["vsknn"]
    elif "vsknn" in kinds:
        plan["vsknn"] = rest
    else:
        plan["gru4rec"] = rest
    return plan


def _snapshot(model: GRU4Rec) -> dict[str, torch.Tensor]:
    snap = {"output": model.output.clone(), "dense_flat": model.dense_flat.clone()}
    if model.embedding is not None:
        snap["embedding"] = model.embedding.clone()
    return snap


def _restore(model: GRU4Rec, snap: dict[str, torch.Tensor]) -> None:
    model.output.copy_(snap["output"])
    model.dense_flat.copy_(snap["dense_flat"])
    if model.embedding is not None:
        model.embedding.copy_(snap["embedding"])
    model._serve_cache = None


def _metrics(m: dict) -> dict:
    out = {k: float(v) for k, v in m.items() if k.startswith(("recall@", "mrr@"))}
    out["objective"] = objective(m)
    out["n_events"] = int(m.get("n_events", 0))
    return out


# ---------------------------------------------------------------------------------------- tune
def tune(train_df: pd.DataFrame, *, trials: int, timeout: float | None = None, kinds: Sequence[str] = KINDS,
         valid_days: float = 1.0, seed: int = 0, previous: Sequence[TrialRecord | dict] = (),
         on_trial: Callable[[TrialRecord], None] | None = None, should_stop: Callable[[], bool] | None = None,
         progress: bool = False, log: Callable[[str], None] | None = None, device: str = "cpu",
         max_epochs: int = MAX_EPOCHS, patience: int = PATIENCE) -> TuneResult:
    """Search the settings of each kind on validation sessions cut from the end of ``train_df``
    (``valid_days``; see the module doc for the phases). ``trials`` counts every trial, the
    ``previous`` ones (an earlier, stopped run: added to the studies so the search resumes, not
    re-run) included. ``timeout`` (seconds) ends the search early: each kind still gets its first
    trial (a GRU4Rec trial stops at the first epoch boundary where one more epoch, at the pace of
    the last one, would end past the budget, and keeps its best epoch).
    ``on_trial(record)`` is called after each trial; ``should_stop()`` is polled between trials
    and after every epoch: when true the running trial ends as "pruned" (error "stopped") and
    the result says ``stopped``."""
    t_start = time.perf_counter()
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1, got {trials!r}")
    if timeout is not None and not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    if not (isinstance(valid_days, (int, float)) and valid_days > 0):
        raise ValueError(f"valid_days must be > 0, got {valid_days!r}")
    if max_epochs < 1 or patience < 1:
        raise ValueError("max_epochs and patience must be >= 1")
    kinds = check_kinds(kinds)
    plan = plan_trials(trials, kinds)
    prev = [r if isinstance(r, TrialRecord) else TrialRecord.from_dict(r) for r in previous]
    numbers = [r.number for r in prev]
    if len(set(numbers)) != len(numbers):
        raise ValueError("previous trials repeat a trial number")

    quiet = lambda msg: None  # noqa: E731
    if log is None and progress:
        from tqdm import tqdm

        log = lambda msg: tqdm.write(msg, file=sys.stderr)  # noqa: E731
    say = log or quiet
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    tr, va = split_by_time(train_df, days=valid_days)
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(f"cannot cut {valid_days} validation day(s) from the training events: "
                         f"{len(tr)} training and {len(va)} validation events would be left")
    say(f"validation: the last {valid_days:g} day(s): {len(va):,} events; tuning trains on {len(tr):,} events")

    deadline = t_start + timeout if timeout else math.inf
    records = list(prev)
    done = {k: sum(r.kind == k for r in prev) for k in KINDS}
    left = max(0, trials - len(prev))
    todo = {"hybrid": min(left, max(0, plan["hybrid"] - done["hybrid"]))}
    todo["vsknn"] = min(left - todo["hybrid"], max(0, plan["vsknn"] - done["vsknn"]))
    todo["gru4rec"] = left - todo["hybrid"] - todo["vsknn"] if "gru4rec" in kinds else 0
    if "gru4rec" not in kinds:  # a V-SKNN-only search takes all that is left
        todo["vsknn"] = left - todo["hybrid"]
    state = {"stopped": False, "next": max(numbers, default=-1) + 1}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=trials, initial=len(prev), desc="trials", unit="trial", file=sys.stderr)

    def stop_requested() -> bool:
        if should_stop is not None and should_stop():
            state["stopped"] = True
        return state["stopped"]

    def emit(rec: TrialRecord) -> None:
        records.append(rec)
        obj = rec.metrics.get("objective")
        say(f"trial {rec.number} {rec.kind} {rec.state}: objective {obj if obj is None else round(obj, 4)}, "
            f"R@20 {rec.metrics.get('recall@20', float('nan')):.4f}, MRR@20 {rec.metrics.get('mrr@20', float('nan')):.4f}, "
            f"{rec.duration_s:.1f} s" + (f", {rec.epochs} epochs" if rec.epochs else "") + (f" ({rec.error})" if rec.error else ""))
        if bar is not None:
            bar.update(1)
            best = _best(records).get("overall")
            if best is not None:
                bar.set_postfix(best=f"{best.objective:.4f}", refresh=False)
        if on_trial is not None:
            on_trial(rec)

    def number() -> int:
        n = state["next"]
        state["next"] += 1
        return n

    kept: dict[str, tuple[float, object]] = {}  # kind -> (objective, model on the validation split)
    costs = {"knn_eval": 0.0, "gru_eval": 0.0}

    # ---- phase 1: V-SKNN
    if todo["vsknn"] and not stop_requested():
        study = _study("vsknn", seed, prev, say)
        if not any(r.kind == "vsknn" for r in prev):
            study.enqueue_trial(SessionKNN().params())
        knn_deadline = t_start + KNN_SHARE * timeout if (timeout and "gru4rec" in kinds) else deadline
        for i in range(todo["vsknn"]):
            if stop_requested() or (i > 0 or done["vsknn"] > 0) and time.perf_counter() >= knn_deadline:
                break
            trial = study.ask()
            params = _suggest_knn(trial)
            t0 = time.perf_counter()
            try:
                knn = SessionKNN(**params).fit(tr)
                t1 = time.perf_counter()
                m = _metrics(evaluate_baseline(knn, va, cutoffs=CUTOFFS))
                costs["knn_eval"] = time.perf_counter() - t1
            except (ValueError, RuntimeError, MemoryError) as exc:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                emit(TrialRecord(number(), "vsknn", params, {}, "failed", time.perf_counter() - t0, error=str(exc)))
                continue
            study.tell(trial, m["objective"])
            if m["objective"] > kept.get("vsknn", (-1.0, None))[0]:
                kept["vsknn"] = (m["objective"], knn)
            emit(TrialRecord(number(), "vsknn", params, m, "complete", time.perf_counter() - t0))

    # ---- phase 2: GRU4Rec
    if todo["gru4rec"] and not stop_requested():
        study = _study("gru4rec", seed, prev, say)
        seen = {tuple(sorted(gru_space_values(r.params).items())) for r in prev if r.kind == "gru4rec"}
        for text in PUBLISHED.values():
            values = gru_space_values(parse_params(text))
            if tuple(sorted(values.items())) not in seen:
                study.enqueue_trial(values)
        va_enc: dict = {}
        for i in range(todo["gru4rec"]):
            hybrid_reserve = 4.0 * (costs["knn_eval"] + costs["gru_eval"]) + 5.0 if todo["hybrid"] else 0.0
            gru_deadline = deadline - hybrid_reserve
            if stop_requested() or (i > 0 or done["gru4rec"] > 0) and time.perf_counter() >= gru_deadline:
                break
            rec, model = _gru_trial(study, number(), tr, va, va_enc, seed, device, max_epochs, patience,
                                    lambda: gru_deadline, stop_requested, costs)
            if rec.state == "complete" and rec.objective > kept.get("gru4rec", (-1.0, None))[0]:
                kept["gru4rec"] = (rec.objective, model)
            emit(rec)

    # ---- phase 3: hybrid (one trial on the best models of the phases above)
    if todo["hybrid"] and not stop_requested():
        rec = _hybrid_trial(number(), records, kept, tr, va, seed, device, say)
        if rec is not None:
            emit(rec)

    if bar is not None:
        bar.close()
    return TuneResult(records, _best(records), state["stopped"], time.perf_counter() - t_start)


def _gru_trial(study, num, tr, va, va_enc, seed, device, max_epochs, patience, deadline, stop_requested, costs):
    """One GRU4Rec trial with per-epoch validation, pruning and early stopping; returns
    (record, the model at its best epoch or None)."""
    trial = study.ask()
    values = _suggest_gru(trial)
    params = gru_params_from(values, n_epochs=max_epochs)
    track = {"best": -1.0, "epoch": 0, "snap": None, "metrics": {}, "values": [], "end": "",
             "last": time.perf_counter()}

    def on_epoch(epoch: int, model: GRU4Rec) -> bool:
        t0 = time.perf_counter()
        epoch_s = t0 - track["last"]  # training of this epoch (and the previous validation pass)
        if "enc" not in va_enc or va_enc["items"] is not model.item_index and va_enc["items"] != model.item_index:
            va_enc["enc"], va_enc["items"] = encode_sessions(va, model.item_index, min_length=2), model.item_index
        m = _metrics(evaluate(model, va_enc["enc"], cutoffs=CUTOFFS))
        costs["gru_eval"] = time.perf_counter() - t0
        track["values"].append(m["objective"])
        trial.report(m["objective"], epoch)
        if m["objective"] > track["best"]:
            track.update(best=m["objective"], epoch=epoch, metrics=m, snap=_snapshot(model))
        if epoch - track["epoch"] >= patience:
            track["end"] = "early"
            return False
        if trial.should_prune():
            track["end"] = "pruned"
            return False
        if stop_requested():
            track["end"] = "stopped"
            return False
        now = time.perf_counter()
        track["last"] = now
        if now + epoch_s >= deadline():  # another epoch would end past the budget
            track["end"] = "budget"
            return False
        return True

    t0 = time.perf_counter()
    try:
        model, history = fit(tr, params, device=device, seed=seed, progress=False, log=lambda msg: None,
                             on_epoch=on_epoch)
    except (TrainingDiverged, ValueError, RuntimeError, MemoryError) as exc:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        rec = TrialRecord(num, "gru4rec", params.to_dict(), track["metrics"], "failed", time.perf_counter() - t0,
                          epochs=len(track["values"]), error=f"{type(exc).__name__}: {exc}",
                          epoch_objectives=track["values"])
        return rec, None
    duration = time.perf_counter() - t0
    done = params.to_dict()
    done["n_epochs"] = track["epoch"]
    common = dict(epochs=len(history), epoch_objectives=track["values"])
    if track["end"] in ("pruned", "stopped"):
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return TrialRecord(num, "gru4rec", done, track["metrics"], "pruned", duration,
                           error="stopped" if track["end"] == "stopped" else "", **common), None
    study.tell(trial, track["best"])
    _restore(model, track["snap"])
    return TrialRecord(num, "gru4rec", done, track["metrics"], "complete", duration, **common), model


def _best(records: Sequence[TrialRecord]) -> dict[str, TrialRecord | None]:
    best: dict[str, TrialRecord | None] = {k: None for k in (*KINDS, "overall")}
    for r in records:  # the first of equal objectives wins
        if r.objective is None:
            continue
        for key in (r.kind, "overall"):
            if best[key] is None or r.objective > best[key].objective:
                best[key] = r
    return best


def _hybrid_trial(num, records, kept, tr, va, seed, device, say) -> TrialRecord | None:
    """Fit the hybrid's weight on the best GRU4Rec and V-SKNN trials' validation models (retrained
    only when that trial came from an earlier run); None when a kind has no complete trial."""
    best = _best(records)
    if best["gru4rec"] is None or best["vsknn"] is None:
        say("no hybrid trial: it needs a complete gru4rec and a complete vsknn trial")
        return None
    t0 = time.perf_counter()
    try:
        gru = _kept_or_retrained("gru4rec", best["gru4rec"], kept, tr, seed, device, say)
        knn = _kept_or_retrained("vsknn", best["vsknn"], kept, tr, seed, device, say)
        chosen = hybrid_weight_fit(gru, knn, va, cutoffs=CUTOFFS)
    except (TrainingDiverged, ValueError, RuntimeError, MemoryError) as exc:
        return TrialRecord(num, "hybrid", {}, {}, "failed", time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}")
    params = {"weight": chosen["weight"], "fusion": chosen["fusion"], "fusion_params": chosen["fusion_params"],
              "gru4rec": best["gru4rec"].params, "vsknn": best["vsknn"].params,
              "gru4rec_trial": best["gru4rec"].number, "vsknn_trial": best["vsknn"].number}
    return TrialRecord(num, "hybrid", params, _metrics(chosen["metrics"]), "complete", time.perf_counter() - t0,
                       epochs=best["gru4rec"].params.get("n_epochs"))


def _kept_or_retrained(kind, rec, kept, tr, seed, device, say):
    obj, model = kept.get(kind, (None, None))
    if model is not None and obj == rec.objective:
        return model
    say(f"retraining the best {kind} trial ({rec.number}, from an earlier run) on the validation split")
    return train_kind(kind, rec.params, tr, seed=seed, device=device)


# --------------------------------------------------------------------------------------- select
def train_kind(kind: str, params: dict, train_df: pd.DataFrame, seed: int = 0, device: str = "cpu"):
    """Train a model of ``kind`` with a trial's ``params`` on ``train_df`` (no validation)."""
    quiet = lambda msg: None  # noqa: E731
    if kind == "gru4rec":
        model, _ = fit(train_df, GRU4RecParams.from_dict(dict(params)), device=device, seed=seed,
                       progress=False, log=quiet)
        return model
    if kind == "vsknn":
        return SessionKNN(**params).fit(train_df)
    if kind == "hybrid":
        gru = train_kind("gru4rec", params["gru4rec"], train_df, seed, device)
        knn = train_kind("vsknn", params["vsknn"], train_df, seed, device)
        return Hybrid(gru, knn, params["weight"], params["fusion"], **params["fusion_params"])
    raise ValueError(f"unknown kind {kind!r}")


def evaluate_kind(kind: str, model, test_df: pd.DataFrame, cutoffs=CUTOFFS) -> dict:
    if kind == "gru4rec":
        m = evaluate(model, test_df, cutoffs=cutoffs)
    elif kind == "vsknn":
        m = evaluate_baseline(model, test_df, cutoffs=cutoffs)
    else:
        m = evaluate_hybrid(model, test_df, cutoffs=cutoffs)
    return {k: (float(v) if k.startswith(("recall@", "mrr@")) else v) for k, v in m.items()
            if k.startswith(("recall@", "mrr@")) or k == "n_events"}


SELECT_TRIALS = 200  # the time budget, not this number, ends a select search


def select(train_df: pd.DataFrame, test_df: pd.DataFrame | None = None, *, timeout: float, seed: int = 0,
           progress: bool = False, log: Callable[[str], None] | None = None, valid_days: float = 1.0,
           trials: int = SELECT_TRIALS, device: str = "cpu",
           on_trial: Callable[[TrialRecord], None] | None = None) -> dict:
    """Choose the kind and its settings on ``train_df`` alone (:func:`tune` within ``timeout``
    seconds, the three kinds compared by the validation objective), retrain the winner with its
    settings on all of ``train_df`` (not counted in ``timeout``; bounded by one training of each
    part), and evaluate it once on ``test_df`` when given. Returns {"kind", "params",
    "validation", "test" (or None), "trials", "pruned", "seconds": {"tune", "retrain", "test",
    "total"}, "model": the retrained model}."""
    t0 = time.perf_counter()
    result = tune(train_df, trials=trials, timeout=timeout, valid_days=valid_days, seed=seed,
                  progress=progress, log=log, device=device, on_trial=on_trial)
    best = result.best["overall"]
    if best is None:
        raise ValueError("no trial completed within the budget; raise the timeout")
    t1 = time.perf_counter()
    model = train_kind(best.kind, best.params, train_df, seed=seed, device=device)
    t2 = time.perf_counter()
    test = evaluate_kind(best.kind, model, test_df) if test_df is not None else None
    t3 = time.perf_counter()
    by_kind = {k: (None if r is None else {"trial": r.number, "objective": r.objective,
                                           "recall@20": r.metrics.get("recall@20"), "mrr@20": r.metrics.get("mrr@20")})
               for k, r in result.best.items() if k != "overall"}
    return {
        "kind": best.kind, "params": best.params,
        "validation": {k: v for k, v in best.metrics.items() if k != "n_events"},
        "validation_by_kind": by_kind,
        "test": test,
        "trials": len(result.trials), "pruned": sum(r.state == "pruned" for r in result.trials),
        "seconds": {"tune": round(t1 - t0, 3), "retrain": round(t2 - t1, 3), "test": round(t3 - t2, 3),
                    "total": round(t3 - t0, 3)},
        "model": model,
    }
