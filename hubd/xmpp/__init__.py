"""The XMPP side of hubd: the only package that imports slixmpp."""
