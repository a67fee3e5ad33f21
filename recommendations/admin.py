"""Staff admin for the model registry: metrics side by side and as charts (offline beside the
baselines, online results over time), activate / roll back / retrain / compare, training runs with
a live loss chart and their three versions side by side, each version's online performance
(impressions, clicks, CTR, add-to-cart, orders attributed to its recommendations), tuning runs
(start / stop / resume, every trial, the objective chart, the best parameters so far) and the
shop's training settings."""
import threading

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from tracking.selectors import recommendation_outcomes

from . import admin_charts, engine, experimenting, registry, selectors, training, tuning_runs
from .models import (Experiment, ExperimentArm, ModelActivation, ModelVersion, ShopTrainingSettings, TrainingRun,
                     TuningRun, TuningTrial)

CHART_JS = ("shop/vendor/chart-4.6.1.umd.min.js", "recommendations/admin-charts.js")

METRIC_COLUMNS = ("recall@20", "mrr@20")


def _metric(mv: ModelVersion, name: str) -> str:
    value = mv.metric(name)
    return "-" if value is None else f"{value:.4f}"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("version", "kind", "training_run_link", "status", "n_items", "recall_20", "mrr_20", "popularity_recall_20",
                    "itemknn_recall_20", "online", "online_conversions", "created", "activated_at")
    list_filter = ("kind", "status")
    search_fields = ("version",)
    actions = ["action_activate", "action_compare"]
    # The raw JSON of the parameters and metrics reads as the wrapped parameter string and the
    # metrics table (and charts) instead.
    readonly_fields = [f.name for f in ModelVersion._meta.fields if f.name not in ("parameters", "metrics")] + [
        "parameter_string", "metrics_table", "online_performance"]
    exclude = ("parameters", "metrics")
    change_list_template = "admin/recommendations/modelversion/change_list.html"
    change_form_template = "admin/recommendations/modelversion/change_form.html"

    def has_add_permission(self, request):
        return False  # versions come from training runs only

    def has_change_permission(self, request, obj=None):
        return False  # immutable; actions go through the registry

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("activated_by", "training_run")

    @admin.display(description="Run", ordering="training_run")
    def training_run_link(self, obj):
        if obj.training_run_id is None:
            return "-"
        best = ((obj.training_run.result or {}).get("best") if obj.training_run else None) == obj.version
        return format_html('<a href="{}">{}</a>{}', reverse("admin:recommendations_trainingrun_change",
                                                            args=[obj.training_run_id]),
                           obj.training_run_id, " (best)" if best else "")

    # -- deleting: never the active version (Django's own confirmation page lists it as protected,
    # for the delete button and the bulk action alike); the artifact file goes with the row.
    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected) + [
            f"{mv.version}: the active version (activate another version first)"
            for mv in objs if mv.status == ModelVersion.Status.ACTIVE
        ]
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        registry.model_version_delete(obj)

    def delete_queryset(self, request, queryset):
        for mv in queryset:
            registry.model_version_delete(mv)

    # The online figures of the versions on the page, computed once per list (not once per row),
    # per thread: one admin instance serves every request.
    _page = threading.local()

    class Media:
        js = CHART_JS

    def changelist_view(self, request, extra_context=None):
        versions = list(self.get_queryset(request)[:200])
        since = admin_charts.online_since()
        # one scan: the list's totals, and the charts' last days out of the same per-day rows
        self._page.outcomes = recommendation_outcomes([mv.version for mv in versions])
        recent = {mv.version: self._page.outcomes[mv.version] for mv in versions[:admin_charts.OFFLINE_VERSIONS]}
        extra = {"can_train": request.user.has_perm("recommendations.train_model"),
                 "can_activate": request.user.has_perm("recommendations.activate_modelversion"),
                 "active": selectors.model_version_active(),
                 "charts": [*admin_charts.offline_charts(versions), admin_charts.online_ctr_chart(recent, since)]}
        try:
            return super().changelist_view(request, {**(extra_context or {}), **extra})
        finally:
            self._page.outcomes = None

    def change_view(self, request, object_id, form_url="", extra_context=None):
        mv = self.get_object(request, object_id)
        extra = {}
        if mv is not None:
            since = admin_charts.online_since()
            self._page.outcomes = recommendation_outcomes([mv.version])
            recent = self._page.outcomes[mv.version]  # the charts read the days since ``since`` of it
            extra["charts"] = [admin_charts.version_offline_chart(mv), *admin_charts.version_online_charts(recent, since)]
        try:
            return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})
        finally:
            self._page.outcomes = None

    def _outcome(self, obj) -> dict:
        outcomes = getattr(self._page, "outcomes", None) or recommendation_outcomes([obj.version])
        return outcomes.get(obj.version) or recommendation_outcomes([obj.version])[obj.version]

    @admin.display(description="Recall@20")
    def recall_20(self, obj):
        return _metric(obj, "recall@20")

    @admin.display(description="MRR@20")
    def mrr_20(self, obj):
        return _metric(obj, "mrr@20")

    @admin.display(description="Popularity R@20")
    def popularity_recall_20(self, obj):
        value = ((obj.metrics or {}).get("baselines") or {}).get("popularity", {}).get("recall@20")
        return "-" if value is None else f"{value:.4f}"

    @admin.display(description="Item-kNN R@20")
    def itemknn_recall_20(self, obj):
        value = ((obj.metrics or {}).get("baselines") or {}).get("itemknn", {}).get("recall@20")
        return "-" if value is None else f"{value:.4f}"

    # Served impressions and clicks only (each visit, product and version once), carts and orders
    # after a click on the version's card: see tracking.selectors.recommendation_outcomes.
    @admin.display(description="Served impressions / clicks / CTR")
    def online(self, obj):
        total = self._outcome(obj)["total"]
        ctr = "-" if total["ctr"] is None else f"{total['ctr']:.2%}"
        return f"{total['impressions']} / {total['clicks']} / {ctr}"

    @admin.display(description="Add to cart / orders")
    def online_conversions(self, obj):
        total = self._outcome(obj)["total"]
        return f"{total['add_to_cart']} / {total['orders']}"

    @admin.display(description="Parameters")
    def parameter_string(self, obj):
        params = (obj.parameters or {}).get("params", obj.parameters)
        text = params if isinstance(params, str) else ", ".join(f"{k}={v}" for k, v in (params or {}).items())
        return format_html('<code style="white-space:normal;overflow-wrap:anywhere">{}</code>',
                           text.replace(",", ", ").replace(",  ", ", ") or "-")

    @admin.display(description="Offline metrics (held-out day)")
    def metrics_table(self, obj):
        rows = [("this model", (obj.metrics or {}).get("model") or {})]
        rows += [(f"baseline {k}", v) for k, v in ((obj.metrics or {}).get("baselines") or {}).items()]
        rows += [(f"same run: {k}", v) for k, v in ((obj.metrics or {}).get("others") or {}).items()]
        active = (obj.metrics or {}).get("active")
        if active:
            rows.append((f"active then: {active['version']}", active["metrics"]))
        names = [f"{m}@{c}" for c in engine.CUTOFFS for m in ("recall", "mrr")]
        head = format_html_join("", "<th>{}</th>", ((n,) for n in names))
        body = format_html_join(
            "", "<tr><th>{}</th>{}</tr>",
            ((label, format_html_join("", "<td>{}</td>", ((f"{float(m.get(n, 0)):.4f}",) for n in names)))
             for label, m in rows),
        )
        return format_html("<table><tr><th></th>{}</tr>{}</table>", head, body)

    @admin.display(description="Online performance")
    def online_performance(self, obj):
        total = self._outcome(obj)["total"]
        ctr = "-" if total["ctr"] is None else f"{total['ctr']:.2%}"
        return (f"{total['impressions']} served impressions, {total['clicks']} clicks (CTR {ctr}), "
                f"{total['add_to_cart']} added to cart and {total['orders']} orders after a click")

    # -- actions
    @admin.action(description="Activate the selected version", permissions=["activate"])
    def action_activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.WARNING)
            return
        mv = queryset.first()
        try:
            registry.model_activate(mv, user=request.user)
        except registry.ActivationRefused as exc:
            self.message_user(request, f"Not activated: {exc}", messages.ERROR)
            return
        self.message_user(request, f"{mv.version} is active; every process serves it within seconds.")

    @admin.action(description="Compare the selected versions")
    def action_compare(self, request, queryset):
        versions = list(queryset.order_by("-created")[:6])
        names = [f"{m}@{c}" for c in engine.CUTOFFS for m in ("recall", "mrr")]
        online = selectors.online_performance([v.version for v in versions])
        rows = [
            {"mv": v, "metrics": [f"{float(((v.metrics or {}).get('model') or {}).get(n, 0)):.4f}" for n in names],
             "online": online[v.version]}
            for v in versions
        ]
        context = {**self.admin_site.each_context(request), "title": "Compare model versions", "names": names,
                   "rows": rows, "opts": self.model._meta}
        return TemplateResponse(request, "admin/recommendations/modelversion/compare.html", context)

    def has_activate_permission(self, request):
        return request.user.has_perm("recommendations.activate_modelversion")

    # -- buttons above the list: retrain now, roll back
    def get_urls(self):
        return [
            path("train/", self.admin_site.admin_view(self.train_view), name="recommendations_modelversion_train"),
            path("rollback/", self.admin_site.admin_view(self.rollback_view),
                 name="recommendations_modelversion_rollback"),
            *super().get_urls(),
        ]

    def train_view(self, request):
        if request.method != "POST":
            return redirect("admin:recommendations_modelversion_changelist")
        if not request.user.has_perm("recommendations.train_model"):
            raise PermissionDenied
        try:
            run = training.training_run_queue(user=request.user)
        except training.TrainingNotQueued as exc:
            self.message_user(request, f"Training run {exc.run.pk} was not queued: {exc}", messages.ERROR)
            return redirect("admin:recommendations_modelversion_changelist")
        url = reverse("admin:recommendations_trainingrun_change", args=[run.pk])
        self.message_user(request, format_html('Training run <a href="{}">{}</a> queued.', url, run.pk))
        return redirect("admin:recommendations_modelversion_changelist")

    def rollback_view(self, request):
        if request.method != "POST":
            return redirect("admin:recommendations_modelversion_changelist")
        if not request.user.has_perm("recommendations.activate_modelversion"):
            raise PermissionDenied
        try:
            mv = registry.model_rollback(user=request.user)
        except registry.ActivationRefused as exc:
            self.message_user(request, f"Not rolled back: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"Rolled back: {mv.version} is active again.")
        return redirect("admin:recommendations_modelversion_changelist")


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "stage", "progress_percent", "created", "started_at", "finished_at", "duration")
    list_filter = ("status",)
    # log_tail and params have their own displays (the log once, in a scrolling block; the parameter
    # string wrapped, not one line wider than the page).
    readonly_fields = [f.name for f in TrainingRun._meta.fields
                       if f.name not in ("log_tail", "params", "loss_curve", "result")] + [
        "parameters", "outcome", "duration", "log"]
    exclude = ("log_tail", "params", "loss_curve", "result")
    change_form_template = "admin/recommendations/trainingrun/change_form.html"

    class Media:
        js = CHART_JS

    def get_urls(self):
        return [
            path("<int:pk>/progress/", self.admin_site.admin_view(self.progress_view),
                 name="recommendations_trainingrun_progress"),
            *super().get_urls(),
        ]

    def progress_view(self, request, pk):
        """What the run's page polls while it runs: progress, stage, the loss chart and the log."""
        run = get_object_or_404(TrainingRun, pk=pk)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        return JsonResponse(self._progress(run))

    @staticmethod
    def _progress(run: TrainingRun) -> dict:
        return {"status": run.status, "stage": run.stage, "progress": run.progress, "log_tail": run.log_tail,
                "error": run.error, "active": run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING),
                "loss_chart": admin_charts.loss_chart(run.loss_curve)}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra = {}
        if run is not None:
            progress = self._progress(run)
            extra = {"progress": progress, "progress_url": reverse("admin:recommendations_trainingrun_progress",
                                                                     args=[run.pk]),
                     # a chart while it may still come (the run is on) or once there is one
                     "charts": [progress["loss_chart"]] if progress["active"] or run.loss_curve else []}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_deleted_objects(self, objs, request):
        # A queued or running run is in a worker's hands: deleting its row would orphan the work.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected) + [
            f"training run {run.pk}: {run.status} (wait until it has finished or failed)"
            for run in objs if run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
        ]
        return deleted, counts, perms_needed, protected

    @admin.display(description="Progress")
    def progress_percent(self, obj):
        return f"{obj.progress:.0%}"

    @admin.display(description="Duration")
    def duration(self, obj):
        secs = obj.duration_seconds
        return "-" if secs is None else f"{secs:.1f} s"

    @admin.display(description="Parameters")
    def parameters(self, obj):
        return format_html('<code class="training-params" style="white-space:normal;overflow-wrap:anywhere">{}</code>',
                           obj.params.replace(",", ", ") if obj.params else "-")

    @admin.display(description="Result")
    def outcome(self, obj):
        result = obj.result or {}
        if not result:
            return "-"
        versions = result.get("versions") or {}
        links = format_html_join(", ", '<a href="{}">{}</a>', (
            (reverse("admin:recommendations_modelversion_changelist") + f"?q={v}", v) for v in versions.values()))
        activated = "activated" if result.get("activated") else "not activated"
        # The run's versions side by side on its held-out day, the baselines below them.
        names = [f"{m}@{c}" for c in engine.CUTOFFS for m in ("recall", "mrr")]
        rows = [(f"{kind}: {versions.get(kind, '-')}" + (" (best)" if versions.get(kind) == result.get("best") else ""), m)
                for kind, m in (result.get("metrics") or {}).items()]
        rows += [(f"baseline {k}", m) for k, m in (result.get("baselines") or {}).items()]
        table = format_html(
            '<table class="run-versions"><tr><th></th>{}</tr>{}</table>',
            format_html_join("", "<th>{}</th>", ((n,) for n in names)),
            format_html_join("", "<tr><th>{}</th>{}</tr>", (
                (label, format_html_join("", "<td>{}</td>", ((f"{float(m.get(n, 0)):.4f}",) for n in names)))
                for label, m in rows)))
        source = (result.get("parameters") or {}).get("source", "-")
        return format_html("best: {} ({}: {}); versions: {}; parameters: {}{}", result.get("best", "-"), activated,
                           result.get("decision", "-"), links, source, table)

    @admin.display(description="Log (last lines)")
    def log(self, obj):
        return format_html('<pre id="training-log" style="max-height:30em;overflow:auto;white-space:pre-wrap">{}</pre>',
                           obj.log_tail)


@admin.register(ModelActivation)
class ModelActivationAdmin(admin.ModelAdmin):
    """The activation history, read-only: what roll back walks back through."""

    list_display = ("at", "action", "version_name", "previous_name", "by", "undone")
    list_filter = ("action", "undone")
    search_fields = ("version_name", "previous_name")
    list_select_related = ("by",)
    readonly_fields = ("at", "action", "version", "version_name", "previous", "previous_name", "by", "undone")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _params_text(params) -> str:
    if isinstance(params, str):
        return params.replace(",", ", ")
    return ", ".join(f"{k}={v}" for k, v in (params or {}).items())


class TuningTrialInline(admin.TabularInline):
    """Every trial of the run, read-only, in order."""

    model = TuningTrial
    extra = 0
    can_delete = False
    fields = ("number", "kind", "state", "objective_value", "recall_20", "mrr_20", "epochs", "duration",
              "parameter_text", "error")
    readonly_fields = fields
    ordering = ("number",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Objective")
    def objective_value(self, obj):
        return "-" if obj.objective is None else f"{obj.objective:.4f}"

    @admin.display(description="Recall@20")
    def recall_20(self, obj):
        value = (obj.metrics or {}).get("recall@20")
        return "-" if value is None else f"{float(value):.4f}"

    @admin.display(description="MRR@20")
    def mrr_20(self, obj):
        value = (obj.metrics or {}).get("mrr@20")
        return "-" if value is None else f"{float(value):.4f}"

    @admin.display(description="Duration")
    def duration(self, obj):
        return f"{obj.duration_s:.1f} s"

    @admin.display(description="Parameters")
    def parameter_text(self, obj):
        return format_html('<code style="white-space:normal;overflow-wrap:anywhere">{}</code>', _params_text(obj.params))


@admin.register(TuningRun)
class TuningRunAdmin(admin.ModelAdmin):
    """Tuning runs: start one (trials, time budget), stop it, resume it; each run's trials, the
    objective chart and the best parameters so far. Buttons need the tune_model permission."""

    list_display = ("id", "status", "trials_done", "best_summary", "requested_by", "created", "finished_at", "elapsed")
    list_filter = ("status",)
    list_select_related = ("requested_by",)
    readonly_fields = ("status", "trials", "timeout", "data_path", "requested_by", "created", "started_at",
                       "heartbeat_at", "finished_at", "elapsed", "error", "best_parameters", "log")
    exclude = ("best", "log_tail", "elapsed_s")
    inlines = [TuningTrialInline]
    change_form_template = "admin/recommendations/tuningrun/change_form.html"
    change_list_template = "admin/recommendations/tuningrun/change_list.html"

    class Media:
        js = CHART_JS

    def has_add_permission(self, request):
        return False  # the Start button queues a run through tuning_runs

    def has_change_permission(self, request, obj=None):
        return False

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected) + [f"tuning run {run.pk}: {run.status} (stop it first)"
                                       for run in objs if run.is_active]
        return deleted, counts, perms_needed, protected

    def _can_tune(self, request) -> bool:
        return request.user.has_perm("recommendations.tune_model")

    def get_urls(self):
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name="recommendations_tuningrun_start"),
            path("<int:pk>/stop/", self.admin_site.admin_view(self.stop_view), name="recommendations_tuningrun_stop"),
            path("<int:pk>/resume/", self.admin_site.admin_view(self.resume_view),
                 name="recommendations_tuningrun_resume"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"can_tune": self._can_tune(request), "active_run": selectors.tuning_run_active(),
                 "current_settings": selectors.training_settings_current(), "max_trials": tuning_runs.MAX_TRIALS,
                 "min_trials": tuning_runs.MIN_TRIALS}
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra = {}
        if run is not None:
            extra = {"can_tune": self._can_tune(request),
                     "charts": [admin_charts.tuning_chart(selectors.tuning_trials(run))],
                     "can_stop": run.status in (TuningRun.Status.QUEUED, TuningRun.Status.RUNNING),
                     "can_resume": run.status in (TuningRun.Status.STOPPED, TuningRun.Status.FAILED),
                     "run_active": run.is_active}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    # -- the buttons (POST only, CSRF by the admin, permission-checked)
    def _post_or_redirect(self, request, to):
        if request.method != "POST":
            return redirect(to)
        if not self._can_tune(request):
            raise PermissionDenied
        return None

    def start_view(self, request):
        back = "admin:recommendations_tuningrun_changelist"
        early = self._post_or_redirect(request, back)
        if early is not None:
            return early
        trials, timeout = request.POST.get("trials", "").strip(), request.POST.get("timeout", "").strip()
        errors = []
        if not (trials.isascii() and trials.isdigit()):
            errors.append(f"trials: a whole number from {tuning_runs.MIN_TRIALS} to {tuning_runs.MAX_TRIALS} "
                          f"(got {trials!r})")
        if timeout and not (timeout.isascii() and timeout.isdigit()):
            errors.append(f"time budget: a whole number of seconds, or empty for none (got {timeout!r})")
        if errors:
            self.message_user(request, "Not started: " + "; ".join(errors), messages.ERROR)
            return redirect(back)
        try:
            run = tuning_runs.tuning_run_queue(user=request.user, trials=int(trials),
                                               timeout=int(timeout) if timeout else None)
        except (tuning_runs.TuningBusy, tuning_runs.TuningRefused) as exc:
            self.message_user(request, f"Not started: {exc}", messages.ERROR)
            return redirect(back)
        except tuning_runs.TuningNotQueued as exc:
            self.message_user(request, f"Tuning run {exc.run.pk} was not queued: {exc}", messages.ERROR)
            return redirect(back)
        self.message_user(request, format_html('Tuning run <a href="{}">{}</a> queued.',
                                               reverse("admin:recommendations_tuningrun_change", args=[run.pk]), run.pk))
        return redirect("admin:recommendations_tuningrun_change", run.pk)

    def stop_view(self, request, pk):
        back = reverse("admin:recommendations_tuningrun_change", args=[pk])
        early = self._post_or_redirect(request, back)
        if early is not None:
            return early
        run = get_object_or_404(TuningRun, pk=pk)
        try:
            run = tuning_runs.tuning_run_stop(run, user=request.user)
        except tuning_runs.TuningRefused as exc:
            self.message_user(request, f"Not stopped: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"Tuning run {run.pk} is {run.status}; resume it later to continue.")
        return redirect(back)

    def resume_view(self, request, pk):
        back = reverse("admin:recommendations_tuningrun_change", args=[pk])
        early = self._post_or_redirect(request, back)
        if early is not None:
            return early
        run = get_object_or_404(TuningRun, pk=pk)
        try:
            run = tuning_runs.tuning_run_resume(run, user=request.user)
        except (tuning_runs.TuningBusy, tuning_runs.TuningRefused) as exc:
            self.message_user(request, f"Not resumed: {exc}", messages.ERROR)
        except tuning_runs.TuningNotQueued as exc:
            self.message_user(request, f"Tuning run {exc.run.pk} was not queued: {exc}", messages.ERROR)
        else:
            self.message_user(request, f"Tuning run {run.pk} queued again; it continues from its stored trials.")
        return redirect(back)

    # -- displays
    @admin.display(description="Trials done / requested")
    def trials_done(self, obj):
        return f"{obj.trial_rows.count()} / {obj.trials}"

    @admin.display(description="Best so far")
    def best_summary(self, obj):
        best = (obj.best or {}).get("overall")
        return "-" if not best else f"{best['kind']} #{best['number']}: {best['objective']:.4f}"

    @admin.display(description="Time spent")
    def elapsed(self, obj):
        return f"{obj.elapsed_s:.0f} s"

    @admin.display(description="Best parameters so far (validation)")
    def best_parameters(self, obj):
        best = obj.best or {}
        order = [k for k in ("overall", "gru4rec", "vsknn", "hybrid") if k in best]
        if not order:
            return "-"
        return format_html("<table>{}</table>", format_html_join("", (
            '<tr><th>{}</th><td>{} trial {}</td><td>objective {}</td><td>R@20 {} / MRR@20 {}</td>'
            '<td><code style="white-space:normal;overflow-wrap:anywhere">{}</code></td></tr>'), (
            (k, best[k]["kind"], best[k]["number"], f"{best[k]['objective']:.4f}",
             f"{float(best[k]['metrics'].get('recall@20', 0)):.4f}", f"{float(best[k]['metrics'].get('mrr@20', 0)):.4f}",
             _params_text(best[k]["params"])) for k in order)))

    @admin.display(description="Log (last lines)")
    def log(self, obj):
        return format_html('<pre id="tuning-log" style="max-height:30em;overflow:auto;white-space:pre-wrap">{}</pre>',
                           obj.log_tail)


class TrainingSettingsForm(forms.ModelForm):
    """New training settings by hand (a new row; the current ones are the initial values), checked
    by the engine through ``training.training_settings_check``: each bad field is named."""

    gru4rec = forms.CharField(label="GRU4Rec parameters", widget=forms.Textarea(attrs={"rows": 3, "cols": 100}),
                              help_text="a parameter string, e.g. loss=cross-entropy,layers=100,n_epochs=10")
    vsknn = forms.JSONField(label="V-SKNN settings", help_text='e.g. {"k": 100, "sample_size": 500, '
                            '"similarity": "cosine", "weighting": "linear"}')
    hybrid = forms.JSONField(label="Hybrid weight and fusion", required=False,
                             help_text='e.g. {"weight": 0.7, "fusion": "rrf", "c": 60}; empty: learnt at each training run')

    class Meta:
        model = ShopTrainingSettings
        fields = ("kind",)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.settings = training.training_settings_check(data["gru4rec"], data["vsknn"], data.get("hybrid") or None)
        except ValueError as exc:
            for name, message in exc.args[0].items():
                self.add_error(name, message)
        return data


@admin.register(ShopTrainingSettings)
class ShopTrainingSettingsAdmin(admin.ModelAdmin):
    """The shop's training parameters, newest first (the first row is current; the history stays).
    Rows are never changed: a tuning run or a user with the tune_model permission adds a new one."""

    list_display = ("set_at", "kind", "set_by", "tuning_run", "gru4rec_params", "vsknn_params", "hybrid_params")
    list_select_related = ("set_by", "tuning_run")
    readonly_fields = ("set_at", "kind", "set_by", "tuning_run", "gru4rec_params", "vsknn_params", "hybrid_params",
                       "validation")
    exclude = ("params", "metrics")
    form = TrainingSettingsForm

    def has_add_permission(self, request):
        return request.user.has_perm("recommendations.tune_model")

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_exclude(self, request, obj=None):
        return self.exclude if obj is not None else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["fields"] = ("kind", "gru4rec", "vsknn", "hybrid")
        return super().get_form(request, obj, change, **kwargs)

    def get_changeform_initial_data(self, request):
        current = training.training_params()
        hybrid = {k: v for k, v in (current["hybrid"] or {}).items() if k not in ("gru4rec", "vsknn")}
        return {"gru4rec": current["gru4rec"], "vsknn": current["vsknn"], "hybrid": hybrid or None}

    def save_model(self, request, obj, form, change):
        row = training.training_settings_set(**form.settings, kind=form.cleaned_data.get("kind") or "",
                                             user=request.user)
        obj.pk, obj.set_at, obj.params, obj.set_by = row.pk, row.set_at, row.params, row.set_by

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="GRU4Rec")
    def gru4rec_params(self, obj):
        return format_html('<code style="white-space:normal;overflow-wrap:anywhere">{}</code>',
                           _params_text((obj.params or {}).get("gru4rec")) or "default (MODEL_TRAIN_PARAMS)")

    @admin.display(description="V-SKNN")
    def vsknn_params(self, obj):
        return _params_text((obj.params or {}).get("vsknn")) or "default"

    @admin.display(description="Hybrid")
    def hybrid_params(self, obj):
        hybrid = (obj.params or {}).get("hybrid") or {}
        if not hybrid:
            return "learnt at each training run"
        return _params_text({k: v for k, v in hybrid.items() if k not in ("gru4rec", "vsknn")})

    @admin.display(description="Validation metrics (tuning)")
    def validation(self, obj):
        rows = obj.metrics or {}
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", (
            (k, f"objective {float(v.get('objective') or 0):.4f}",
             ", ".join(f"{n} {float(v['metrics'].get(n, 0)):.4f}" for n in engine.PRIMARY_METRICS))
            for k, v in rows.items())))


# ------------------------------------------------------------------------------ experiments
class ExperimentArmInline(admin.TabularInline):
    model = ExperimentArm
    extra = 2
    fields = ("name", "model_version", "share", "is_control")
    autocomplete_fields = ()

    def has_change_permission(self, request, obj=None):  # arms change only while the experiment is a draft
        return super().has_change_permission(request, obj) and (obj is None or obj.status == Experiment.Status.DRAFT)

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and (obj is None or obj.status == Experiment.Status.DRAFT)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == Experiment.Status.DRAFT)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """Experiments: a draft's design and arms are edited here; start, stop and promote are buttons
    (POST, the run_experiment permission); the results page shows the report with its charts."""

    list_display = ("name", "surface", "mode", "status", "arms_list", "started_at", "stopped_at", "results_link")
    list_filter = ("surface", "mode", "status")
    search_fields = ("name",)
    inlines = [ExperimentArmInline]
    fields = ("name", "surface", "mode", "alpha", "power", "mde", "baseline_rate", "status", "design",
              "memory_estimate_mb", "started_at", "started_by", "stopped_at", "stopped_by", "winner")
    readonly_fields = ("status", "design", "memory_estimate_mb", "started_at", "started_by", "stopped_at",
                       "stopped_by", "winner")
    change_form_template = "admin/recommendations/experiment/change_form.html"

    class Media:
        js = CHART_JS

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("arms__model_version")

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.status == Experiment.Status.DRAFT)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == Experiment.Status.DRAFT)

    def save_model(self, request, obj, form, change):
        if not obj.salt:
            obj.salt = experimenting.new_salt()
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="arms")
    def arms_list(self, obj):
        return ", ".join(f"{a.name} ({a.model_version.version if a.model_version_id else 'popular'}, {a.share:g})"
                         for a in obj.arms.all())

    @admin.display(description="results")
    def results_link(self, obj):
        if obj.status == Experiment.Status.DRAFT:
            return "-"
        return format_html('<a href="{}">results</a>', reverse("admin:recommendations_experiment_results", args=[obj.pk]))

    @admin.display(description="pre-registered design")
    def design(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        d = experimenting.design_summary(obj)
        return format_html(
            "{}; alpha {}, power {}, minimum detectable effect {} (relative, on a CTR of {}): {} impressions per arm "
            "for a fixed-horizon test. Models every process holds: about {} MB of the {} MB budget ({}).",
            d["test"], d["alpha"], d["power"], d["mde"], d["baseline_rate"], d["impressions_per_arm"] or "-",
            d["memory_mb"], d["memory_budget_mb"], ", ".join(d["memory_versions"]) or "none")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/results/", view(self.results_view), name="recommendations_experiment_results"),
            *(path(f"<int:pk>/{verb}/", view(self.action_view), {"verb": verb},
                   name=f"recommendations_experiment_{verb}") for verb in ("start", "stop", "promote")),
            *super().get_urls(),
        ]

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm("recommendations.run_experiment")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"can_run": self.has_run_permission(request)}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def action_view(self, request, pk, verb):
        """POST start / stop / promote (the promoted arm in ``arm``)."""
        experiment = get_object_or_404(Experiment, pk=pk)
        if request.method != "POST":
            return redirect("admin:recommendations_experiment_change", pk)
        if not self.has_run_permission(request):
            raise PermissionDenied
        try:
            if verb == "start":
                experimenting.experiment_start(experiment, user=request.user)
                self.message_user(request, f"Experiment {experiment.name} started.")
            elif verb == "stop":
                experimenting.experiment_stop(experiment, user=request.user)
                self.message_user(request, f"Experiment {experiment.name} stopped.")
            else:
                arm = experiment.arms.filter(pk=ascii_int_or_none(request.POST.get("arm"))).first()
                if arm is None:
                    self.message_user(request, "Choose an arm to promote.", messages.ERROR)
                else:
                    experimenting.experiment_promote(experiment, arm, user=request.user)
                    self.message_user(request, f"{arm.name} promoted: its model is active.")
        except experimenting.ExperimentRefused as exc:
            self.message_user(request, f"Not done: {exc}", messages.ERROR)
        return redirect("admin:recommendations_experiment_change", pk)

    def results_view(self, request, pk):
        experiment = get_object_or_404(Experiment, pk=pk)
        if not self.has_view_permission(request, experiment):
            raise PermissionDenied
        report = experimenting.experiment_report(experiment)
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": f"Results: {experiment.name}",
            "experiment": experiment, "report": report, "rows": _result_rows(report),
            "charts": admin_charts.experiment_charts(report), "can_run": self.has_run_permission(request),
            "media": self.media,
        }
        return TemplateResponse(request, "admin/recommendations/experiment/results.html", context)


def ascii_int_or_none(value) -> int | None:
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19 else None


def _fmt_rate(m: dict, scale: float = 100.0, unit: str = "%", digits: int = 2) -> str:
    value, ci = m.get("value"), m.get("ci")
    if value is None:
        return "-"
    text = f"{value * scale:.{digits}f}{unit}"
    if ci:
        text += f" [{ci[0] * scale:.{digits}f}, {ci[1] * scale:.{digits}f}]"
    return text


def _result_rows(report: dict) -> list[dict]:
    """The results table: per arm its counts, each metric with its 95% interval, and the difference
    to control with the always-valid p-value."""
    rows = []
    for a in report["arms"]:
        st = a["stats"]
        metrics = []
        for key, label, scale, unit in (("ctr", "CTR", 100.0, "%"), ("add_to_cart_rate", "add-to-cart / visit", 100.0, "%"),
                                        ("conversion", "conversion", 100.0, "%"),
                                        ("revenue_per_visit", "revenue / visit", 1.0, "")):
            m = st[key]
            diff = "control" if a["is_control"] else (
                "-" if m["difference"] is None else
                f"{m['difference'] * scale:+.2f}{unit or ''} (p {m['p_value']:.3g}{', significant' if m['significant'] else ''})")
            metrics.append({"label": label, "value": _fmt_rate(m["arm"], scale, unit), "difference": diff,
                            "significant": bool(m["significant"]) and not a["is_control"]})
        rows.append({**a, "metrics": metrics})
    return rows
