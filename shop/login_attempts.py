"""The admin sign-in lockout's counters (shop.login_guard): failed attempts per username and per
client address in a window, kept in the database so that a cache outage or flush cannot lift a lock.
A row is a counter, not a log: no password, nothing an attacker sent beyond the username."""
from django.db import models


class LoginAttempt(models.Model):
    class Kind(models.TextChoices):
        USERNAME = "username", "Username"
        ADDRESS = "address", "Client address"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    # A username (case-folded) or a client address (an IPv6 client's /64) as shop.client_ip names it.
    key = models.CharField(max_length=150)
    # Attempts in the window not (yet) known to have succeeded: one is counted before the password is
    # checked, so parallel attempts cannot all slip under the limit; a success takes it back.
    failures = models.PositiveIntegerField(default=0)
    window_start = models.DateTimeField()

    class Meta:
        app_label = "shop"
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="loginattempt_one_per_key")]
        indexes = [models.Index(fields=["window_start"], name="loginattempt_window_idx")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.key}: {self.failures}"
