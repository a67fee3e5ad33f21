"""Online experiments from the command line: create, start, stop, promote, report, list."""
import math

from django.core.management.base import BaseCommand, CommandError

from recommendations import experimenting
from recommendations.management.base import model_version_or_fail
from recommendations.models import Experiment
from shop.management.base import operator_output

POPULAR = "popular"


def _arm(text: str) -> experimenting.ArmInput:
    """NAME:VERSION:SHARE (VERSION "popular" for the popular list)."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise CommandError(f"--arm {text!r}: expected NAME:VERSION:SHARE, e.g. control:popular:0.5 or v2:<version>:0.5")
    name, version, share_text = parts
    try:
        share = float(share_text)
    except ValueError:
        raise CommandError(f"--arm {text!r}: the share {share_text!r} is not a number") from None
    if not math.isfinite(share) or not 0 < share <= 1:
        raise CommandError(f"--arm {text!r}: the share {share_text!r} must be above 0 and at most 1")
    mv = None if version == POPULAR else model_version_or_fail(version)
    return experimenting.ArmInput(name, mv, share)


def _experiment(ref: str) -> Experiment:
    if ref.isascii() and ref.isdigit():
        found = Experiment.objects.filter(pk=int(ref)).first()
    else:
        found = Experiment.objects.filter(name=ref).order_by("-created").first()
    if found is None:
        raise CommandError(f"no experiment {ref!r} (an id or a name; `manage.py experiment list` lists them)")
    return found


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _ci(ci, scale=100.0, unit="%") -> str:
    return "" if not ci else f" [{ci[0] * scale:.2f}, {ci[1] * scale:.2f}]{unit}"


class Command(BaseCommand):
    help = ("Online experiments: `experiment create NAME --surface recommended --arm control:popular:0.5 "
            "--arm v2:<version>:0.5`, `experiment start|stop|report ID`, `experiment promote ID ARM`, `experiment list`.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{create,start,stop,promote,report,list}")
        create = sub.add_parser("create", help="create a draft experiment")
        create.add_argument("name")
        create.add_argument("--surface", choices=Experiment.Surface.values, default=Experiment.Surface.RECOMMENDED)
        create.add_argument("--mode", choices=Experiment.Mode.values, default=Experiment.Mode.AB)
        create.add_argument("--arm", action="append", default=[], metavar="NAME:VERSION:SHARE",
                            help="an arm (repeat; the first is the control); VERSION 'popular' is the popular list")
        create.add_argument("--alpha", type=float, default=0.05)
        create.add_argument("--power", type=float, default=0.8)
        create.add_argument("--mde", type=float, default=0.05, help="relative CTR lift the design is sized for")
        create.add_argument("--baseline-rate", type=float, default=0.05, help="expected control CTR")
        create.add_argument("--start", action="store_true", help="start it right away")
        for action in ("start", "stop", "report"):
            sub.add_parser(action).add_argument("experiment", help="id or name")
        promote = sub.add_parser("promote", help="activate an arm's model and stop the experiment")
        promote.add_argument("experiment")
        promote.add_argument("arm", help="the arm's name or id")
        sub.add_parser("list")

    def handle(self, *args, **opts):
        try:
            with operator_output(opts["verbosity"]):
                getattr(self, f"_{opts['action']}")(opts)
        except experimenting.ExperimentInvalid as exc:
            raise CommandError(str(exc)) from None
        except experimenting.ExperimentRefused as exc:
            raise CommandError(str(exc)) from None

    def _show(self, e: Experiment, verb: str):
        arms = ", ".join(f"{a.name}={a.model_version.version if a.model_version_id else 'popular'}:{a.share:g}"
                         for a in e.arms.select_related("model_version"))
        self.stdout.write(self.style.SUCCESS(f"experiment {e.pk} {e.name!r} {verb}: {e.surface}, {e.mode}, "
                                             f"{e.status}; arms {arms}"))

    def _create(self, o):
        if not o["arm"]:
            raise CommandError("give the arms: --arm control:popular:0.5 --arm v2:<version>:0.5")
        arms = [_arm(text) for text in o["arm"]]
        e = experimenting.experiment_create(name=o["name"], surface=o["surface"], mode=o["mode"], arms=arms,
                                            alpha=o["alpha"], power=o["power"], mde=o["mde"],
                                            baseline_rate=o["baseline_rate"])
        design = experimenting.design_summary(e)
        self._show(e, "created")
        self.stdout.write(f"design: {design['test']}; alpha {e.alpha:g}, power {e.power:g}, MDE {e.mde:g} relative "
                          f"on a CTR of {e.baseline_rate:g}: {design['impressions_per_arm'] or '-'} impressions per "
                          f"arm; models {design['memory_mb']} MB of {design['memory_budget_mb']:g} MB")
        if o["start"]:
            self._show(experimenting.experiment_start(e), "started")

    def _start(self, o):
        self._show(experimenting.experiment_start(_experiment(o["experiment"])), "started")

    def _stop(self, o):
        self._show(experimenting.experiment_stop(_experiment(o["experiment"])), "stopped")

    def _promote(self, o):
        e = _experiment(o["experiment"])
        ref = o["arm"]
        arm = e.arms.filter(name=ref).first() or (e.arms.filter(pk=int(ref)).first() if ref.isascii() and ref.isdigit()
                                                  else None)
        if arm is None:
            names = ", ".join(e.arms.values_list("name", flat=True))
            raise CommandError(f"experiment {e.pk} has no arm {ref!r} (its arms: {names})")
        e = experimenting.experiment_promote(e, arm)
        self._show(e, f"promoted {arm.name}")

    def _list(self, o):
        for e in Experiment.objects.all()[:50]:
            self._show(e, "")

    def _report(self, o):
        e = _experiment(o["experiment"])
        r = experimenting.experiment_report(e, fresh=True)
        self.stdout.write(f"experiment {e.pk} {e.name!r}: {e.surface}, {e.mode}, {e.status}")
        self.stdout.write(f"{'arm':<12} {'visits':>7} {'impr':>7} {'clicks':>7} {'CTR':>8} {'ATC/visit':>9} "
                          f"{'conv':>8} {'rev/visit':>9}  CTR vs control (always-valid p)")
        for a in r["arms"]:
            st = a["stats"]
            ctr = st["ctr"]
            rpv = st["revenue_per_visit"]["arm"]["value"]
            if a["is_control"]:
                diff = "control"
            else:
                lift = "-" if ctr["difference"] is None else f"{100 * ctr['difference']:+.2f} pp"
                diff = f"{lift} (p {ctr['p_value']:.3g})"
            self.stdout.write(
                f"{a['name']:<12} {a['visits']:>7} {a['impressions']:>7} {a['clicks']:>7} "
                f"{_pct(ctr['arm']['value']):>8} {_pct(st['add_to_cart_rate']['arm']['value']):>9} "
                f"{_pct(st['conversion']['arm']['value']):>8} {'-' if rpv is None else format(rpv, '.2f'):>9}  {diff}")
        if r["srm"] is not None:
            srm = r["srm"]
            flag = "MISMATCH: do not trust the results" if srm["mismatch"] else "ok"
            self.stdout.write(f"sample ratio: p {srm['p_value']:.3g} ({flag})")
        if r["interleaving_stats"] is not None:
            i = r["interleaving_stats"]
            self.stdout.write(f"interleaving: wins {i['wins_a']} : {i['wins_b']}, ties {i['ties']}, "
                              f"p {i['p_value']:.3g}, winner {i['winner'] or '-'}")
