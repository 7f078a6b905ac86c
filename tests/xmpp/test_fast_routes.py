"""hubd/xmpp/fast_routes.py: what a route claims goes no further, anything else goes on."""

from __future__ import annotations

from typing import Any

from defusedxml.ElementTree import fromstring
from slixmpp.stanza import Message

from hubd.xmpp.fast_routes import routes_for

NS = "urn:hubd:test:routes"


class FakeXmpp:
    def __init__(self) -> None:
        self.filters: list[Any] = []

    def add_filter(self, mode: str, stanza_filter: Any) -> None:
        assert mode == "in"
        self.filters.append(stanza_filter)

    def read(self, text: str) -> Any:
        """What the in filters pass on to slixmpp's handlers (None: claimed)."""
        stanza: Any = Message(None, fromstring(text))
        for stanza_filter in self.filters:
            stanza = stanza_filter(stanza)
            if stanza is None:
                return None
        return stanza


def _routed() -> tuple[FakeXmpp, list[str]]:
    xmpp = FakeXmpp()
    seen: list[str] = []

    def route(stanza: Any) -> bool:
        seen.append(stanza.xml.get("id"))
        return stanza.xml.get("id") != "not-mine"

    routes = routes_for(xmpp)  # type: ignore[arg-type]
    assert routes_for(xmpp) is routes, "one per client, one filter"  # type: ignore[arg-type]
    routes.add("message", f"{{{NS}}}p", route)
    assert len(xmpp.filters) == 1
    return xmpp, seen


def test_a_claimed_stanza_goes_no_further() -> None:
    xmpp, seen = _routed()
    assert xmpp.read(f"<message xmlns='jabber:client' id='m1'><p xmlns='{NS}'/></message>") is None
    assert seen == ["m1"]


def test_what_the_route_does_not_claim_goes_on() -> None:
    xmpp, seen = _routed()
    stanza = xmpp.read(f"<message xmlns='jabber:client' id='not-mine'><p xmlns='{NS}'/></message>")
    assert stanza is not None
    assert seen == ["not-mine"]


def test_other_stanzas_are_not_offered() -> None:
    xmpp, seen = _routed()
    for text in (
        # a body beside the payload: chat handlers may want it
        f"<message xmlns='jabber:client' id='a'><body>hi</body><p xmlns='{NS}'/></message>",
        # an error: bounce handlers look at every one
        f"<message xmlns='jabber:client' type='error' id='b'><p xmlns='{NS}'/></message>",
        # another payload
        "<message xmlns='jabber:client' id='c'><q xmlns='urn:other'/></message>",
        "<message xmlns='jabber:client' id='d'/>",
    ):
        assert xmpp.read(text) is not None
    assert seen == []


def test_a_failing_route_is_reported_on_the_stanza() -> None:
    xmpp = FakeXmpp()
    failures: list[Exception] = []

    def route(_stanza: Any) -> bool:
        raise ValueError("boom")

    routes_for(xmpp).add("message", f"{{{NS}}}p", route)  # type: ignore[arg-type]
    stanza_text = f"<message xmlns='jabber:client' id='e'><p xmlns='{NS}'/></message>"
    stanza: Any = Message(None, fromstring(stanza_text))
    stanza.exception = failures.append
    assert xmpp.filters[0](stanza) is None
    assert [str(f) for f in failures] == ["boom"]
