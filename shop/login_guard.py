"""Admin sign-in lockout: after ``LOGIN_FAILURES_PER_USERNAME`` failed attempts for a username, or
``LOGIN_FAILURES_PER_ADDRESS`` from a client address (shop.client_ip), within
``LOGIN_LOCKOUT_MINUTES``, further attempts are answered "too many attempts, try again in N minutes"
(HTTP 429) without the password being checked. A successful sign-in clears its username's count.

Each attempt is counted before its password is checked, in one row-locked transaction, so parallel
attempts cannot all pass the check before any failure is written; a success takes its count back.
The counters are rows in PostgreSQL (shop.login_attempts), not cache entries: a Redis outage or a
flush does not lift a lock. Expired rows are deleted as attempts come in, so the table holds at most
the addresses and usernames of one window.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from shop.client_ip import client_key
from shop.login_attempts import LoginAttempt


def _window() -> timedelta:
    return timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)


def _username_key(username: str) -> str:
    # Case-folded: "Admin" and "admin" share a count (whatever the auth backend makes of case).
    return str(username).strip().casefold()[:150]


def _count(kind: str, key: str, now: datetime) -> LoginAttempt:
    """Count one attempt in ``key``'s window (a new window once the old one is over); row-locked."""
    row, created = LoginAttempt.objects.select_for_update().get_or_create(
        kind=kind, key=key, defaults={"failures": 1, "window_start": now}
    )
    if not created:
        if row.window_start <= now - _window():
            row.failures, row.window_start = 1, now
        else:
            row.failures += 1
        row.save(update_fields=["failures", "window_start"])
    return row


def login_attempt_begin(username: str, address: str) -> int | None:
    """Count an attempt before its password is checked. Returns None when it may go ahead, or the
    seconds until the lock on its address or username lifts (the password must not be checked)."""
    now = timezone.now()
    LoginAttempt.objects.filter(window_start__lte=now - _window()).delete()
    with transaction.atomic():
        # Address first, and a locked address does not touch username rows: a client spraying
        # usernames from one address adds no rows once it is locked. One lock order, no deadlock.
        row = _count(LoginAttempt.Kind.ADDRESS, address, now)
        if row.failures > settings.LOGIN_FAILURES_PER_ADDRESS:
            return _seconds_left(row, now)
        row = _count(LoginAttempt.Kind.USERNAME, _username_key(username), now)
        if row.failures > settings.LOGIN_FAILURES_PER_USERNAME:
            return _seconds_left(row, now)
    return None


def _seconds_left(row: LoginAttempt, now: datetime) -> int:
    return max(1, math.ceil((row.window_start + _window() - now).total_seconds()))


def login_attempt_succeeded(username: str, address: str) -> None:
    """The password was right: the username's count is cleared, the address's attempt taken back."""
    LoginAttempt.objects.filter(kind=LoginAttempt.Kind.USERNAME, key=_username_key(username)).delete()
    LoginAttempt.objects.filter(kind=LoginAttempt.Kind.ADDRESS, key=address, failures__gt=0).update(
        failures=F("failures") - 1
    )


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return (f"Too many failed sign-in attempts for this account or from this address. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.")


class GuardedAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's sign-in form with the lockout in front of the password check."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password or self.request is None:
            return super().clean()  # no password check happens: nothing to count
        address = client_key(self.request)
        wait = login_attempt_begin(username, address)
        if wait is not None:
            self.request.login_locked_seconds = wait
            raise ValidationError(lockout_message(wait), code="locked_out")
        cleaned = super().clean()  # a wrong password raises here: the attempt stays counted
        login_attempt_succeeded(username, address)
        return cleaned


class LoginLockoutMiddleware:
    """A locked-out sign-in attempt answers 429 with Retry-After (the page shows the message)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        seconds = getattr(request, "login_locked_seconds", None)
        if seconds is not None:
            response.status_code = 429
            response["Retry-After"] = str(seconds)
        return response


def admin_site_guard() -> None:
    """Put the guarded form on the admin site (ShopConfig.ready)."""
    from django.contrib import admin

    admin.site.login_form = GuardedAdminAuthenticationForm
