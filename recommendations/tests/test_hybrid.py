"""The hybrid model kind in the shop: its artifact, serving and hot reload, "why these?" with each
model's share, and the training run that trains GRU4Rec, V-SKNN and their hybrid with the shop's
training settings (tuned, or the environment's default)."""
import zipfile

import pytest

from recommendations import artifacts, engine, ranking, registry, serving, training
from recommendations.gru4rec.formats import write_tsv
from recommendations.models import ModelVersion, ShopTrainingSettings, TrainingRun
from recommendations.tests.conftest import SMALL_PARAMS


def _hybrid_version(df, name, weight=0.5):
    train, test, stats = engine.events_split(df)
    gru = engine.gru4rec_train(train, SMALL_PARAMS)
    knn = engine.vsknn_train(train, **training.VSKNN_PARAMS)
    model = engine.hybrid_build(gru, knn, weight, "rrf")
    metrics = {"model": engine.evaluate("hybrid", model, test)}
    mv = registry.model_version_register(kind="hybrid", model=model, version=name, parameters={"weight": weight},
                                         metrics=metrics, train_range=stats["train"], test_range=stats["test"])
    return mv, model


@pytest.mark.django_db
def test_hybrid_is_registered_served_reloaded_and_explained(catalogue, sessions, gru_version, activate):
    mv, model = _hybrid_version(sessions, "v-hybrid")
    assert mv.kind == "hybrid" and mv.artifact.startswith("hybrid-v-hybrid-") and mv.artifact.endswith(".zip")
    # the artifact loads back as the same model (same answers)
    loaded = artifacts.model_load(mv)
    assert type(loaded).__name__ == "Hybrid" and loaded.item_ids == model.item_ids
    assert loaded.top_items([0, 1, 2], 10) == model.top_items([0, 1, 2], 10)

    activate(gru_version)
    assert serving.model_current().kind == "gru4rec"
    activate(mv)  # hot reload: the next request serves the hybrid
    bundle = serving.model_current()
    assert (bundle.version, bundle.kind) == ("v-hybrid", "hybrid")

    session = [p.pk for p in catalogue[:10]]
    result = ranking.recommend_for_session(items=session, k=6, explain=True)
    assert result.strategy == "hybrid" and result.model_version == "v-hybrid" and len(result.items) == 6
    idx = [bundle.pk_index[pk] for pk in session if pk in bundle.pk_index]
    want_idx, want_scores = bundle.engine.top_items(idx, 6 + ranking.CANDIDATE_MARGIN, exclude=idx)
    model_pks = [int(bundle.index_pk[i]) for i in want_idx][:6]
    assert result.product_ids == model_pks
    # "why these?": each model's share of each answer, as the engine's contributions give it
    shares = bundle.engine.contributions(idx, [bundle.pk_index[pk] for pk in model_pks], exclude=idx)
    rows = result.explanation["scores"]
    assert [r["shares"] for r in rows] == [{k: round(float(v), 4) for k, v in s.items()} for s in shares]
    assert all(set(r["shares"]) == {"gru4rec", "vsknn"} for r in rows)
    assert all(abs(sum(r["shares"].values()) - 1.0) < 1e-3 for r in rows)
    # asked again (the page's render, then its script): the same list and shares, no second pass
    engine_calls = []
    for name in ("top_items", "contributions"):
        fn = getattr(bundle.engine, name)
        setattr(bundle.engine, name, lambda *a, _fn=fn, _n=name, **kw: engine_calls.append(_n) or _fn(*a, **kw))
    try:
        again = ranking.recommend_for_session(items=session, k=6, explain=True)
    finally:
        for name in ("top_items", "contributions"):
            delattr(bundle.engine, name)
    assert engine_calls == [] and again.product_ids == result.product_ids
    assert again.explanation["scores"] == rows

    # similar products: the hybrid's fused neighbours
    similar = ranking.similar_items(catalogue[0], k=4)
    i0 = bundle.pk_index[catalogue[0].pk]
    near, _ = bundle.engine.similar(i0, 4 + ranking.CANDIDATE_MARGIN)
    assert similar.strategy == "hybrid-similar"
    assert similar.product_ids == [int(bundle.index_pk[j]) for j in near][:4]


@pytest.mark.django_db
def test_the_api_and_the_storefront_show_each_models_share(client, catalogue, sessions, activate):
    mv, _ = _hybrid_version(sessions, "v-hybrid")
    activate(mv)
    pks = [p.pk for p in catalogue[:5]]
    r = client.post("/api/recommendations/", {"items": pks, "k": 4, "explain": True}, content_type="application/json")
    assert r.status_code == 200, r.content
    data = r.json()
    assert data["strategy"] == "hybrid"
    assert all(set(s["shares"]) == {"gru4rec", "vsknn"} for s in data["explanation"]["scores"])
    page = client.get(f"/products/{catalogue[0].pk}/").content.decode()
    assert "Why these?" in page and "GRU4Rec " in page and "V-SKNN " in page


@pytest.mark.django_db
def test_a_hybrid_artifact_with_a_member_outside_its_folder_is_refused(tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../escape.json", "{}")
    with pytest.raises(engine.ArtifactError, match="unexpected member '../escape.json'"):
        engine.artifact_load("hybrid", bad)
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("gru4rec/.hidden", "x")
    with pytest.raises(engine.ArtifactError, match="unexpected member 'gru4rec/.hidden'"):
        engine.artifact_load("hybrid", bad)


@pytest.mark.django_db
def test_a_training_run_registers_the_three_kinds_and_activates_the_best(client, catalogue, sessions, tmp_path,
                                                                         django_capture_on_commit_callbacks):
    data = tmp_path / "events.tsv"
    write_tsv(sessions, data)
    with django_capture_on_commit_callbacks(execute=True):
        run = training.training_run_now(params=SMALL_PARAMS, data_path=str(data))
    assert run.status == "succeeded", run.error
    versions = {mv.kind: mv for mv in ModelVersion.objects.filter(training_run=run)}
    assert set(versions) == {"gru4rec", "vsknn", "hybrid"} == set(run.result["versions"])
    metrics = run.result["metrics"]
    best = max(metrics, key=lambda k: (engine.metrics_key(metrics[k]), -("gru4rec", "vsknn", "hybrid").index(k)))
    assert run.result["best"] == versions[best].version
    assert ModelVersion.objects.get(status="active") == versions[best]
    # each version's metrics are its own, with the other two of the run beside them
    for kind, mv in versions.items():
        assert mv.metrics["model"] == metrics[kind]
        assert set(mv.metrics["others"]) == {"gru4rec", "vsknn", "hybrid"} - {kind}
    hybrid = versions["hybrid"].parameters
    assert hybrid["source"] == "learnt on the last 1 training day(s)" and 0.0 <= hybrid["weight"] <= 1.0
    assert hybrid["validation"]["recall@20"] >= 0.0
    assert run.result["parameters"]["source"] == "defaults (MODEL_TRAIN_PARAMS)"
    # the admin shows the run's three versions side by side: in the registry list (with their run,
    # the best marked) and on the run's page (a row per kind with its metrics)
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("boss", password="pw"))
    html = client.get("/admin/recommendations/modelversion/").content.decode()
    run_link = f'<a href="/admin/recommendations/trainingrun/{run.pk}/change/">{run.pk}</a>'
    assert html.count(run_link) == 3 and html.count(f"{run_link} (best)") == 1
    html = client.get(f"/admin/recommendations/trainingrun/{run.pk}/change/").content.decode()
    for kind, mv in versions.items():
        label = f"{kind}: {mv.version}" + (" (best)" if kind == best else "")
        assert f"<tr><th>{label}</th><td>{metrics[kind]['recall@5']:.4f}</td>" in html, label


@pytest.mark.django_db
def test_the_next_training_run_uses_the_tuned_settings(catalogue, sessions, tmp_path, monkeypatch,
                                                       django_capture_on_commit_callbacks):
    data = tmp_path / "events.tsv"
    write_tsv(sessions, data)
    gru = engine.gru4rec_params_string(SMALL_PARAMS.replace("n_epochs=2", "n_epochs=1"))
    knn = {"k": 50, "sample_size": 300, "similarity": "cosine", "weighting": "linear"}
    row = ShopTrainingSettings.objects.create(
        kind="hybrid", params={"gru4rec": gru, "vsknn": knn,
                               "hybrid": {"weight": 0.3, "fusion": "rrf", "gru4rec": gru, "vsknn": knn}})
    learnt = []
    monkeypatch.setattr(engine, "hybrid_weight_learn", lambda *a, **k: learnt.append(a) or {"weight": 0.9})
    with django_capture_on_commit_callbacks(execute=True):
        run = training.training_run_now(data_path=str(data))
    assert run.status == "succeeded", run.error
    assert run.params == gru
    assert run.result["parameters"] == {"source": f"shop training settings {row.pk} (tuning run None)",
                                        "settings_id": row.pk}
    versions = {mv.kind: mv for mv in ModelVersion.objects.filter(training_run=run)}
    assert versions["gru4rec"].parameters == {"params": gru}
    assert versions["vsknn"].parameters == {"params": knn}
    assert versions["hybrid"].parameters["weight"] == 0.3
    assert versions["hybrid"].parameters["source"].startswith("tuned (shop training settings")
    assert learnt == []  # the tuned weight, nothing learnt
    assert "epoch 2" not in run.log_tail  # one epoch, as tuned


@pytest.mark.django_db
def test_without_tuned_settings_training_uses_the_environment_default(settings, tmp_path):
    settings.MODEL_TRAIN_PARAMS = SMALL_PARAMS
    assert training.training_params()["gru4rec"] == SMALL_PARAMS
    assert training.training_params()["vsknn"] == training.VSKNN_PARAMS
    assert training.training_params()["hybrid"] is None
    run = training.training_run_now(data_path=str(tmp_path / "missing.tsv"))
    assert run.params == SMALL_PARAMS
    ShopTrainingSettings.objects.create(params={"gru4rec": "layers=8,n_epochs=1"})
    assert TrainingRun.objects.create(params=training.training_params()["gru4rec"]).params == "layers=8,n_epochs=1"


@pytest.mark.django_db
def test_inspect_model_shows_a_hybrids_neighbours_and_checks_its_artifact(catalogue, sessions, capsys):
    from django.core.management import call_command

    mv, model = _hybrid_version(sessions, "v-hybrid")
    call_command("inspect_model", "v-hybrid", "--items", "p3", "--neighbours", "2")
    out = capsys.readouterr().out
    near = model.gru.similar_items("p3", 2)
    assert "neighbours by item embedding (cosine), 2 each:" in out
    assert all(f"{sim:6.3f}  Product {j[1:]} ({j})" in out for j, sim in near)
    assert f"artifact OK: sha256 verified, loads with {model.n_items} items" in out
