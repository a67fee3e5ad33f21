"""The command line: train -> save -> evaluate -> inspect, last stdout line is JSON; real splits."""

import pandas as pd
import pytest

from recommendations.gru4rec.__main__ import main
from recommendations.gru4rec.iterator import encode_sessions

from .conftest import SHARED_DATA, events, rule_sessions
from .logs import last_json



def test_train_evaluate_inspect(tmp_path, capsys):
    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    events(rule_sessions(200, seed=0)).to_csv(train, sep="\t", index=False)
    events(rule_sessions(40, seed=1)).to_csv(test, sep="\t", index=False)
    model = tmp_path / "m.safetensors"
    params = "loss=cross-entropy,layers=16,batch_size=8,n_sample=0,learning_rate=0.1,momentum=0.1,n_epochs=3"
    assert main(["train", str(train), "--test", str(test), "-p", params, "--save", str(model), "-q"]) == 0
    out = last_json(capsys)
    assert out["recall@1"] >= 0.95 and out["train_seconds"] > 0 and out["events_per_second"] > 0
    assert main(["evaluate", str(model), str(test), "-m", "1", "3"]) == 0
    ev = last_json(capsys)
    assert ev["recall@1"] == out["recall@1"] and "mrr@3" in ev
    assert main(["inspect", str(model), "--top", "3"]) == 0
    info = last_json(capsys)
    assert info["n_items"] == 6 and info["metrics"]["recall@1"] == out["recall@1"]
    assert len(info["popular_items"]) == 3
    with pytest.raises(SystemExit):
        main(["nope"])  # unknown subcommand: argparse exits
    assert main(["train", str(train), "-p", "nonsense_param=1"]) == 2
    assert "nonsense_param" in last_json(capsys)["error"]
    (tmp_path / "bad.safetensors").write_bytes(model.read_bytes()[:100])
    assert main(["evaluate", str(tmp_path / "bad.safetensors"), str(test)]) == 2
    assert last_json(capsys)["type"] == "CheckpointError"


@pytest.mark.skipif(not (SHARED_DATA / "splits").is_dir(), reason="../shared/data is absent (benchmark data lives outside the repo)")
def test_real_split_encodes_to_the_documented_counts():
    df = pd.read_csv(SHARED_DATA / "splits" / "yoochoose-week" / "train.tsv", sep="\t", dtype={"ItemId": str})
    items = pd.unique(df["ItemId"])
    enc = encode_sessions(df, {it: i for i, it in enumerate(items)})
    assert (enc.n_events, enc.n_sessions, len(items)) == (152_462, 37_877, 4_869)


@pytest.mark.parametrize("device, fragment", [("cuda", "no CUDA device"), ("tpu9", "expected cpu, cuda")])
def test_unusable_device_is_a_clear_error(tmp_path, capsys, monkeypatch, device, fragment):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    train = tmp_path / "train.tsv"
    events(rule_sessions(20, seed=0)).to_csv(train, sep="\t", index=False)
    assert main(["train", str(train), "-p", "layers=4,n_epochs=1", "--device", device]) == 2
    out = last_json(capsys)
    assert fragment in out["error"]
