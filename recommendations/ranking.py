"""Ranking: what the shop shows. Next products for a live session, similar products, and the
popular fallback when no model answers. Reads the served model (``serving``), the catalogue
through the process cache (``caches``) and tracking's inputs (``selectors``).

Extension hooks (the clusters app registers itself; this module never imports it):
:func:`candidate_source_register` adds a faster candidate search for large catalogues (ANN), and
:func:`diversifier_register` the per-cluster cap behind ``cap_per_cluster``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field


from catalog.models import Product

from . import caches, selectors, serving
from .experiments import assignment, interleaving
from .serving import ArmSpec, ExperimentSpec, LoadedModel, model_current

logger = logging.getLogger(__name__)

# Extra candidates asked of the model so that products deactivated since the model was loaded
# can be dropped and exactly k still come back.
CANDIDATE_MARGIN = 8

# name -> fn(bundle, idx, n, exclude_seen) -> (indices, scores) or None when it does not apply
_CANDIDATE_SOURCES: dict[str, Callable] = {}
# fn(bundle, indices, scores, k, cap_per_cluster) -> (indices, scores)
_DIVERSIFIER: Callable | None = None


def candidate_source_register(name: str, source: Callable) -> None:
    """Register ``source(bundle, idx, n, exclude_seen)``: model candidates found faster than by
    scoring the whole catalogue, or None when it does not apply (the exact path answers then)."""
    _CANDIDATE_SOURCES[name] = source


def diversifier_register(fn: Callable | None) -> None:
    """Register ``fn(bundle, indices, scores, k, cap_per_cluster) -> (indices, scores)``; without
    one, ``cap_per_cluster`` is ignored (no clusters to cap by)."""
    global _DIVERSIFIER
    _DIVERSIFIER = fn


@dataclass
class ScoredProduct:
    product: Product
    score: float
    # Set on the items of an experiment's answer: the version and event source the item's
    # served-item token binds (in interleaving each item's own arm's).
    model_version: str | None = None
    source: str | None = None


@dataclass
class RecommendationResult:
    strategy: str  # "gru4rec", "vsknn", "hybrid", "embedding", "itemknn", "hybrid-similar" or "popular"
    model_version: str | None
    items: list[ScoredProduct]
    explanation: dict | None = None
    used: list[int] = field(default_factory=list)  # session product pks the model knew
    skipped: list[int] = field(default_factory=list)  # session product pks unknown to the model
    # The experiment that answered, {"id", "arm", "mode"} (arm "interleaved" in interleaving mode);
    # None outside any experiment.
    experiment: dict | None = None

    @property
    def product_ids(self) -> list[int]:
        return [s.product.pk for s in self.items]


def _category_id(category) -> int | None:
    if category is None or category == "":
        return None
    return getattr(category, "pk", None) or int(category)


# ---------------------------------------------------------------------------- recommending
def _ann_candidates(bundle: LoadedModel, idx: list[int], n: int, exclude_seen: bool):
    """The large-catalogue path: a registered candidate source (the clusters app's ANN index in
    ``bundle.extras["retrieval"]``) answers instead of scoring every item; None when none applies."""
    for name, source in list(_CANDIDATE_SOURCES.items()):
        try:
            found = source(bundle, idx, n, exclude_seen)
        except Exception:  # the exact path below always works
            logger.exception("%s candidates failed for %s; scoring the whole catalogue", name, bundle.version)
            continue
        if found is not None:
            return found
    return None


def _model_candidates(bundle: LoadedModel, idx: list[int], n: int, exclude_seen: bool) -> tuple[list[int], list[float]]:
    """Top ``n`` model item indices (and scores) for a session given as model item indices; the
    same question to the same loaded model is answered from its :class:`caches.AnswerCache`."""
    key = ("session", tuple(idx), n, bool(exclude_seen))
    found = bundle.answers.get(key)
    if found is not None:
        return found
    found = _ann_candidates(bundle, idx, n, exclude_seen)
    if found is None:
        # Every kind answers through the engine's top_items (GRU4Rec: int8 candidates, fp32
        # re-scoring on CPU; V-SKNN: items no neighbour voted for are not answers, the popular
        # fallback fills; the hybrid: both models' candidates fused).
        found = bundle.engine.top_items(idx, n, exclude=idx if exclude_seen else None, mask=bundle.unavailable)
    found = (tuple(int(i) for i in found[0]), tuple(float(s) for s in found[1]))
    bundle.answers.put(key, found)
    return found


def recommend_for_session(
    session=None,
    items: list[int] | None = None,
    k: int = 6,
    exclude_seen: bool = True,
    explain: bool = False,
    category=None,
    cap_per_cluster: int | None = None,
    visit=None,
) -> RecommendationResult:
    """Next products for a live session: ``session`` (a tracking visit id) or ``items`` (product
    pks in order). Unknown items are skipped; with no known item or no active model the popular
    products (of ``category`` when given) answer. Never raises: failures log and fall back.
    ``cap_per_cluster``: at most that many items of one item cluster (diversity; clusters app).
    ``visit`` (default: ``session``), the tracking visit id the list is served to: while an
    experiment runs on "recommended", the visit's arm answers (or both arms interleaved)."""
    k = max(1, int(k))
    category_id = None
    try:
        category_id = _category_id(category)
        if items is None:
            items = selectors.session_product_ids(session) if session else []
        items = [int(i) for i in items]
        chosen = _experiment_arms("recommended", visit if visit is not None else session)
        if chosen is not None:
            def answer(arm: ArmSpec) -> RecommendationResult:
                if arm.version is None:
                    return _recommend_popular(k, items, exclude_seen, explain, category_id,
                                              "the experiment's popular arm", None, [], list(items))
                return _recommend_model(serving.bundle_for(arm.version), items, k, exclude_seen, explain,
                                        category_id, cap_per_cluster)

            return _experiment_answer(*chosen, answer, ("session", *items), k, explain)
        bundle = model_current()
        if bundle is not None:
            return _recommend_model(bundle, items, k, exclude_seen, explain, category_id, cap_per_cluster)
        reason = "no active model"
        used, skipped = [], list(items)
    except Exception:
        logger.exception("recommendation failed; answering with popular items")
        reason = "the model failed; popular items answer"
        used, skipped = [], list(items or [])
    return _recommend_popular(k, items or [], exclude_seen, explain, category_id, reason, None, used, skipped)


# ----------------------------------------------------------------------------- experiments
def _experiment_arms(surface: str, visit) -> tuple[ExperimentSpec, str, list[ArmSpec]] | None:
    """The running experiment of ``surface`` and the arms that answer ``visit``: its arm by the
    salted hash of its id (A/B), or the two arms (interleaving). None when no experiment runs, no
    visit is known, or an arm's model is not loaded in this process (the active model answers, and
    nothing is attributed to the experiment). A hash and dict lookups: no database access."""
    if not visit:
        return None
    spec = serving.experiment_running(surface)
    if spec is None or not spec.arms:
        return None
    key = str(visit).lower()
    if spec.mode == "interleaving":
        arms = list(spec.arms[:2])
    else:
        arms = [spec.arms[assignment.arm_for(key, spec.salt, spec.shares)]]
    if any(a.version and serving.bundle_for(a.version) is None for a in arms):
        return None
    return spec, key, arms


def _interleaving_seed(salt: str, visit: str, context: tuple) -> str:
    """The team draft's coin flips, fixed for a visit and what it looks at: a reload shows the same list."""
    return "|".join([salt, visit, *map(str, context)])


def _experiment_answer(spec: ExperimentSpec, visit: str, arms: list[ArmSpec], answer: Callable,
                       context: tuple, k: int, explain: bool = False) -> RecommendationResult:
    """The experiment's answer: the arm's list (A/B) or the team-draft interleaving of the two arms'
    lists, each item stamped with the version and event source (surface, experiment, arm) its
    served-item token binds, so its events count for that arm only."""
    if len(arms) == 1:
        arm = arms[0]
        result = answer(arm)
        source = spec.source(arm)
        for s in result.items:
            s.model_version, s.source = result.model_version, source
        result.experiment = {"id": spec.pk, "arm": arm.name, "mode": spec.mode}
        if result.explanation is not None:
            result.explanation["experiment"] = dict(result.experiment)
        return result
    results = [answer(arm) for arm in arms]
    pks, teams = interleaving.team_draft(results[0].product_ids, results[1].product_ids, k,
                                         _interleaving_seed(spec.salt, visit, context))
    by_pk = [{s.product.pk: s for s in r.items} for r in results]
    chosen = []
    for pk, team in zip(pks, teams):
        team = int(team)
        found = by_pk[team].get(pk) or by_pk[1 - team][pk]
        chosen.append(ScoredProduct(found.product, found.score, model_version=results[team].model_version,
                                    source=spec.source(arms[team])))
    first = results[0]
    result = RecommendationResult("interleaved", None, chosen, used=first.used, skipped=first.skipped,
                                  experiment={"id": spec.pk, "arm": "interleaved", "mode": spec.mode})
    if explain:
        result.explanation = {
            "strategy": "interleaved", "reason": f"team-draft interleaving of {arms[0].name} and {arms[1].name}",
            "model_version": None, "session_items_used": first.used, "session_items_skipped": first.skipped,
            "experiment": dict(result.experiment),
            "scores": [{"product": s.product.pk, "name": s.product.name, "score": s.score,
                        "model_version": s.model_version} for s in chosen],
        }
    return result


def _recommend_model(bundle, items, k, exclude_seen, explain, category_id, cap_per_cluster=None) -> RecommendationResult:
    idx, used, skipped = [], [], []
    for pk in items:
        i = bundle.pk_index.get(pk)
        if i is None:
            skipped.append(pk)
        else:
            idx.append(i)
            used.append(pk)
    if not idx:
        reason = "no item of the session is known to the model" if items else "empty session"
        return _recommend_popular(k, items, exclude_seen, explain, category_id, reason, bundle.version, used, skipped)
    n = k + CANDIDATE_MARGIN
    cand, scores = _model_candidates(bundle, idx, 4 * n if cap_per_cluster else n, exclude_seen)
    if cap_per_cluster and _DIVERSIFIER is not None:  # a wider list, then at most cap_per_cluster per cluster
        cand, scores = _DIVERSIFIER(bundle, cand, scores, n, cap_per_cluster)
    pks = [int(bundle.index_pk[i]) for i in cand]
    products = caches.products_active(pks)
    chosen = [ScoredProduct(products[pk], s) for pk, s in zip(pks, scores) if pk in products][:k]
    shares = _shares(bundle, idx, chosen, exclude_seen) if explain else {}
    strategy = bundle.kind
    reason = f"{bundle.kind} scored the catalogue after {len(used)} session item(s)"
    if len(chosen) < k:
        seen = set(items) if exclude_seen else set()
        fill = _popular_scored(k - len(chosen), category_id, seen | {s.product.pk for s in chosen})
        if fill:
            reason += f"; {len(fill)} popular item(s) filled the rest"
        chosen += fill
    result = RecommendationResult(strategy, bundle.version, chosen, used=used, skipped=skipped)
    if explain:
        result.explanation = _explanation(result, reason, exclude_seen, shares)
    return result


def _shares(bundle: LoadedModel, idx: list[int], chosen: list[ScoredProduct], exclude_seen: bool) -> dict[int, dict]:
    """For a hybrid: each answered product's share of each model in its fused score (product pk ->
    {"gru4rec": share, "vsknn": share}, the engine's ``contributions``); empty for other kinds."""
    contributions = getattr(bundle.engine, "contributions", None)
    if contributions is None or not chosen:
        return {}
    pks = [s.product.pk for s in chosen]
    items = tuple(bundle.pk_index[pk] for pk in pks)
    key = ("shares", tuple(idx), items, bool(exclude_seen))
    out = bundle.answers.get(key)
    if out is None:
        try:
            out = contributions(idx, list(items), exclude=idx if exclude_seen else None, mask=bundle.unavailable)
        except Exception:  # the explanation is extra: the answer stands without it
            logger.exception("contributions failed for %s", bundle.version)
            return {}
        bundle.answers.put(key, out)
    return {pk: {name: round(float(v), 4) for name, v in share.items()} for pk, share in zip(pks, out)}


def _popular_scored(k: int, category_id: int | None, exclude: set[int]) -> list[ScoredProduct]:
    pks = selectors.popular_product_ids(k, category_id=category_id, exclude=exclude)
    products = caches.products_active(pks)
    ordered = [products[pk] for pk in pks if pk in products]
    if len(ordered) < k:  # some popular ones were inactive: top up from the catalogue
        more = selectors.popular_product_ids(k - len(ordered), None, exclude | {p.pk for p in ordered} | set(pks))
        extra = caches.products_active(more)
        ordered += [extra[pk] for pk in more if pk in extra]
    # Popularity rank as the score: 1, 1/2, 1/3, ... (tracking's counts are not comparable across windows).
    return [ScoredProduct(p, round(1.0 / (r + 1), 6)) for r, p in enumerate(ordered[:k])]


def _recommend_popular(k, items, exclude_seen, explain, category_id, reason, version, used, skipped):
    exclude = set(items) if exclude_seen else set()
    chosen = _popular_scored(k, category_id, exclude)
    if category_id:
        reason += "; popular items of the current category first"
    result = RecommendationResult("popular", version, chosen, used=used, skipped=skipped)
    if explain:
        result.explanation = _explanation(result, reason, exclude_seen)
    return result


def _explanation(result: RecommendationResult, reason: str, exclude_seen: bool, shares: dict | None = None) -> dict:
    scores = [{"product": s.product.pk, "name": s.product.name, "score": s.score} for s in result.items]
    if shares:  # a hybrid: each model's share of each of its answers (popular fill-ins have none)
        for row in scores:
            row["shares"] = shares.get(row["product"])
    return {
        "strategy": result.strategy,
        "reason": reason,
        "model_version": result.model_version,
        "session_items_used": result.used,
        "session_items_skipped": result.skipped,
        "exclude_seen": exclude_seen,
        "scores": scores,
    }


def similar_items(product: Product | int, k: int = 6, visit=None) -> RecommendationResult:
    """Nearest products by the active model's item embeddings (cosine); item-kNN co-occurrence for
    V-SKNN models; both fused for a hybrid; popular items of the product's category when the model does not know it.
    ``visit``: the tracking visit id the list is served to (an experiment on "similar" answers
    with the visit's arm, or both arms interleaved)."""
    k = max(1, int(k))
    if visit:
        try:
            chosen = _experiment_arms("similar", visit)
            if chosen is not None:
                pk = product.pk if isinstance(product, Product) else int(product)
                return _experiment_answer(*chosen, lambda arm: _similar(product, k, arm.version, arm=True),
                                          ("similar", pk), k)
        except Exception:
            logger.exception("experiment answer failed; the active model answers")
    return _similar(product, k, None)


def _similar(product: Product | int, k: int, version: str | None, arm: bool = False) -> RecommendationResult:
    """Similar items by the active model (``arm`` False) or by an experiment arm's ``version``
    (None: the popular arm)."""
    pk = product.pk if isinstance(product, Product) else int(product)
    category_id = product.category_id if isinstance(product, Product) else None
    bundle = None
    try:
        bundle = serving.bundle_for(version) if arm else model_current()
        i = bundle.pk_index.get(pk) if bundle is not None else None
        if i is not None:
            cand, scores, strategy = _similar_candidates(bundle, i, k + CANDIDATE_MARGIN)
            pks = [int(bundle.index_pk[j]) for j in cand]
            products = caches.products_active(pks)
            chosen = [ScoredProduct(products[p], s) for p, s in zip(pks, scores) if p in products][:k]
            if len(chosen) < k:
                chosen += _popular_scored(k - len(chosen), category_id, {pk} | {s.product.pk for s in chosen})
            return RecommendationResult(strategy, bundle.version, chosen, used=[pk])
    except Exception:
        logger.exception("similar items failed; answering with popular items")
    if category_id is None:
        category_id = Product.objects.filter(pk=pk).values_list("category_id", flat=True).first()
    chosen = _popular_scored(k, category_id, {pk})
    return RecommendationResult("popular", bundle.version if bundle else None, chosen, skipped=[pk])


def _similar_candidates(bundle: LoadedModel, i: int, n: int) -> tuple[list[int], list[float], str]:
    # GRU4Rec: cosine of item embeddings; V-SKNN: item-kNN on its session matrix; the hybrid: both
    # lists fused (all in the engine).
    key = ("similar", int(i), n)
    found = bundle.answers.get(key)
    if found is None:
        out_i, out_s = bundle.engine.similar(i, n, mask=bundle.unavailable)
        found = (tuple(int(j) for j in out_i), tuple(float(s) for s in out_s))
        bundle.answers.put(key, found)
    return found[0], found[1], _SIMILAR_STRATEGY.get(bundle.kind, bundle.kind)


_SIMILAR_STRATEGY = {"gru4rec": "embedding", "vsknn": "itemknn", "hybrid": "hybrid-similar"}
