"""The XMPP wing: the hub's account, the IoT XEPs, events, chat, group chat and ad-hoc commands.

Also hubctl's side of the wire: its session (hubctl_client.py) and requests (client_xml.py).

The only package that imports slixmpp; it speaks for the core, events and people on the wire.
It may import hubd.people, hubd.events, hubd.core and hubd.errors; never hubd.service.
"""
