"""XEP-0030 service discovery of the node tree: the house in any client's service browser.

disco#items on the hub's full JID lists the devices the asker may read, each
as an item ``jid`` = the hub, ``node`` = the device id, ``name`` = its name
(the same filter as XEP-0326 ``getAllNodes``); disco#info on a device node
gives a ``hierarchy/leaf`` identity and the features that device supports.

slixmpp answers disco from its static store (the hub's own features, the
caps node, the ad-hoc command list); this module stands in front of it as
the global handler and hands every node the store knows back to it, so the
hub's own disco#info is what it was.  Any other node is a device question:
a stranger is refused ``forbidden`` whatever the node (so a device id and a
typo read the same), a node the asker may not see is ``item-not-found``,
exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import XMPPError
from slixmpp.plugins.xep_0030 import DiscoInfo, DiscoItems

from hubd.core.access import AccessPolicy, Role
from hubd.core.hub import Hub
from hubd.core.node import Node
from hubd.errors import HubdError
from hubd.xmpp.control_xml import NS_CONTROL
from hubd.xmpp.errors import condition_for
from hubd.xmpp.events import NS_EVENTS
from hubd.xmpp.sensordata_xml import NS_SENSORDATA

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NODE_CATEGORY = "hierarchy"
NODE_TYPE = "leaf"


def node_features(node: Node, *, events: bool) -> list[str]:
    """The features one device node supports, in a stable order."""
    features = [NS_DISCO_INFO, NS_SENSORDATA]
    if node.spec.writable:
        features.append(NS_CONTROL)
    if events:
        features.append(NS_EVENTS)
    return features


class DiscoTree:
    """Answers disco#items and disco#info about the hub's devices."""

    def __init__(self, xmpp: ClientXMPP, hub: Hub, access: AccessPolicy, *, events: bool) -> None:
        self.xmpp = xmpp
        self.hub = hub
        self.access = access
        self.events = events
        disco: Any = xmpp.plugin["xep_0030"]
        self._static = disco.static
        disco.set_node_handler("get_items", None, None, self._get_items)
        disco.set_node_handler("get_info", None, None, self._get_info)

    def _known(self, jid: JID, node: str | None) -> bool:
        """True for what slixmpp's own store answers (the hub itself, caps, commands)."""
        return not node or bool(self._static.node_exists(jid, node))

    def _get_items(self, jid: JID, node: str | None, ifrom: JID | None, data: Any) -> Any:
        if self._known(jid, node):
            items = self._static.get_items(jid, node, ifrom, data)
            if node or ifrom is None or not self._reader(ifrom):
                return items  # a stranger sees the hub's own items, no device
            merged = DiscoItems()
            for item in items["items"]:
                merged.add_item(*item)
            for device in self.access.visible(ifrom.full, self.hub.nodes):
                merged.add_item(jid, device.id, device.name)
            return merged
        self._device(node or "", ifrom)
        return DiscoItems()  # devices have no children

    def _get_info(self, jid: JID, node: str | None, ifrom: JID | None, data: Any) -> Any:
        if self._known(jid, node):
            return self._static.get_info(jid, node, ifrom, data)
        device = self._device(node or "", ifrom)
        info = DiscoInfo()
        info.add_identity(NODE_CATEGORY, NODE_TYPE, name=device.name)
        for feature in node_features(device, events=self.events):
            info.add_feature(feature)
        return info

    def _reader(self, asker: JID) -> bool:
        return self.access.allows_any(asker.full, Role.READER)

    def _device(self, node_id: str, ifrom: JID | None) -> Node:
        """The device ``node_id`` if ``ifrom`` may see it; raises the XMPP error otherwise."""
        asker = "" if ifrom is None else ifrom.full
        try:
            self.access.admit(asker, Role.READER)
        except HubdError as err:
            raise _stanza_error(err) from None
        device = self.hub.nodes.get(node_id)
        if device is None or not self.access.allows(asker, Role.READER, node_id):
            raise XMPPError("item-not-found", etype="cancel")
        return device


def _stanza_error(err: HubdError) -> XMPPError:
    condition = condition_for(err)
    error: Any = XMPPError  # its Literal parameters name the conditions the table holds
    made: XMPPError = error(condition.condition, text=condition.text, etype=condition.type)
    return made
