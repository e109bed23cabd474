"""Alert receivers only on public addresses: refused when a rule is saved, and again when a
delivery connects (after DNS), unless the operator allows them (ERRORSINK_WEBHOOK_ALLOW)."""

from __future__ import annotations

import socket

import pytest
from django.utils import timezone
from pydantic import ValidationError

from dashboard.links import ReversedLinks
from errorsink.alerts.delivery import delivery_attempt
from errorsink.alerts.evaluate import firing_record
from errorsink.alerts.models import DELIVERED, FAILED, AlertDelivery, AlertRule
from errorsink.alerts.outbound import AddressRefused, connect_address, url_problem
from errorsink.alerts.rules import RuleIn

# The addresses and names an outside probe saved as receivers, and a few more of each kind.
INTERNAL = [
    "http://127.0.0.1/hook",
    "http://localhost:6379/",
    "http://LOCALHOST./x",
    "http://[::1]:8000/",
    "http://2130706433/",  # 127.0.0.1 as one number
    "http://127.1/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://0.0.0.0:5432/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT: not private, not public either
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://printer.local/",
    "http://api.localhost/",
]
PUBLIC = ["https://hooks.slack.com/services/T0/B0/xyz", "http://93.184.216.34:8080/hook",
          "https://[2606:2800:220:1::]/hook", "https://hooks.example.com/errorsink"]  # fmt: skip


@pytest.mark.pure
@pytest.mark.parametrize("url", INTERNAL)
def test_internal_receivers_are_refused_with_the_reason(url, settings):
    settings.ERRORSINK_WEBHOOK_ALLOW = ""
    problem = url_problem(url)
    assert problem is not None and problem.startswith("goes to ")
    assert "address" in problem or "internal host" in problem


@pytest.mark.pure
@pytest.mark.parametrize("url", PUBLIC)
def test_public_receivers_are_accepted(url, settings):
    settings.ERRORSINK_WEBHOOK_ALLOW = ""
    assert url_problem(url) is None


@pytest.mark.pure
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user:secret@hooks.example.com/x", "user name or password"),
        ("https://token@hooks.example.com/x", "user name or password"),
        ("ftp://hooks.example.com/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
    ],
)
def test_credentials_and_other_schemes_are_refused(url, reason, settings):
    assert reason in url_problem(url)


@pytest.mark.pure
def test_the_operator_allows_internal_receivers_by_network_or_name(settings):
    settings.ERRORSINK_WEBHOOK_ALLOW = "127.0.0.0/8, fd00::/8,receiver.internal"
    for url in ("http://127.0.0.1/", "http://127.1/", "http://[fd00::1]/",
                "http://Receiver.Internal/hook"):  # fmt: skip
        assert url_problem(url) is None, url
    assert url_problem("http://10.0.0.1/") is not None
    assert url_problem("http://other.internal/") is not None


@pytest.mark.pure
def test_a_rule_naming_an_internal_receiver_does_not_validate(settings):
    settings.ERRORSINK_WEBHOOK_ALLOW = ""
    with pytest.raises(ValidationError) as caught:
        RuleIn(condition={"type": "new_issue"},
               channels=[{"type": "slack", "url": "http://169.254.169.254/latest"}])  # fmt: skip
    (error,) = caught.value.errors()
    assert error["loc"][:3] == ("channels", 0, "slack")
    assert "169.254.169.254, a link-local address" in error["msg"]


def _resolving(monkeypatch, answers: dict[str, list[str]]) -> None:
    """DNS answers for names no resolver here knows: what a hostile zone would return."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (a, port)) for a in answers[host]]  # fmt: skip
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.pure
def test_a_name_is_refused_at_connect_time_if_any_answer_is_internal(monkeypatch, settings):
    settings.ERRORSINK_WEBHOOK_ALLOW = ""
    _resolving(monkeypatch, {"rebind.example.com": ["93.184.216.34", "10.1.2.3"],
                             "fine.example.com": ["93.184.216.34"]})  # fmt: skip
    with pytest.raises(AddressRefused, match=r"resolves to 10\.1\.2\.3, a private address"):
        connect_address("rebind.example.com", 443)
    assert connect_address("fine.example.com", 443) == "93.184.216.34"


def _delivery_to(project, url: str) -> AlertDelivery:
    # Saved as a rule from before the check would have been: straight into the table.
    rule = AlertRule.objects.create(project=project, name="old rule", kind="new_issue",
                                    condition={"type": "new_issue"},
                                    channels=[{"type": "webhook", "url": url}])  # fmt: skip
    firing, _ = firing_record(rule, value=1, sample=[], now=timezone.now(), links=ReversedLinks())
    return AlertDelivery.objects.get(firing=firing)


@pytest.mark.django_db
def test_a_loopback_receiver_gets_requests_only_when_allowed(
    project, receiver, settings, monkeypatch
):
    monkeypatch.setattr("errorsink.tasks.alert_deliver.delay", lambda pk: None)
    url, received = receiver
    settings.ERRORSINK_WEBHOOK_ALLOW = ""
    refused = _delivery_to(project, f"{url}/refused")
    assert delivery_attempt(refused.id) == FAILED  # at once: no retry can help
    (attempt,) = AlertDelivery.objects.get(id=refused.id).attempts
    assert attempt["error"].startswith("not sent: the URL goes to 127.0.0.1, a loopback")
    assert received == []

    settings.ERRORSINK_WEBHOOK_ALLOW = "127.0.0.1"
    allowed = _delivery_to(project, f"{url}/allowed")
    assert delivery_attempt(allowed.id) == DELIVERED
    assert [path for path, _ in received] == ["/allowed"]


@pytest.mark.django_db
def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
    project, receiver, settings, monkeypatch
):
    """The name passes the save-time check; its DNS answer is what refuses it, and nothing
    reaches the receiver listening at that address."""
    monkeypatch.setattr("errorsink.tasks.alert_deliver.delay", lambda pk: None)
    url, received = receiver
    port = url.rsplit(":", 1)[1]
    settings.ERRORSINK_WEBHOOK_ALLOW = ""
    _resolving(monkeypatch, {"hooks.attacker.example": ["127.0.0.1"]})
    url = f"http://hooks.attacker.example:{port}/x"
    assert url_problem(url) is None
    delivery = _delivery_to(project, url)
    assert delivery_attempt(delivery.id) == FAILED
    (attempt,) = AlertDelivery.objects.get(id=delivery.id).attempts
    assert "hooks.attacker.example resolves to 127.0.0.1, a loopback address" in attempt["error"]
    assert received == []
