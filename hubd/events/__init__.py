"""Events: subscriptions, the engine that turns new values into events, and the SQLite store.

Delivery is through an EventSink that the XMPP side implements; nothing here speaks XMPP.
It may import hubd.core and hubd.errors.
"""
