"""hubd: a house's hardware as one XMPP IoT concentrator."""

__version__ = "0.1.0"
