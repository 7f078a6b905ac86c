"""The IoT stanzas on a readout's path handed to their handler before slixmpp's matching.

slixmpp matches every stanza it reads against every registered handler (about
thirty in a hub, most of them ``StanzaPath`` matchers that walk the stanza's
plugin interfaces): some 25 µs a stanza on a desktop core, more than building
the stanza, and a readout passed through a front hub reads three of them
there.  A route here is an ``in`` filter: a stanza that a route *claims* is
handled by it and goes no further (no other handler sees it), any other goes
on to slixmpp's handlers as before.  Routes claim only what no other handler
could want:

* the stanza has exactly one child, in the route's namespace (no ``<body>``,
  form or error beside it: chat, IM and data-form handlers match those);
* it is not of type ``error`` (bounce handlers look at every error);
* and the route's callback says it is its own (returns True): a readout's
  reply by the id this hub sent, a remote's message by its sequence number.

The filter is added after XEP-0198's (registered with the plugin, before any
service), so a claimed stanza is still counted for the server's ``<r/>``.
A route's handler also stays registered with slixmpp, for what is not claimed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from slixmpp import ClientXMPP

#: A route's callback: True when it handled the stanza (nobody else is to see it).
Route = Callable[[Any], bool]

_ROUTES: WeakKeyDictionary[ClientXMPP, FastRoutes] = WeakKeyDictionary()


class FastRoutes:
    """The routes of one client, by stanza tag and payload tag (Clark notation)."""

    def __init__(self, xmpp: ClientXMPP) -> None:
        self._routes: dict[tuple[str, str], list[Route]] = {}
        xmpp.add_filter("in", self._route)

    def add(self, stanza: str, payload: str, route: Route) -> None:
        """Offer ``stanza`` (``message``, ``iq``) carrying ``payload`` alone to ``route``."""
        key = ("{jabber:client}" + stanza, payload)
        self._routes.setdefault(key, []).append(route)

    def _route(self, stanza: Any) -> Any:
        xml = stanza.xml
        if len(xml) != 1 or xml.get("type") == "error":
            return stanza
        routes = self._routes.get((xml.tag, xml[0].tag))
        if routes is None:
            return stanza
        for route in routes:
            try:
                claimed = route(stanza)
            except Exception as error:
                stanza.exception(error)
                return None
            if claimed:
                return None
        return stanza


def routes_for(xmpp: ClientXMPP) -> FastRoutes:
    """The client's routes (made, and its filter added, on the first call)."""
    routes = _ROUTES.get(xmpp)
    if routes is None:
        routes = _ROUTES[xmpp] = FastRoutes(xmpp)
    return routes
