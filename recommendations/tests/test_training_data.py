"""Training reads the shop's sessions in memory: the same events, split and values as the TSV export."""
import pandas as pd

from recommendations.gru4rec.formats import read_events
from recommendations.models import TrainingRun
from recommendations.training import events_for_run
from tracking.services import sessions_export
from tracking.tests.test_export import small_case  # noqa: F401 (fixture)


def test_training_frames_equal_the_exported_files(small_case, tmp_path):  # noqa: F811
    train, test, stats = events_for_run(TrainingRun(params=""))
    sessions_export(tmp_path, test_days=1, event_types=("view", "click"))
    pd.testing.assert_frame_equal(train, read_events(tmp_path / "train.tsv"))
    pd.testing.assert_frame_equal(test, read_events(tmp_path / "test.tsv"))
    assert train["ItemId"].tolist() == list("ABCABCCABC")  # external ids: what the models name items by
    assert (stats["train"]["events"], stats["train"]["sessions"], stats["test"]["events"]) == (10, 4, 3)
