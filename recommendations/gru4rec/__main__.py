"""Command line for the GRU4Rec engine: prep, train, evaluate, inspect, tune, select (and the baselines).

    python -m recommendations.gru4rec prep RAW OUTDIR [--test-days 1]
    python -m recommendations.gru4rec train TRAIN [--test TEST] -p PARAMS [--save MODEL] [--model gru4rec]
    python -m recommendations.gru4rec train TRAIN --model hybrid [-p GRU_PARAMS] [--knn-params k=200,...]
                                        [--weight W --fusion rrf|minmax [--fusion-params c=60,depth=100]]
                                        [--valid-days 1] [--test TEST] [--save DIR]
    python -m recommendations.gru4rec evaluate MODEL TEST [-m 1 5 10 20] [--ties conservative]
    python -m recommendations.gru4rec inspect MODEL
    python -m recommendations.gru4rec tune TRAIN --trials N [--timeout S] [--kinds gru4rec vsknn hybrid] [--resume FILE]
    python -m recommendations.gru4rec select TRAIN --test TEST [--timeout S]

Progress goes to stderr; the last line on stdout is one JSON object (metrics, timings).
``--model pop|itemknn|vsknn`` trains a baseline instead (``--save`` then names a folder).
``--model hybrid`` trains GRU4Rec and V-SKNN and fuses them (``hybrid.py``): without ``--weight``
the weight and fusion are chosen on the last ``--valid-days`` of TRAIN, then both models are
trained again on all of TRAIN; ``--save`` names a folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

BASELINE_KINDS = {"pop": "Popularity", "itemknn": "ItemKNN", "vsknn": "SessionKNN"}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _emit(obj: dict) -> None:
    print(json.dumps(obj, default=float), flush=True)


def _read(path: str):
    from .formats import read_events  # why: each subcommand loads only its modules

    return read_events(path)


def _round(d: dict) -> dict:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


def _is_gru4rec_file(path: str) -> bool:
    return Path(path).is_file()


KNN_PARAM_TYPES = {"k": int, "sample_size": int, "similarity": str, "weighting": str}


def _kv(text: str, types: dict, what: str) -> dict:
    """``a=1,b=x`` -> {"a": 1, "b": "x"}, typed by ``types``; ValueError naming the bad part."""
    out: dict = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in types:
            raise ValueError(f"{what}: bad entry {part!r}; expected key=value with key in {sorted(types)}")
        try:
            out[key] = types[key](value.strip())
        except ValueError:
            raise ValueError(f"{what}: {key}={value.strip()!r} is not a valid {types[key].__name__}") from None
    return out


def _load(path: str, device: str = "cpu"):
    if _is_gru4rec_file(path):
        from .model import GRU4Rec  # why: each subcommand loads only its modules

        return "gru4rec", GRU4Rec.load(path, device=device)
    if (Path(path) / "hybrid.json").is_file():
        from .hybrid import Hybrid  # why: each subcommand loads only its modules

        return "hybrid", Hybrid.load(path, device=device)
    from .baselines import load_baseline  # why: each subcommand loads only its modules

    model = load_baseline(path)
    return model.kind, model


def _evaluate(kind: str, model, test, cutoffs, ties: str) -> dict:
    if kind == "gru4rec":
        from .evaluation import evaluate  # why: each subcommand loads only its modules

        return evaluate(model, test, cutoffs=cutoffs, ties=ties)
    if kind == "hybrid":
        from .hybrid import evaluate_hybrid  # why: each subcommand loads only its modules

        return evaluate_hybrid(model, test, cutoffs=cutoffs, ties=ties)
    from .baselines import evaluate_baseline  # why: each subcommand loads only its modules

    t0 = time.perf_counter()
    out = evaluate_baseline(model, test, cutoffs=cutoffs, ties=ties)
    out["eval_seconds"] = time.perf_counter() - t0
    return out


def cmd_prep(args) -> dict:
    from .formats import write_tsv  # why: each subcommand loads only its modules
    from .sessions import preprocess, split_by_time, split_stats  # why: each subcommand loads only its modules

    df = _read(args.raw)
    _log(f"read {len(df):,} events from {args.raw}")
    df = preprocess(df, min_item_support=args.min_item_support, min_session_length=2)
    train, test = split_by_time(df, days=args.test_days)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    write_tsv(train, out / "train.tsv")
    write_tsv(test, out / "test.tsv")
    stats = split_stats(train, test)
    _log(json.dumps(stats, indent=2, default=str))
    return {"train": str(out / "train.tsv"), "test": str(out / "test.tsv"), **stats}


def _train_hybrid(args, train, result: dict):
    from . import hybrid  # why: each subcommand loads only its modules
    from .baselines import SessionKNN  # why: each subcommand loads only its modules
    from .params import parse_params  # why: each subcommand loads only its modules
    from .trainer import fit  # why: each subcommand loads only its modules

    params = parse_params(args.params)
    if args.epochs is not None:
        params.n_epochs = args.epochs
    knn_params = _kv(args.knn_params, KNN_PARAM_TYPES, "--knn-params")
    SessionKNN(**knn_params)  # bad values fail before any training
    fparams = _kv(args.fusion_params, {"c": float, "depth": int}, "--fusion-params")
    if (args.weight is None) != (args.fusion is None):
        raise ValueError("--weight and --fusion go together (both skip the validation fit)")
    if args.fusion_params and args.fusion is None:
        raise ValueError("--fusion-params needs --weight and --fusion")
    _log(f"params: {params.to_string()}; V-SKNN {SessionKNN(**knn_params).params()}")
    if args.weight is not None:
        hybrid.fusion_params(args.fusion, **fparams)  # checked before training
        hybrid._check_weight(args.weight)
        gru, _ = fit(train, params, device=args.device, seed=args.seed, progress=not args.quiet)
        knn = SessionKNN(**knn_params).fit(train)
        model = hybrid.Hybrid(gru, knn, args.weight, args.fusion, **fparams)
    else:
        model, info = hybrid.fit_hybrid(train, params, knn_params, valid_days=args.valid_days, seed=args.seed,
                                        progress=not args.quiet, device=args.device)
        result["validation"] = {
            "objective": round(info["objective"], 6),
            **{k: round(v, 6) for k, v in info["metrics"].items() if k.startswith(("recall@20", "mrr@20"))},
            **{k: {m: round(v, 6) for m, v in info[k].items()} for k in ("valid_gru4rec", "valid_vsknn") if k in info},
        }
        result["fit_seconds_validation"] = info["fit_seconds_validation"]
        result["fit_seconds_final"] = info["fit_seconds_final"]
    result["params"] = model.params()
    result["weight"], result["fusion"], result["fusion_params"] = model.weight, model.fusion, model.fusion_params
    return model


def cmd_train(args) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model != "hybrid":
        for flag, value in (("--knn-params", args.knn_params), ("--weight", args.weight), ("--fusion", args.fusion),
                            ("--fusion-params", args.fusion_params)):
            if value is not None and not (flag == "--knn-params" and args.model == "vsknn"):
                raise ValueError(f"{flag} applies to --model hybrid" + (" or vsknn" if flag == "--knn-params" else "")
                                 + " only")
    train = _read(args.train)
    _log(f"train: {len(train):,} events, {train['SessionId'].nunique():,} sessions, {train['ItemId'].nunique():,} items")
    result: dict = {"model": args.model}
    t0 = time.perf_counter()
    if args.model == "gru4rec":
        from .params import parse_params  # why: each subcommand loads only its modules
        from .trainer import fit  # why: each subcommand loads only its modules

        params = parse_params(args.params)
        if args.epochs is not None:
            params.n_epochs = args.epochs
        _log(f"params: {params.to_string()}")
        model, history = fit(train, params, device=args.device, seed=args.seed, progress=not args.quiet)
        result["params"] = params.to_string()
        result["epochs"] = [_round(h) for h in history]
    elif args.model == "hybrid":
        model = _train_hybrid(args, train, result)
    else:
        from . import baselines  # why: each subcommand loads only its modules

        if args.params:
            raise SystemExit("-p/--params applies to --model gru4rec or hybrid only")
        kw = _kv(args.knn_params, KNN_PARAM_TYPES, "--knn-params") if args.model == "vsknn" else {}
        model = getattr(baselines, BASELINE_KINDS[args.model])(**kw).fit(train)
    train_s = time.perf_counter() - t0
    result["train_seconds"] = round(train_s, 3)
    if args.model != "hybrid":  # the hybrid's time covers two trainings of each model and the fit
        n_epochs = len(result.get("epochs", [])) or 1
        result["events_per_second"] = round(len(train) * n_epochs / train_s, 1)
    if args.test:
        test = _read(args.test)
        kind = args.model if args.model in ("gru4rec", "hybrid") else "baseline"
        metrics = _evaluate(kind, model, test, args.cutoffs, args.ties)
        result.update(_round(metrics))
        if args.model in ("gru4rec", "hybrid"):
            model.meta["metrics"] = {k: v for k, v in metrics.items() if k.startswith(("recall", "mrr"))}
    if args.save:
        model.save(args.save)
        _log(f"saved {args.save}")
        result["saved"] = args.save
    return result


def cmd_evaluate(args) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    kind, model = _load(args.model, args.device)
    test = _read(args.test)
    metrics = _evaluate(kind, model, test, args.cutoffs, args.ties)
    return {"model": kind, "ties": args.ties, **_round(metrics)}


def cmd_inspect(args) -> dict:
    import numpy as np

    kind, model = _load(args.model)
    if kind == "hybrid":
        out = {"model": "hybrid", "n_items": model.n_items, "n_items_gru4rec": model.gru.n_items,
               "n_items_vsknn": model.knn.n_items, "params": model.params(), "fit": model.meta.get("fit"),
               "metrics": model.meta.get("metrics"), "train_range": model.gru.meta.get("train_range")}
        _log(f"hybrid of GRU4Rec ({model.gru.n_items:,} items) and V-SKNN ({model.knn.n_items:,} items): "
             f"fusion {model.fusion} {model.fusion_params}, V-SKNN weight {model.weight}")
        _log(f"metrics: {out['metrics']}")
        return out
    if kind != "gru4rec":
        return {"model": kind, "n_items": model.n_items, "params": model.params()}
    wy, by = model.output_vectors()
    top_bias = np.argsort(-by)[: args.top]
    out = {
        "model": "gru4rec",
        "params": model.params.to_string(),
        "n_items": model.n_items,
        "train_range": model.meta.get("train_range"),
        "metrics": model.meta.get("metrics"),
        "n_weights": int(sum(t.numel() for t in model.tensors().values())),
    }
    _log(f"GRU4Rec, {model.n_items:,} items, params {out['params']}")
    _log(f"training range: {out['train_range']}")
    _log(f"metrics: {out['metrics']}")
    popular = model.meta.get("popular_items") or []
    if popular:
        _log("most popular training items (events):")
        for item, count in popular[: args.top]:
            _log(f"  {item}  {count}")
        out["popular_items"] = popular[: args.top]
    # "popular" by the output bias: the score an item gets whatever the session (the model's prior)
    _log("items with the highest output bias (the model's popularity prior):")
    for j in top_bias:
        _log(f"  {model.item_ids[j]}  bias {by[j]:+.3f}")
    out["top_bias_items"] = [model.item_ids[j] for j in top_bias]
    neighbours = {}
    for j in top_bias[: args.neighbours]:
        item = model.item_ids[j]
        sims = model.similar_items(item, k=5)
        neighbours[item] = [s[0] for s in sims]
        _log(f"  nearest to {item}: " + ", ".join(f"{i} ({s:.2f})" for i, s in sims))
    out["neighbours"] = neighbours
    return out


def _threads(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def _read_trials(path: str) -> list:
    """Trials of an earlier run: one JSON object a line (what ``--resume`` appends)."""
    from .tuning import TrialRecord  # why: optuna is imported only by the tuning subcommands

    out = []
    p = Path(path)
    if not p.exists():
        return out
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(TrialRecord.from_dict(json.loads(line)))
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            raise ValueError(f"{path} line {n}: not a trial ({exc})") from None
    return out


def _check_budget(args) -> None:
    if getattr(args, "trials", 1) is not None and getattr(args, "trials", 1) < 1:
        raise ValueError(f"--trials must be >= 1, got {args.trials}")
    if args.timeout is not None and not args.timeout > 0:
        raise ValueError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    if not args.valid_days > 0:
        raise ValueError(f"--valid-days must be > 0, got {args.valid_days:g}")


def cmd_tune(args) -> dict:
    from .tuning import check_kinds, tune  # why: optuna is imported only by the tuning subcommands

    _check_budget(args)
    kinds = check_kinds(args.kinds)
    _threads(args)
    previous = _read_trials(args.resume) if args.resume else []
    train = _read(args.train)
    sink = open(args.resume, "a", encoding="utf-8") if args.resume else None

    def on_trial(rec) -> None:
        if sink is not None:
            sink.write(json.dumps(rec.to_dict(), default=float) + "\n")
            sink.flush()

    try:
        result = tune(train, trials=args.trials, timeout=args.timeout, kinds=kinds, valid_days=args.valid_days,
                      seed=args.seed, previous=previous, on_trial=on_trial, progress=not args.quiet,
                      log=None if not args.quiet else (lambda msg: None))
    finally:
        if sink is not None:
            sink.close()
    return result.summary()


def cmd_select(args) -> dict:
    from .tuning import select  # why: optuna is imported only by the tuning subcommands

    _check_budget(args)
    _threads(args)
    train, test = _read(args.train), _read(args.test)
    sink = open(args.trials_log, "w", encoding="utf-8") if args.trials_log else None

    def on_trial(rec) -> None:
        if sink is not None:
            sink.write(json.dumps(rec.to_dict(), default=float) + "\n")
            sink.flush()

    try:
        out = select(train, test, timeout=args.timeout, seed=args.seed, valid_days=args.valid_days,
                     progress=not args.quiet, log=None if not args.quiet else (lambda msg: None), on_trial=on_trial)
    finally:
        if sink is not None:
            sink.close()
    model = out.pop("model")
    if args.save:
        model.save(args.save)
        out["saved"] = args.save
    test_metrics = out.pop("test")
    return {"kind": out["kind"], **_round(test_metrics), "params": out["params"], **out}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m recommendations.gru4rec", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prep", help="standard preprocessing and time split of a raw event log")
    p.add_argument("raw")
    p.add_argument("outdir")
    p.add_argument("--test-days", type=float, default=1)
    p.add_argument("--min-item-support", type=int, default=5)
    p.set_defaults(func=cmd_prep)

    def common(q):
        q.add_argument("-m", "--cutoffs", type=int, nargs="+", default=[1, 5, 10, 20])
        q.add_argument("--ties", choices=["conservative", "standard", "median"], default="conservative")
        q.add_argument("--device", default="cpu", help="cpu or cuda")
        q.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")

    p = sub.add_parser("train", help="train GRU4Rec (or a baseline) and optionally evaluate and save it")
    p.add_argument("train")
    p.add_argument("--test")
    p.add_argument("-p", "--params", default="", help="e.g. loss=cross-entropy,layers=100,batch_size=32")
    p.add_argument("--model", choices=["gru4rec", *BASELINE_KINDS, "hybrid"], default="gru4rec")
    p.add_argument("--save", help="GRU4Rec: a .safetensors file; baselines and hybrid: a folder")
    p.add_argument("--knn-params", help="V-SKNN (vsknn, hybrid): e.g. k=200,sample_size=500,similarity=cosine,"
                                        "weighting=linear")
    p.add_argument("--weight", type=float, help="hybrid: V-SKNN's share in [0, 1] (with --fusion: no validation fit)")
    p.add_argument("--fusion", choices=["rrf", "minmax"], help="hybrid: the fusion (with --weight)")
    p.add_argument("--fusion-params", help="hybrid, with --fusion: e.g. c=60,depth=100")
    p.add_argument("--valid-days", type=float, default=1, help="hybrid: days cut off TRAIN to choose the weight")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="override n_epochs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="Recall@N / MRR@N of a saved model on a test file")
    p.add_argument("model")
    p.add_argument("test")
    common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("inspect", help="parameters, catalogue, training range, metrics, items")
    p.add_argument("model")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--neighbours", type=int, default=3)
    p.set_defaults(func=cmd_inspect)

    def tuning(q):
        q.add_argument("--valid-days", type=float, default=1.0,
                       help="validation days cut from the end of TRAIN (every choice is made on them)")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
        q.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("tune", help="search the settings of GRU4Rec, V-SKNN and the hybrid on validation days")
    p.add_argument("train")
    p.add_argument("--trials", type=int, required=True, help="trials in all (earlier ones of --resume included)")
    p.add_argument("--timeout", type=float, default=None, help="seconds; ends the search early")
    p.add_argument("--kinds", nargs="+", default=["gru4rec", "vsknn", "hybrid"], help="gru4rec vsknn hybrid")
    p.add_argument("--resume", help="JSON-lines file of trials: read as earlier trials, each new trial appended")
    tuning(p)
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("select", help="choose kind and settings on TRAIN, retrain the winner, evaluate on TEST")
    p.add_argument("train")
    p.add_argument("--test", required=True)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for the search (default 600)")
    p.add_argument("--save", help="write the retrained winner (GRU4Rec: a file; V-SKNN, hybrid: a folder)")
    p.add_argument("--trials-log", help="write every trial of the search to this JSON-lines file")
    tuning(p)
    p.set_defaults(func=cmd_select)
    return ap


def _check_device(name: str) -> None:
    """A clear error for a device this machine cannot use, before any data is read."""
    import torch

    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r}: expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available to this torch build "
                         f"({torch.__version__}); use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: expected cpu, cuda or cuda:N")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "device", None):
            _check_device(args.device)
        result = args.func(args)
    except (ValueError, OSError) as exc:
        _log(f"error: {exc}")
        _emit({"error": str(exc)})
        return 2
    except Exception as exc:  # CheckpointError, TrainingDiverged: clear message, no traceback
        name = type(exc).__name__
        if name not in ("CheckpointError", "TrainingDiverged", "DataFormatError"):
            raise
        _log(f"error: {exc}")
        _emit({"error": str(exc), "type": name})
        return 2
    _emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
