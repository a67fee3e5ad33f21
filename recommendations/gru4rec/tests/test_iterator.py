import numpy as np
import torch

from recommendations.gru4rec.iterator import device_plan, encode_sessions, plan_epoch

from .conftest import events


def _offsets(lengths):
    return np.r_[0, np.cumsum(lengths)].astype(np.int64)


def test_every_transition_once_and_reset_exactly_on_session_change():
    lengths = [3, 2, 5, 2, 4, 3, 2]
    off = _offsets(lengths)
    plan = plan_epoch(off, batch_size=3)
    # each (input, target) pair is a consecutive pair inside one session, each exactly once
    pairs = sorted(zip(plan.inputs.tolist(), plan.targets.tolist()))
    expected = sorted((i, i + 1) for s in range(len(lengths)) for i in range(off[s], off[s + 1] - 1))
    assert pairs == expected
    # the hidden state is reset (mult 0) on the first transition of every session, nowhere else
    first = {int(off[s]) for s in range(len(lengths))}
    for inp, mult in zip(plan.inputs.tolist(), plan.keep_mult.tolist()):
        assert mult == (0.0 if inp in first else 1.0)
    # within a slot, steps follow the session in order
    assert set(plan.slot_session.tolist()) == set(range(len(lengths)))


def test_slots_keep_state_and_new_sessions_take_finished_slots():
    off = _offsets([2, 4, 3])  # batch 2: session 0 ends after one step, session 2 takes slot 0
    plan = plan_epoch(off, batch_size=2)
    steps = [list(zip(plan.inputs[a:b], plan.keep_mult[a:b]))
             for a, b in zip(plan.step_offsets[:-1], plan.step_offsets[1:])]
    assert steps[0] == [(0, 0.0), (2, 0.0)]
    assert steps[1] == [(6, 0.0), (3, 1.0)]  # slot 0 reset (new session 2), slot 1 keeps its state
    assert steps[2] == [(7, 1.0), (4, 1.0)]


def test_batch_shrinks_when_no_session_is_left():
    off = _offsets([2, 5, 3])
    plan = plan_epoch(off, batch_size=2)
    sizes = np.diff(plan.step_offsets).tolist()
    assert sizes == [2, 2, 2, 1]  # the slot of session 2 drops out after its 2 transitions
    (step, keep), = plan.shrink.items()
    assert step == 3 and keep.tolist() == [1]  # slot 1 (session 1) survives
    assert plan.inputs[plan.step_offsets[3]:].tolist() == [5]


def test_sessions_ordered_by_first_event_and_unknown_items_dropped():
    df = events([["a", "b"], ["c", "d", "x"], ["x", "a"]])
    df.loc[df.SessionId == 1, "Time"] -= 10_000  # session 1 starts first
    enc = encode_sessions(df, {"a": 0, "b": 1, "c": 2, "d": 3})
    assert enc.session_ids.tolist() == [1, 0]  # session 2 became length 1 and is dropped
    assert enc.items.tolist() == [2, 3, 0, 1]


def test_device_plan_maps_positions_to_items():
    df = events([["a", "b", "c"], ["b", "c"]])
    enc = encode_sessions(df, {"a": 0, "b": 1, "c": 2})
    dp = device_plan(enc, 2, "cpu")
    assert dp.inputs.tolist() == [0, 1, 1] and dp.targets.tolist() == [1, 2, 2]
    assert dp.keep_mult.shape == (3, 1) and dp.keep_mult.dtype == torch.float32
