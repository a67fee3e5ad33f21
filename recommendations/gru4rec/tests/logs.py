"""Small click logs for the format and session tests: written to a file, built as a frame, read back as triples."""
import json
from pathlib import Path

import pandas as pd

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def write_log(tmp_path, text, name="events.txt"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def events(rows):
    return pd.DataFrame(rows, columns=["SessionId", "ItemId", "Time"]).astype({"ItemId": str, "Time": float})


def triples(df):
    return [(s, i, t) for s, i, t in zip(df.SessionId.tolist(), df.ItemId.tolist(), df.Time.tolist())]


def last_json(capsys) -> dict:
    """The command line's result: the last line on stdout, one JSON object."""
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])
