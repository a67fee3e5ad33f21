"""Recommendations data: the model registry (one row per trained artifact), training runs, tuning
runs with their trials, and the shop's training settings (what tuning chose, with its history)."""
from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelVersion(models.Model):
    """One trained, immutable model artifact and what is known about it.

    The artifact file name carries its content hash and the row keeps the full sha256, so a
    process never loads a file that changed after it was registered. Exactly one row is active:
    it is the source of truth for what every process serves.
    """

    class Kind(models.TextChoices):
        GRU4REC = "gru4rec", "GRU4Rec"
        VSKNN = "vsknn", "V-SKNN (session kNN)"
        HYBRID = "hybrid", "Hybrid (GRU4Rec + V-SKNN)"

    class Status(models.TextChoices):
        READY = "ready", "Ready"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    version = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY, db_index=True)
    # The storage name in STORAGES["models"] (recommendations.artifacts), never a host path, e.g.
    # "gru4rec-20250101-030000-1a2b3c4d5e6f7a8b.safetensors".
    artifact = models.CharField(max_length=255)
    artifact_sha256 = models.CharField(max_length=64)
    artifact_size = models.BigIntegerField(default=0)
    parameters = models.JSONField(default=dict, blank=True)
    n_items = models.PositiveIntegerField("catalogue size", default=0)
    train_start = models.DateTimeField(null=True, blank=True)
    train_end = models.DateTimeField(null=True, blank=True)
    test_start = models.DateTimeField(null=True, blank=True)
    test_end = models.DateTimeField(null=True, blank=True)
    # {"model": {"recall@20": ..}, "baselines": {"popularity": {..}, "itemknn": {..}},
    #  "active": {"version": "...", "metrics": {..}} or null, "data": {split stats}}
    metrics = models.JSONField(default=dict, blank=True)
    training_run = models.ForeignKey(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="versions"
    )
    created = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created", "-id"]
        get_latest_by = "created"
        permissions = [
            ("activate_modelversion", "Can activate or roll back a model version"),
            ("train_model", "Can start a model training run"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=Q(status="active"), name="recommendations_one_active_model"),
        ]

    def __str__(self):
        return f"{self.version} ({self.kind}, {self.status})"

    def metric(self, name: str) -> float | None:
        value = (self.metrics or {}).get("model", {}).get(name)
        return None if value is None else float(value)


class ModelActivation(models.Model):
    """One change of the active version: who, when, from which version. Roll back walks these
    backwards: it undoes the latest activation not undone yet, returning to the version before it."""

    class Action(models.TextChoices):
        ACTIVATE = "activate", "Activate"
        ROLLBACK = "rollback", "Roll back"

    # Names are kept beside the links: a deleted version still reads right in the history.
    version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="activations")
    version_name = models.CharField(max_length=64)
    previous = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    previous_name = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.ACTIVATE)
    # Set on an activation once a roll back returned to its previous version.
    undone = models.BooleanField(default=False)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.get_action_display()} {self.version_name} (was {self.previous_name or 'none'})"


class TrainingRun(models.Model):
    """One execution of the training pipeline (export, train, evaluate, register, maybe activate)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    stage = models.CharField(max_length=64, blank=True)
    progress = models.FloatField(default=0.0)  # 0..1
    params = models.TextField(blank=True)
    activate = models.BooleanField(default=True)
    # Train from this event file (a GRU4Rec TSV / YOOCHOOSE / REES46 log) instead of the shop's events.
    data_path = models.CharField(max_length=500, blank=True)
    log_tail = models.TextField(blank=True)
    # GRU4Rec's training curve, written as it trains (the admin's live chart):
    # {"epochs": [{"epoch": 1, "loss": .., "seconds": ..}, ..],
    #  "current": {"epoch": 2, "n_epochs": 4, "fraction": 0.4, "loss": ..}}
    loss_curve = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self):
        return f"training run {self.pk} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or self.heartbeat_at
        return None if end is None else (end - self.started_at).total_seconds()


class TuningRun(models.Model):
    """One hyperparameter search for the shop (``recommendations.tuning_runs``): Optuna trials of
    the three kinds on validation days carved from the shop's training data. A stopped run resumes
    where it stopped (its stored trials are handed back to the search)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        STOPPING = "stopping", "Stopping"
        STOPPED = "stopped", "Stopped"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE_STATUSES = ("queued", "running", "stopping")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    trials = models.PositiveIntegerField("trials requested", default=30)
    timeout = models.PositiveIntegerField("time budget (seconds)", null=True, blank=True)
    # Tune on this event file instead of the shop's events (the command's --data).
    data_path = models.CharField(max_length=500, blank=True)
    # {"overall": {"number", "kind", "params", "metrics", "objective"}, "gru4rec": {..}, ..}
    best = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    log_tail = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Seconds spent searching, over every start of this run (a resumed run adds to it).
    elapsed_s = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-created", "-id"]
        permissions = [("tune_model", "Can start, stop and resume a tuning run")]
        constraints = [
            # One at a time: at most one run queued, running or stopping (a unique index on a constant).
            models.UniqueConstraint(models.Value(True), condition=Q(status__in=("queued", "running", "stopping")),
                                    name="recommendations_one_active_tuning"),
        ]

    def __str__(self):
        return f"tuning run {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class TuningTrial(models.Model):
    """One trial of a tuning run: a kind, its parameters and its validation metrics. (run, number)
    is unique, so storing a trial twice (a retried callback, a resumed run) keeps one row."""

    class State(models.TextChoices):
        COMPLETE = "complete", "Complete"
        PRUNED = "pruned", "Pruned"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(TuningRun, on_delete=models.CASCADE, related_name="trial_rows")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=16)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # sqrt(recall@20 * mrr@20) on the validation days (the engine's metrics.objective)
    objective = models.FloatField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices)
    duration_s = models.FloatField(default=0.0)
    epochs = models.PositiveIntegerField(null=True, blank=True)
    # GRU4Rec: the validation objective after each epoch (what the pruner compared)
    epoch_objectives = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="recommendations_trial_number_once")]

    def __str__(self):
        return f"trial {self.number} of tuning run {self.run_id} ({self.kind}, {self.state})"


class ShopTrainingSettings(models.Model):
    """The shop's training parameters, one row per change (the history is kept; the latest row is
    current). Without any row, training uses settings.MODEL_TRAIN_PARAMS, the built-in V-SKNN
    settings, and learns the hybrid's weight on validation days at every run."""

    # {"gru4rec": "<GRU4Rec parameter string>", "vsknn": {"k": .., ..}, "hybrid": {"weight": .., "fusion": .., ..}}
    params = models.JSONField(default=dict, blank=True)
    # the kind the tuning run found best on validation (a training run still activates the best on its held-out day)
    kind = models.CharField(max_length=16, choices=ModelVersion.Kind.choices, blank=True)
    # validation metrics per kind, as the tuning run measured them
    metrics = models.JSONField(default=dict, blank=True)
    tuning_run = models.ForeignKey(TuningRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    set_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-set_at", "-id"]
        verbose_name = "shop training settings"
        verbose_name_plural = "shop training settings"

    def __str__(self):
        return f"training settings of {self.set_at:%Y-%m-%d %H:%M} ({self.kind or 'default'})"


class Experiment(models.Model):
    """An online experiment between model versions on one recommendation surface: A/B (each visit
    sees one arm, by a salted hash of its id) or team-draft interleaving of two arms in one list.
    At most one runs per surface (partial unique index); ``recommendations.experimenting`` starts,
    stops, promotes and reports it. The salt is never shown: it is what makes the assignment of one
    experiment independent of another's."""

    class Surface(models.TextChoices):
        RECOMMENDED = "recommended", "Recommended for you"
        SIMILAR = "similar", "Similar items"

    class Mode(models.TextChoices):
        AB = "ab", "A/B (one arm per visit)"
        INTERLEAVING = "interleaving", "Team-draft interleaving (two arms in one list)"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"

    name = models.CharField(max_length=100)
    surface = models.CharField(max_length=16, choices=Surface.choices)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.AB)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    salt = models.CharField(max_length=64, editable=False)
    # Pre-registered design, shown before the start: the test's level, the power wanted and the
    # minimum detectable effect (relative lift of the primary metric, CTR) it is sized for.
    alpha = models.FloatField(default=0.05)
    power = models.FloatField(default=0.8)
    mde = models.FloatField("minimum detectable effect (relative)", default=0.05)
    baseline_rate = models.FloatField("expected control CTR", default=0.05)
    # What the experiment's models take in every serving process, estimated at start (MB).
    memory_estimate_mb = models.FloatField(default=0.0)
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    stopped_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    winner = models.ForeignKey("ExperimentArm", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created", "-id"]
        permissions = [("run_experiment", "Can start, stop and promote an experiment")]
        constraints = [
            models.UniqueConstraint(fields=["surface"], condition=Q(status="running"),
                                    name="recommendations_one_running_experiment_per_surface"),
        ]

    def __str__(self):
        return f"{self.name} ({self.get_surface_display()}, {self.status})"


class ExperimentArm(models.Model):
    """One arm: a model version, or none for the popular list (a control without a model)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.CharField(max_length=32)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    share = models.FloatField(default=0.5)
    is_control = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="recommendations_arm_name_unique"),
        ]

    def __str__(self):
        return f"{self.name} ({self.model_version.version if self.model_version_id else 'popular'})"
