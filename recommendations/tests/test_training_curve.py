"""A training run records GRU4Rec's loss curve as it trains: a point per finished epoch and the
running epoch's progress, which the admin's training-run page charts live."""
import pytest

from recommendations.gru4rec.formats import write_tsv
from recommendations.models import TrainingRun
from recommendations.training import training_run_execute
from recommendations.tests.conftest import SMALL_PARAMS

pytestmark = pytest.mark.django_db


def test_run_records_its_loss_per_epoch_and_progress(sessions, tmp_path, monkeypatch):
    from recommendations import training

    data = tmp_path / "events.tsv"
    write_tsv(sessions, data)
    seen = []  # what the run's row held at each write: the page polls the same row
    real_save = training._Reporter.save

    def save(self, force=False):
        real_save(self, force=True)  # every progress report reaches the row (no throttling here)
        seen.append((TrainingRun.objects.get(pk=self.run.pk).progress,
                     TrainingRun.objects.get(pk=self.run.pk).loss_curve))

    monkeypatch.setattr(training._Reporter, "save", save)
    run = TrainingRun.objects.create(params=SMALL_PARAMS + ",n_epochs=3", activate=False, data_path=str(data))
    run = training_run_execute(run.pk)
    assert run.status == "succeeded", run.error
    epochs = run.loss_curve["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all(e["loss"] > 0 and e["seconds"] >= 0 for e in epochs)
    assert run.loss_curve["current"] == {"epoch": 3, "n_epochs": 3, "fraction": 1.0, "loss": epochs[-1]["loss"]}
    # Live: the row showed each epoch's point as it finished, with the progress bar moving forward.
    during = [(p, c) for p, c in seen if c.get("epochs")]
    counts = [len(c["epochs"]) for _, c in during]
    assert counts == sorted(counts) and sorted(set(counts)) == [1, 2, 3]
    progress = [p for p, _ in seen]
    assert progress == sorted(progress) and run.progress == 1.0
    assert run.result["versions"]["gru4rec"]
