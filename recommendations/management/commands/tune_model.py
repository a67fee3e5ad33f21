"""Tune in the foreground: the same tuning run as the Celery task, with a progress bar on a terminal."""
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from recommendations import tuning_runs
from recommendations.models import TuningRun
from shop.management.base import operator_output, progress_wanted


class Command(BaseCommand):
    help = ("Search GRU4Rec, V-SKNN and hybrid settings on validation days of the shop's events (Optuna); "
            "the best become the shop's training parameters.")

    def add_arguments(self, parser):
        parser.add_argument("--trials", default="30", help="trials in all (default 30; --resume keeps the run's own)")
        parser.add_argument("--timeout", default="", help="time budget in seconds, in all (--resume keeps the run's own)")
        parser.add_argument("--resume", default="", metavar="RUN_ID", help="continue a stopped or failed tuning run")
        parser.add_argument("--data", default="", help="tune on this event file instead of the shop's events")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (none unless on a terminal)")

    def handle(self, *args, **opts):
        trials = self._number("--trials", opts["trials"])
        timeout = self._number("--timeout", opts["timeout"]) if opts["timeout"] else None
        if opts["data"] and not Path(opts["data"]).is_file():
            raise CommandError(f"--data {opts['data']}: no such file; give an event file (YOOCHOOSE, GRU4Rec TSV, "
                               "REES46 CSV) or leave --data out to tune on the shop's own events")
        echo = (lambda line: self.stdout.write(line)) if opts["verbosity"] >= 1 else None
        try:
            with operator_output(opts["verbosity"]):
                if opts["resume"]:
                    run = self._run_or_fail(opts["resume"])
                    run = tuning_runs.tuning_run_resume(run, publish=False)
                else:
                    run = tuning_runs.tuning_run_queue(trials=trials, timeout=timeout, data_path=opts["data"],
                                                       publish=False)
                self.stdout.write(f"tuning run {run.pk}: {run.trials} trials"
                                  + ("" if run.timeout is None else f", {run.timeout} s budget"))
                run = tuning_runs.tuning_run_execute(run.pk, progress=progress_wanted(opts["no_progress"]), echo=echo)
        except (tuning_runs.TuningBusy, tuning_runs.TuningRefused) as exc:
            raise CommandError(str(exc)) from None
        if run.status == TuningRun.Status.FAILED:
            raise CommandError(f"tuning run {run.pk} failed: {run.error} (resume it with --resume {run.pk})")
        n = run.trial_rows.count()
        if run.status == TuningRun.Status.STOPPED:
            self.stdout.write(self.style.WARNING(f"tuning run {run.pk} stopped after {n} trials; "
                                                 f"continue with --resume {run.pk}"))
            return
        best = run.best.get("overall")
        if best is None:
            raise CommandError(f"tuning run {run.pk}: no trial completed ({n} tried); the training settings are "
                               "unchanged")
        self.stdout.write(self.style.SUCCESS(
            f"tuning run {run.pk}: {n} trials; best {best['kind']} (trial {best['number']}, objective "
            f"{best['objective']:.4f}); the shop's training settings now use it"))
        self.stdout.write(json.dumps({"run": run.pk, "kind": best["kind"], "params": best["params"],
                                      "metrics": best["metrics"], "objective": best["objective"]}))

    @staticmethod
    def _number(option: str, text: str) -> int:
        text = text.strip()
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise CommandError(f"{option} must be a whole number, at least 1 (got {text!r})")
        return int(text)

    @staticmethod
    def _run_or_fail(text: str) -> TuningRun:
        run = TuningRun.objects.filter(pk=int(text)).first() if text.isascii() and text.isdigit() else None
        if run is None:
            latest = list(TuningRun.objects.values_list("pk", flat=True)[:5])
            raise CommandError(f"--resume {text!r}: no such tuning run"
                               + (f" (the latest are {', '.join(map(str, latest))})" if latest else " (none exists yet)"))
        return run
