"""Tuning and selection (tuning.py), the trainer's per-epoch hook and the tune/select CLI, on tiny logs."""
from __future__ import annotations

import json

import pytest

from recommendations.gru4rec import tuning
from recommendations.gru4rec.__main__ import main
from recommendations.gru4rec.formats import write_tsv
from recommendations.gru4rec.params import parse_params
from recommendations.gru4rec.sessions import split_by_time
from recommendations.gru4rec.trainer import fit
from recommendations.gru4rec.tuning import TrialRecord, plan_trials, select, tune

from .conftest import events, rule_sessions
from .logs import last_json

RSC15 = tuning.gru_space_values(parse_params(tuning.PUBLISHED["rsc15"]))
RR = tuning.gru_space_values(parse_params(tuning.PUBLISHED["retailrocket"]))


@pytest.fixture(scope="module")
def log():
    return events(rule_sessions(400, seed=1))


def _quiet(msg):
    pass


def test_on_epoch_hook_sees_every_epoch_and_stops_training(log):
    seen = []

    def on_epoch(epoch, model):
        seen.append((epoch, model.n_items))
        return epoch < 2  # False after the second epoch stops training

    _, history = fit(log, "layers=8,n_sample=4,n_epochs=5", progress=False, log=_quiet, on_epoch=on_epoch)
    assert seen == [(1, 6), (2, 6)]
    assert [h["epoch"] for h in history] == [1, 2]
    _, history = fit(log, "layers=8,n_sample=4,n_epochs=3", progress=False, log=_quiet)
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_plan_splits_the_trials_across_kinds():
    assert plan_trials(30, tuning.KINDS) == {"gru4rec": 23, "vsknn": 6, "hybrid": 1}
    assert plan_trials(3, tuning.KINDS) == {"gru4rec": 1, "vsknn": 1, "hybrid": 1}
    assert plan_trials(200, tuning.KINDS) == {"gru4rec": 191, "vsknn": 8, "hybrid": 1}
    assert plan_trials(4, ["vsknn"]) == {"gru4rec": 0, "vsknn": 4, "hybrid": 0}
    assert plan_trials(5, ["gru4rec", "vsknn"]) == {"gru4rec": 4, "vsknn": 1, "hybrid": 0}


@pytest.mark.parametrize("kwargs, fragment", [
    ({"trials": 0}, "trials must be an integer >= 1, got 0"),
    ({"trials": 2}, "trials must be at least 3 (one per kind: gru4rec, vsknn, hybrid), got 2"),
    ({"trials": 3, "kinds": ["gru4rec", "lstm"]}, "unknown kind(s) 'lstm'"),
    ({"trials": 3, "kinds": ["hybrid"]}, "kind hybrid fuses the best gru4rec and vsknn models"),
    ({"trials": 3, "timeout": 0}, "timeout must be a number of seconds > 0, got 0"),
    ({"trials": 3, "valid_days": -1}, "valid_days must be > 0, got -1"),
])
def test_bad_arguments_are_clear_errors(log, kwargs, fragment):
    with pytest.raises(ValueError) as exc:
        tune(log, **kwargs)
    assert fragment in str(exc.value)


def test_tune_runs_the_phases_and_reports_every_trial(log):
    got = []
    res = tune(log, trials=6, max_epochs=3, on_trial=got.append, log=_quiet)
    assert got == res.trials
    assert [(r.number, r.kind) for r in res.trials] == [
        (0, "vsknn"), (1, "gru4rec"), (2, "gru4rec"), (3, "gru4rec"), (4, "gru4rec"), (5, "hybrid")]
    # the first trials are the defaults / published settings
    assert res.trials[0].params == {"k": 200, "sample_size": 500, "similarity": "cosine", "weighting": "linear"}
    assert tuning.gru_space_values(res.trials[1].params) == RSC15
    assert tuning.gru_space_values(res.trials[2].params) == RR
    for r in res.trials[1:5]:
        assert len(r.epoch_objectives) == r.epochs <= 3
        if r.state == "complete":  # the kept epoch is the best one, and n_epochs says which
            assert r.metrics["objective"] == max(r.epoch_objectives)
            assert r.params["n_epochs"] == r.epoch_objectives.index(max(r.epoch_objectives)) + 1
    hybrid = res.trials[5]
    assert hybrid.state == "complete"
    assert hybrid.params["gru4rec"] == res.best["gru4rec"].params
    assert hybrid.params["vsknn"] == res.best["vsknn"].params
    assert set(hybrid.params) == {"weight", "fusion", "fusion_params", "gru4rec", "vsknn", "gru4rec_trial", "vsknn_trial"}
    complete = [r for r in res.trials if r.state == "complete"]
    assert res.best["overall"] is max(complete, key=lambda r: r.metrics["objective"])
    assert res.stopped is False
    # the metrics are the validation ones: R@20 and MRR@20 combine into the objective
    m = res.trials[0].metrics
    assert m["objective"] == pytest.approx((m["recall@20"] * m["mrr@20"]) ** 0.5)


def test_a_trial_below_the_median_is_pruned_at_its_first_epoch(log, monkeypatch):
    bad = dict(RSC15, learning_rate=0.01, item_lr_scale=0.1, hidden=48, batch_size=256, dropout_p_hidden=0.7)
    good = tuning.gru_params_from(RSC15).to_string()
    monkeypatch.setattr(tuning, "PUBLISHED", {"a": good, "b": good, "c": tuning.gru_params_from(bad).to_string()})
    res = tune(log, trials=3, kinds=["gru4rec"], max_epochs=3, log=_quiet)
    assert [r.state for r in res.trials] == ["complete", "complete", "pruned"]
    pruned = res.trials[2]
    assert tuning.gru_space_values(pruned.params) == bad
    assert pruned.epochs == 1 and len(pruned.epoch_objectives) == 1
    assert pruned.epoch_objectives[0] < min(r.epoch_objectives[0] for r in res.trials[:2])
    assert res.summary()["pruned"] == 1


def test_stop_ends_the_running_trial_and_the_search_resumes(log):
    polls = {"n": 0}

    def should_stop():  # polled before each trial and after each epoch
        polls["n"] += 1
        return polls["n"] > 4

    first = tune(log, trials=6, max_epochs=3, should_stop=should_stop, log=_quiet)
    assert first.stopped is True
    states = [(r.kind, r.state, r.error) for r in first.trials]
    assert states[0] == ("vsknn", "complete", "")
    assert states[-1] == ("gru4rec", "pruned", "stopped")
    assert all(r.kind != "hybrid" for r in first.trials)
    n_first = len(first.trials)

    # the earlier trials go into the new studies (the sampler sees them) ...
    prev = [TrialRecord.from_dict(json.loads(json.dumps(r.to_dict()))) for r in first.trials]
    study = tuning._study("gru4rec", 0, prev, _quiet)
    assert [t.params for t in study.trials] == [tuning.gru_space_values(r.params) for r in prev if r.kind == "gru4rec"]
    assert [t.state.name for t in study.trials] == [{"complete": "COMPLETE", "pruned": "PRUNED"}[r.state]
                                                     for r in prev if r.kind == "gru4rec"]

    # ... and are not run again: only the rest of the 6 trials runs, numbered after them
    got = []
    second = tune(log, trials=6, max_epochs=3, previous=[r.to_dict() for r in first.trials], on_trial=got.append,
                  log=_quiet)
    assert len(second.trials) == 6 and second.trials[:n_first] == first.trials
    assert got == second.trials[n_first:]
    assert [r.number for r in got] == list(range(n_first, 6))
    assert got[-1].kind == "hybrid" and second.stopped is False
    done_published = [tuning.gru_space_values(r.params) for r in second.trials if r.kind == "gru4rec"]
    assert done_published.count(RSC15) == 1  # the enqueued published settings are not repeated


def test_time_budget_still_gives_each_kind_its_first_trial(log):
    res = tune(log, trials=10, timeout=1e-3, max_epochs=3, log=_quiet)
    assert [(r.kind, r.state) for r in res.trials] == [("vsknn", "complete"), ("gru4rec", "complete"),
                                                       ("hybrid", "complete")]
    assert res.trials[1].epochs == 1  # cut at the first epoch boundary
    assert res.stopped is False


def test_trial_record_round_trip_and_errors():
    rec = TrialRecord(3, "gru4rec", {"loss": "bpr-max"}, {"objective": 0.5}, "pruned", 1.5, 2, "", [0.4, 0.5])
    assert TrialRecord.from_dict(rec.to_dict()) == rec
    with pytest.raises(ValueError, match="unknown kind 'lstm'"):
        TrialRecord.from_dict(dict(rec.to_dict(), kind="lstm"))
    with pytest.raises(ValueError, match="unknown state 'done'"):
        TrialRecord.from_dict(dict(rec.to_dict(), state="done"))
    with pytest.raises(ValueError, match="trial lacks metrics"):
        TrialRecord.from_dict({k: v for k, v in rec.to_dict().items() if k != "metrics"})


def test_select_retrains_the_winner_on_all_of_train_and_scores_test(log):
    train, test = split_by_time(log, days=1)
    out = select(train, test, timeout=30, trials=5, seed=0, log=_quiet)
    assert out["kind"] in tuning.KINDS
    assert out["validation"]["objective"] == max(v["objective"] for v in out["validation_by_kind"].values() if v)
    again = tuning.train_kind(out["kind"], out["params"], train, seed=0)
    assert out["test"] == tuning.evaluate_kind(out["kind"], again, test)
    assert set(out["seconds"]) == {"tune", "retrain", "test", "total"}



def test_cli_tune_and_select(tmp_path, log, capsys):
    train, test = split_by_time(log, days=1)
    write_tsv(train, tmp_path / "train.tsv")
    write_tsv(test, tmp_path / "test.tsv")
    trials_file = tmp_path / "trials.jsonl"
    args = ["tune", str(tmp_path / "train.tsv"), "--trials", "3", "-q", "--resume", str(trials_file)]
    assert main(args) == 0
    out = last_json(capsys)
    assert out["trials"] == 3 and out["pruned"] == 0 and out["best"]["kind"] in tuning.KINDS
    assert set(out["best"]["validation"]) >= {"recall@20", "mrr@20", "objective"}
    lines = trials_file.read_text().splitlines()
    assert [json.loads(x)["kind"] for x in lines] == ["vsknn", "gru4rec", "hybrid"]
    # resuming with more trials runs only the new ones and appends them
    assert main(["tune", str(tmp_path / "train.tsv"), "--trials", "4", "-q", "--resume", str(trials_file),
                 "--kinds", "gru4rec", "vsknn", "hybrid"]) == 0
    assert last_json(capsys)["trials"] == 4
    assert [json.loads(x)["number"] for x in trials_file.read_text().splitlines()] == [0, 1, 2, 3]

    assert main(["select", str(tmp_path / "train.tsv"), "--test", str(tmp_path / "test.tsv"),
                 "--timeout", "3", "-q", "--trials-log", str(tmp_path / "select.jsonl")]) == 0
    out = last_json(capsys)
    assert out["kind"] in tuning.KINDS and 0.0 <= out["recall@20"] <= 1.0 and 0.0 <= out["mrr@20"] <= 1.0
    assert "params" in out and "validation" in out
    logged = [json.loads(x) for x in (tmp_path / "select.jsonl").read_text().splitlines()]
    assert len(logged) == out["trials"] and [r["number"] for r in logged] == list(range(out["trials"]))


@pytest.mark.parametrize("extra, message", [
    (["--trials", "0"], "--trials must be >= 1, got 0"),
    (["--trials", "3", "--timeout", "0"], "--timeout must be > 0 seconds, got 0"),
    (["--trials", "3", "--kinds", "gru4rec", "lstm"], "unknown kind(s) 'lstm'"),
    (["--trials", "3", "--valid-days", "0"], "--valid-days must be > 0, got 0"),
])
def test_cli_bad_arguments(tmp_path, log, capsys, extra, message):
    write_tsv(log, tmp_path / "train.tsv")
    assert main(["tune", str(tmp_path / "train.tsv"), "-q", *extra]) == 2
    captured = capsys.readouterr()
    assert message in json.loads(captured.out.strip().splitlines()[-1])["error"]
    assert "Traceback" not in captured.err


def test_cli_resume_file_with_a_bad_line(tmp_path, log, capsys):
    write_tsv(log, tmp_path / "train.tsv")
    (tmp_path / "t.jsonl").write_text('{"number": 0}\n', encoding="utf-8")
    assert main(["tune", str(tmp_path / "train.tsv"), "--trials", "3", "-q", "--resume", str(tmp_path / "t.jsonl")]) == 2
    assert "t.jsonl line 1: not a trial (trial lacks" in last_json(capsys)["error"]
