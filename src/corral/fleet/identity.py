"""Host identity: which credential may register which host (issue 11, point 6).

An agent's credential is either bound to one host, or a join token that may register a host that has no
credential of its own yet; the first such registration has the shell mint a credential bound to that
host (as Nomad and Kubernetes node bootstrap do). From then on only a credential bound to the host may
register it — with one exception: a credential this leader minted that no agent ever presented (the
agent lost its connection before the message carrying it arrived, e.g. a master that froze long enough
for its pings to go unanswered) is replaced when the same join token registers the host again while no
session holds it. Without that, such a host is locked out for good. The join token may claim any new
host anyway, so this grants it nothing more; a credential once presented, or minted by another leader
(it cannot know whether it arrived), is never replaced this way. A refused registration never replaces
the live session and never touches the host's tasks; a claim on a host that belongs to another
credential raises an impostor alert.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from corral.fleet.book import FleetBook, ImpostorAlert
from corral.fleet.decision import Draft, Refusal
from corral.fleet.events import Registered
from corral.fleet.view import FleetView


@dataclass(frozen=True, slots=True)
class Verdict:
    refusal: Refusal | None = None
    mint: bool = False  # accepted with a join token: the shell mints a credential bound to the host
    replaces: str | None = None  # ... in place of this one, which never reached its agent
    impostor: bool = False  # the host belongs to another credential: raise (or count) an impostor alert


def verdict(view: FleetView, event: Registered) -> Verdict:
    host, credential = event.host_id, event.credential
    if credential.bound_host is not None:
        if credential.bound_host != host:
            message = f"credential {credential.token_id} is bound to host {credential.bound_host}, not {host}"
            return Verdict(Refusal(403, "wrong_host", message))
        return Verdict()  # the host's own credential (one of them, if an operator made another)
    bound = view.host_credential(host)
    if bound is not None:
        if host not in view.sessions and view.undelivered_credential(host) == (bound, credential.token_id):
            return Verdict(mint=True, replaces=bound)
        message = f"host {host} has a credential of its own: a join token may not register it"
        return Verdict(Refusal(409, "host_claimed", message), impostor=True)
    live = view.sessions.get(host)
    if live is not None and live.credential_id != credential.token_id:
        message = f"host {host} is connected with another credential"
        return Verdict(Refusal(409, "host_claimed", message), impostor=True)
    return Verdict(mint=True)


def record_impostor(draft: Draft, event: Registered, now: float) -> None:
    """Raise an impostor alert, or count one more attempt on the open one for this host and credential
    (an impostor that retries every second must not fill the alert list)."""
    book: FleetBook = draft.book
    host, token_id = event.host_id, event.credential.token_id
    for i, alert in enumerate(book.impostors):
        if alert.host_id == host and alert.credential_id == token_id:
            again = replace(alert, attempts=alert.attempts + 1, last_at=now)
            draft.book = replace(book, impostors=(*book.impostors[:i], again, *book.impostors[i + 1 :]))
            draft.raised.append(again)
            return
    message = (
        f"a registration as host {host} with credential {token_id} was refused: the host belongs to another "
        "credential (an impostor, or an agent that lost its own credential)"
    )
    alert = ImpostorAlert(f"impostor-{book.next_alert}", host, token_id, now, message, 1, now)
    draft.book = replace(book, impostors=(*book.impostors, alert), next_alert=book.next_alert + 1)
    draft.raised.append(alert)
    draft.log("error", message)


def dismiss(draft: Draft, alert: ImpostorAlert) -> None:
    draft.book = replace(draft.book, impostors=tuple(a for a in draft.book.impostors if a.id != alert.id))
    draft.resolved.append(alert)
    draft.log("warning", f"operator: dismissed impostor alert {alert.id} for host {alert.host_id}")
