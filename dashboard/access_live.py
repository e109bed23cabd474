"""Open websockets lose access the moment their user does: a socket is authorised at connect,
so a change of membership, a deactivated account or a sign-out is announced to the user's own
channel-layer group, and every socket of that user re-checks (or, for a sign-out, the sockets of
that browser session close). Close codes the page explains: 4403 no access, 4401 signed out.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from errorsink.projects.models import Membership

log = logging.getLogger(__name__)

CLOSE_NO_ACCESS = 4403
CLOSE_SIGNED_OUT = 4401


def user_group(user_id: int) -> str:
    return f"access.user.{user_id}"


def _announce(user_id: int, message: dict) -> None:
    """After commit, so a socket re-checking reads the change; a Redis outage costs the
    announcement (logged), never the request that made the change."""

    def send() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(user_group(user_id), message)
        except Exception:  # noqa: BLE001 - the change itself is committed; say so and go on
            log.exception("could not tell user %s's open pages that their access changed", user_id)

    transaction.on_commit(send)


def _membership_changed(sender, instance: Membership, **kwargs) -> None:
    _announce(instance.user_id, {"type": "access.changed"})


def _user_changed(sender, instance, **kwargs) -> None:
    if not instance.is_active:
        _announce(instance.pk, {"type": "access.changed"})


def _signed_out(sender, request, user, **kwargs) -> None:
    if user is not None and request.session.session_key:
        _announce(user.pk, {"type": "access.ended", "session_key": request.session.session_key})


def connect_signals() -> None:
    post_save.connect(_membership_changed, sender=Membership, dispatch_uid="live-membership-save")
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="live-membership-del")
    post_save.connect(_user_changed, sender=get_user_model(), dispatch_uid="live-user-save")
    user_logged_out.connect(_signed_out, dispatch_uid="live-signed-out")
